import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { data } from 'dcmjs';
import { Role } from '../../server/domain';
import { TAGS } from '../../server/dicom/dictionary';
import { readPart10 } from '../../server/dicom/reader';
import { replaceUid } from '../../server/dicom/uid';
import { Instance, type Site } from '../../server/entities';
import { FIXTURES, IDENTIFIED, IDENTIFIERS } from '../helpers/dicom-fixtures';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { failureCode, multipartRelated, stow } from '../helpers/stow';

const fixture = (name: string) => readFile(path.join(FIXTURES, name));
const IMPORT = `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored rows created updated rejected { source code reason } } }`;

describe('DICOMweb STOW-RS ingest', () => {
  const node = useTestNode();
  let factory: Factory;
  let siteA: Site;
  let coordinatorA: string;
  let coordinatorB: string;
  let admin: string;
  const count = async (table: string) => (await node().dataSource.query(`SELECT count(*)::int AS n FROM ${table}`))[0].n as number;
  const objectFiles = async (): Promise<string[]> => {
    const root = path.join(node().dataDir, 'objects');
    const out: string[] = [];
    const walk = async (dir: string) => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(path.join(dir, e.name));
        else out.push(path.join(dir, e.name));
      }
    };
    await walk(root);
    return out;
  };

  beforeAll(async () => {
    factory = new Factory(node().services);
    siteA = await factory.site('EAST');
    const siteB = await factory.site('WEST');
    coordinatorA = await factory.token(Role.COORDINATOR, { site: siteA });
    coordinatorB = await factory.token(Role.COORDINATOR, { site: siteB });
    admin = await factory.token(Role.ADMIN);
    const manifest = `site,patient_id,pseudonym,sex,age,eligible,exclusion_reasons\nEAST,${IDENTIFIERS.PatientID},EAST-P001,F,76,yes,\n`;
    const result = await gqlOk(node().url, coordinatorA, IMPORT, { csv: manifest });
    expect(result.importPatientsManifest).toMatchObject({ stored: true, created: 1 });
  });

  it('stores every transfer syntax (native LE/BE, implicit, RLE, JPEG, JPEG-LS, JPEG 2000) and answers 202 with coercion warnings', async () => {
    const files = await Promise.all(IDENTIFIED.map(async (name) => ({ bytes: await fixture(name) })));
    const answer = await stow(node().url, coordinatorA, files);
    expect(answer.status).toBe(202);
    expect(answer.failed).toEqual([]);
    expect(answer.stored).toHaveLength(IDENTIFIED.length);
    for (const item of answer.stored) {
      expect(item['00081155'].Value[0]).toMatch(/^2\.25\.\d+$/);
      expect(item['00081196'].Value).toEqual([0xb000]);
    }
    expect(await count('instance')).toBe(IDENTIFIED.length);
    const transferSyntaxes = (await node().dataSource.getRepository(Instance).find()).map((i) => i.transferSyntaxUid).sort();
    expect(new Set(transferSyntaxes).size).toBe(8);
  });

  it('leaves no identifying value in the stored files or in any database column', async () => {
    const files = await objectFiles();
    expect(files).toHaveLength(IDENTIFIED.length);
    for (const file of files) {
      const text = (await readFile(file)).toString('latin1');
      for (const value of [...Object.values(IDENTIFIERS), '20240117', '19480312'])
        expect({ file, value, found: text.includes(value) }).toEqual({ file, value, found: false });
    }
    const tables: Array<{ tablename: string }> = await node().dataSource.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`);
    for (const { tablename } of tables) {
      const dump = JSON.stringify(await node().dataSource.query(`SELECT row_to_json(t) AS r FROM "${tablename}" t`));
      for (const value of [...Object.values(IDENTIFIERS), '2024-01-17', '1948-03-12'])
        expect({ tablename, value, found: dump.includes(value) }).toEqual({ tablename, value, found: false });
    }
  });

  it('keeps each stored file valid DICOM that dcmjs reads back with the same pixel data', async () => {
    const key = await node().services.nodeKeys.identifierKey();
    const pixels = (b: Buffer) =>
      Buffer.concat(
        data.DicomMetaDictionary.naturalizeDataset(
          data.DicomMessage.readFile(b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer).dict,
        ).PixelData.map((f: ArrayBuffer) => Buffer.from(f)),
      );
    for (const name of IDENTIFIED) {
      const original = await fixture(name);
      const sopInstanceUid = readPart10(original).dataset.get(TAGS.sopInstanceUid)?.bytes?.toString('latin1').replace(/\0+$/, '') as string;
      const instance = await node()
        .dataSource.getRepository(Instance)
        .findOneByOrFail({ sopInstanceUid: replaceUid(key, sopInstanceUid) });
      const stored = await node().services.objects.read(instance.sha256);
      expect({ name, same: pixels(stored).equals(pixels(original)) }).toEqual({ name, same: true });
    }
  });

  it('treats a re-upload as a no-op: same UIDs, no new rows, no new files', async () => {
    const before = { instances: await count('instance'), studies: await count('study'), files: (await objectFiles()).length };
    const answer = await stow(node().url, coordinatorA, [
      { bytes: await fixture('identified-explicit-le.dcm') },
      { bytes: await fixture('identified-rle.dcm') },
    ]);
    expect(answer.status).toBe(202);
    expect(answer.stored).toHaveLength(2);
    expect({ instances: await count('instance'), studies: await count('study'), files: (await objectFiles()).length }).toEqual(before);
  });

  it.each([
    ['not-part10.bin', 'NOT_PART10', 0xc000],
    ['no-preamble.bin', 'NOT_PART10', 0xc000],
    ['truncated.dcm', 'TRUNCATED', 0xc000],
    ['impossible-length.dcm', 'IMPOSSIBLE_LENGTH', 0xc000],
    ['rt-plan.dcm', 'UNSUPPORTED_SOP_CLASS', 0x0122],
    ['structured-report.dcm', 'UNSUPPORTED_SOP_CLASS', 0x0122],
    ['waveform.dcm', 'UNSUPPORTED_SOP_CLASS', 0x0122],
    ['pixel-length-mismatch.dcm', 'PIXEL_LENGTH_MISMATCH', 0xa900],
  ])('rejects %s (%s) and, with it, the whole batch: 409 and nothing stored', async (name, code, reason) => {
    const before = { instances: await count('instance'), files: (await objectFiles()).length, audit: await count('audit_event') };
    const answer = await stow(node().url, coordinatorA, [{ bytes: await fixture('identified-mr.dcm') }, { bytes: await fixture(name) }]);
    expect(answer.status).toBe(409);
    expect(answer.stored).toEqual([]);
    const bad = answer.failed.find((f) => failureCode(f) === code);
    expect(bad?.['00081197'].Value).toEqual([reason]);
    expect(answer.failed.map(failureCode).sort()).toEqual([code, 'BATCH_REJECTED'].sort());
    expect({ instances: await count('instance'), files: (await objectFiles()).length, audit: await count('audit_event') }).toEqual(before);
  });

  it('rejects an object whose Patient ID no manifest named (UNKNOWN_PATIENT)', async () => {
    const answer = await stow(node().url, coordinatorB, [{ bytes: await fixture('identified-mr.dcm') }]);
    expect(answer.status).toBe(409);
    expect(answer.failed.map(failureCode)).toEqual(['UNKNOWN_PATIENT']);
  });

  it('refuses a coordinator storing into another site, an unauthenticated client, and a wrong media type', async () => {
    const file = [{ bytes: await fixture('identified-mr.dcm') }];
    expect((await stow(node().url, coordinatorB, file, '?site=EAST')).status).toBe(403);
    expect((await stow(node().url, null, file)).status).toBe(401);
    expect((await stow(node().url, admin, file)).status).toBe(400); // an ADMIN must name the site
    expect((await stow(node().url, admin, file, '?site=EAST')).status).toBe(202);
    const wrongType = await stow(node().url, coordinatorA, [{ bytes: Buffer.from('{}'), contentType: 'application/json' }]);
    expect(wrongType.status).toBe(409);
    expect(wrongType.failed.map(failureCode)).toEqual(['UNSUPPORTED_MEDIA_TYPE']);
    const response = await fetch(`${node().url}/dicomweb/studies`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${coordinatorA}` },
      body: '{}',
    });
    expect(response.status).toBe(415);
  });

  it('serves each stored instance at its Retrieve URL (WADO-RS), de-identified, to its own site only', async () => {
    const answer = await stow(node().url, coordinatorA, [{ bytes: await fixture('identified-jpeg-ls.dcm') }]);
    const retrieveUrl: string = answer.stored[0]['00081190'].Value[0];
    const response = await fetch(retrieveUrl, { headers: { authorization: `Bearer ${coordinatorA}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^multipart\/related; type="application\/dicom"/);
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.includes(Buffer.from('DICM'))).toBe(true);
    expect(body.toString('latin1')).not.toContain(IDENTIFIERS.PatientName);
    expect((await fetch(retrieveUrl, { headers: { authorization: `Bearer ${coordinatorB}` } })).status).toBe(404);
    expect((await fetch(retrieveUrl)).status).toBe(401);
  });

  it('stores into /studies/{uid} only instances of that study (STUDY_MISMATCH otherwise)', async () => {
    const file = [{ bytes: await fixture('identified-mr.dcm') }];
    expect((await stow(node().url, coordinatorA, file, '')).status).toBe(202);
    const parts = multipartRelated(file);
    const right = await fetch(`${node().url}/dicomweb/studies/${IDENTIFIERS.StudyInstanceUID}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${coordinatorA}`, 'content-type': parts.contentType },
      body: parts.body,
    });
    expect(right.status).toBe(202);
    const wrong = await fetch(`${node().url}/dicomweb/studies/1.2.3.4.5`, {
      method: 'POST',
      headers: { authorization: `Bearer ${coordinatorA}`, 'content-type': parts.contentType },
      body: parts.body,
    });
    expect(wrong.status).toBe(409);
    const failed = ((await wrong.json()) as Record<string, any>)['00081198'].Value;
    expect(failed.map(failureCode)).toEqual(['STUDY_MISMATCH']);
  });

  it('lands a batch whole or not at all when the database fails mid-batch: no rows and no new files', async () => {
    const before = { instances: await count('instance'), studies: await count('study'), files: (await objectFiles()).length };
    // Injected failure: the instance insert fails after the files were written and the study rows inserted.
    await node().dataSource.query(`ALTER TABLE instance ADD CONSTRAINT injected_failure CHECK (rows < 0) NOT VALID`);
    try {
      // Two objects not stored before: the MR fixture under two new SOP Instance UIDs (same length, so the file stays valid).
      const mr = await fixture('identified-mr.dcm');
      const renamed = (last: string) =>
        Buffer.from(mr.toString('latin1').replaceAll(`${IDENTIFIERS.SOPInstanceUID}.4`, `${IDENTIFIERS.SOPInstanceUID}.${last}`), 'latin1');
      const answer = await stow(node().url, admin, [{ bytes: renamed('8') }, { bytes: renamed('9') }], '?site=EAST');
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.stored).toEqual([]);
    } finally {
      await node().dataSource.query(`ALTER TABLE instance DROP CONSTRAINT injected_failure`);
    }
    expect({ instances: await count('instance'), studies: await count('study'), files: (await objectFiles()).length }).toEqual(before);
  });
});
