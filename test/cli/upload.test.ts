import { spawn } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ReaderRole, Role } from '../../server/domain';
import { Factory } from '../helpers/factories';
import { filePassed, useTestNode } from '../helpers/lifecycle';

const MAIN = path.resolve(__dirname, '../../dist/server/main.js');
const FIXTURES = path.resolve(__dirname, '../fixtures/dicom');
const MRN = 'MRN-7734021';
const CT_UID = '1.2.826.0.1.3680043.9.7134.1.20240117.1.2.3.1';

function run(folder: string, url: string, token: string, extra: string[] = [], killAfter?: RegExp): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'upload', folder, '--url', url, '--token', token, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (killAfter?.test(out)) child.kill('SIGKILL');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => resolve({ code, out }));
  });
}

describe('facet upload (the coordinator CLI)', () => {
  const node = useTestNode();
  let token: string;
  let reader1: string;
  let reader2: string;
  const folders: string[] = [];
  const ingestBatches = async () => (await node().dataSource.query(`SELECT count(*)::int AS n FROM audit_event WHERE action = 'ingestDicom'`))[0].n as number;

  /** A cohort folder: manifests at the top, DICOM in nested folders, one broken file, one note. */
  async function cohortFolder(): Promise<string> {
    const folder = await mkdtemp(path.join(os.tmpdir(), 'facet-cohort-'));
    folders.push(folder);
    await mkdir(path.join(folder, 'CT/series1'), { recursive: true });
    await mkdir(path.join(folder, 'MR'), { recursive: true });
    await mkdir(path.join(folder, 'broken'), { recursive: true });
    await copyFile(path.join(FIXTURES, 'identified-explicit-le.dcm'), path.join(folder, 'CT/series1/IM0001'));
    await copyFile(path.join(FIXTURES, 'identified-implicit-le.dcm'), path.join(folder, 'CT/series1/IM0002.dcm'));
    await copyFile(path.join(FIXTURES, 'identified-jpeg-ls.dcm'), path.join(folder, 'CT/IM0003.dcm'));
    await copyFile(path.join(FIXTURES, 'identified-mr.dcm'), path.join(folder, 'MR/IM0001.dcm'));
    await copyFile(path.join(FIXTURES, 'identified-rle.dcm'), path.join(folder, 'MR/IM0002'));
    await copyFile(path.join(FIXTURES, 'truncated.dcm'), path.join(folder, 'broken/IM9999.dcm'));
    await writeFile(path.join(folder, 'notes.txt'), 'not DICOM, not sent\n');
    await writeFile(path.join(folder, 'patients.csv'), `site,patient_id,pseudonym,sex,age,eligible,exclusion_reasons\nEAST,${MRN},EAST-P001,F,76,yes,\n`);
    await writeFile(
      path.join(folder, 'joint-images.csv'),
      `patient_id,level,side,sop_instance_uid,frame,x,y,width,height\n${MRN},L4_L5,LEFT,${CT_UID},0,4,4,32,32\n`,
    );
    await writeFile(
      path.join(folder, 'readings.csv'),
      `reader,patient_id,level,side,modality,feature,grade\n${reader1},${MRN},L4_L5,LEFT,CT,OSTEOPHYTES,2\n${reader2},${MRN},L4_L5,LEFT,CT,OSTEOPHYTES,1\n`,
    );
    return folder;
  }

  beforeAll(async () => {
    const factory = new Factory(node().services);
    const east = await factory.site('EAST');
    token = await factory.token(Role.COORDINATOR, { site: east });
    reader1 = (await factory.reader(east, ReaderRole.READER)).code;
    reader2 = (await factory.reader(east, ReaderRole.READER)).code;
  });
  afterAll(async () => {
    if (filePassed()) await Promise.all(folders.map((f) => rm(f, { recursive: true, force: true })));
  });

  it('uploads manifests and DICOM from nested folders, reports the broken file, and skips what landed on a second run', async () => {
    const folder = await cohortFolder();
    const first = await run(folder, node().url, token, ['--batch-files', '2']);
    expect(first.code).toBe(1); // one file was rejected
    expect(first.out).toMatch(/6 file\(s\) to send to EAST, 0 already stored/);
    expect(first.out).toMatch(/progress: 6\/6 files/);
    expect(first.out).toMatch(/rejected broken\/IM9999\.dcm: TRUNCATED/);
    const report = await readFile(path.join(folder, 'facet-upload-report.csv'), 'utf8');
    expect(report.split('\n')[0]).toBe('kind,source,status,code,reason');
    expect(report).toMatch(/^patients,patients\.csv,stored,,1 rows$/m);
    expect(report).toMatch(/^dicom,CT\/series1\/IM0001,stored,,$/m);
    expect(report).toMatch(/^dicom,broken\/IM9999\.dcm,rejected,TRUNCATED,/m);
    expect(report).toMatch(/^joint-images,joint-images\.csv,stored,,1 rows$/m);
    expect(report).toMatch(/^readings,readings\.csv,stored,,2 rows$/m);
    expect(report).not.toMatch(/notes\.txt/);
    expect((await node().dataSource.query('SELECT count(*)::int AS n FROM instance'))[0].n).toBe(5);
    expect((await node().dataSource.query('SELECT count(*)::int AS n FROM reading'))[0].n).toBe(2);

    const batches = await ingestBatches();
    const second = await run(folder, node().url, token, ['--batch-files', '2']);
    expect(second.out).toMatch(/1 file\(s\) to send to EAST, 5 already stored/);
    expect(await ingestBatches()).toBe(batches); // nothing re-sent but the broken file, which stores nothing
    const again = await readFile(path.join(folder, 'facet-upload-report.csv'), 'utf8');
    expect(again).toMatch(/^readings,readings\.csv,skipped,,stored by an earlier run$/m);
  });

  it('resumes after being killed mid-upload without re-sending what landed', async () => {
    const folder = await cohortFolder();
    await rm(path.join(folder, 'broken'), { recursive: true });
    await rm(path.join(folder, 'readings.csv')); // its readings were recorded by the first test
    const beforeBatches = await ingestBatches();
    const killed = await run(folder, node().url, token, ['--batch-files', '1'], /batch 2: /);
    expect(killed.code).toBeNull(); // SIGKILL
    const resumed = await run(folder, node().url, token, ['--batch-files', '1']);
    expect(resumed.code).toBe(0);
    const sent = Number(/(\d+) file\(s\) to send/.exec(resumed.out)?.[1]);
    expect(sent).toBeLessThanOrEqual(3); // at least 2 of the 5 landed before the kill and were not sent again
    // Every file went up once, plus at most the one batch in flight when the process died.
    expect((await ingestBatches()) - beforeBatches).toBeLessThanOrEqual(6);
  });

  it('fails clearly without a token or with a wrong site', async () => {
    const folder = await cohortFolder();
    const wrongSite = await run(folder, node().url, token, ['--site', 'NOWHERE']);
    expect(wrongSite.code).toBe(1);
    expect(wrongSite.out).toMatch(/No site with code NOWHERE/);
    const badToken = await run(folder, node().url, 'fct_wrong');
    expect(badToken.code).toBe(1);
    expect(badToken.out).toMatch(/UNAUTHENTICATED/);
  });
});

// Its own node: the example's DICOM shares a study with the fixtures the tests above store for another site.
describe('the documented example cohort', () => {
  const exampleNode = useTestNode();

  it('uploads the documented example cohort (docs/examples/cohort) with no rejection', async () => {
    const example = await mkdtemp(path.join(os.tmpdir(), 'facet-example-'));
    await cp(path.resolve(__dirname, '../../docs/examples/cohort'), example, { recursive: true });
    const factory = new Factory(exampleNode().services);
    const site = await factory.site('EXAMPLE');
    for (const code of ['EAST-R1', 'EAST-R2'])
      await exampleNode().services.readers.createReader(factory.admin, { code, role: ReaderRole.READER, yearsOfExperience: 5, siteId: site.id });
    const coordinator = await factory.token(Role.COORDINATOR, { site });
    for (const file of ['patients.csv', 'reference.csv']) {
      await writeFile(path.join(example, file), (await readFile(path.join(example, file), 'utf8')).replaceAll('EAST,', 'EXAMPLE,'));
    }
    const result = await run(example, exampleNode().url, coordinator);
    // Patients, two DICOM files, joint images, readings and the reference standard (predictions.csv is the engineer's).
    expect({ out: result.out }).toEqual({ out: expect.stringMatching(/done: 6 stored, 0 skipped \(earlier run\), 0 rejected/) });
    expect(await exampleNode().dataSource.query(`SELECT count(*)::int AS n FROM reference_grade WHERE import_id IS NOT NULL`)).toEqual([{ n: 17 }]);
    expect(result.code).toBe(0);
    await rm(example, { recursive: true, force: true });
  });
});
