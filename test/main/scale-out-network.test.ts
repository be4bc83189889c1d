import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { textElement } from '../../server/dicom/dataset';
import { TAGS } from '../../server/dicom/dictionary';
import { readPart10 } from '../../server/dicom/reader';
import { writePart10 } from '../../server/dicom/writer';
import { createDataSource } from '../../server/db/data-source';
import { Role } from '../../server/domain';
import { parseManifest } from '../../server/inference/manifest';
import { decodeFrame, preprocess } from '../../server/inference/pixels';
import { runBatch, SessionCache } from '../../server/inference/session-cache';
import { createServices, systemContext, type Services } from '../../server/services';
import { workItems } from '../../server/services/inference-job/work-items';
import { gqlOk, subscribe } from '../helpers/graphql-client';
import { filePassed } from '../helpers/lifecycle';
import { createNetworkNamespace, unixSocketUrl, type NetworkNamespace } from '../helpers/netns';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process';
import { startS3Server, type S3Server } from '../helpers/s3-server';
import { stow } from '../helpers/stow';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db';
import type { DataSource } from 'typeorm';
import type { S3ObjectStore } from '../../server/storage/s3-object-store';

/**
 * A node spread over machines, each machine a network namespace of its own: two API servers (A, B) and two workers,
 * each with its own empty data directory (no shared file system), PostgreSQL on the host (reached through its Unix
 * socket, as a database server on another machine would be through its port), the objects in an S3-protocol server
 * (s3rver) on the host, reached by each namespace through its link. An upload goes through A, the model through B,
 * the workers run the job, and a subscriber on B sees every step of the progress A's job makes.
 * Needs root and iproute2 (CI has them); elsewhere it is reported as skipped.
 */
const available = process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0;
const describeWhereAvailable = available ? describe : describe.skip;

const ONNX = path.resolve(__dirname, '../fixtures/onnx');
const TEMPLATE = readPart10(readFileSync(path.resolve(__dirname, '../fixtures/dicom/identified-explicit-le.dcm')));
const PATIENTS = 6;
const LEVELS = ['L1_L2', 'L2_L3', 'L3_L4', 'L4_L5', 'L5_S1'];
const ITEMS = PATIENTS * LEVELS.length * 2;
const BUCKET = 'facet-scale-out';
const uidOf = (k: number, what: number) => `1.2.826.0.1.3680043.9.7134.16.${k}.${what}`;

/** One CT instance of its own patient (the fixture with new identifiers). */
function ctOfPatient(k: number): Buffer {
  const dataset = new Map(TEMPLATE.dataset);
  const meta = new Map(TEMPLATE.meta);
  dataset.set(TAGS.patientId, textElement(TAGS.patientId, 'LO', `SCALE-${k}`));
  dataset.set(TAGS.studyInstanceUid, textElement(TAGS.studyInstanceUid, 'UI', uidOf(k, 1)));
  dataset.set(TAGS.seriesInstanceUid, textElement(TAGS.seriesInstanceUid, 'UI', uidOf(k, 2)));
  dataset.set(TAGS.sopInstanceUid, textElement(TAGS.sopInstanceUid, 'UI', uidOf(k, 3)));
  meta.set(TAGS.mediaStorageSopInstanceUid, textElement(TAGS.mediaStorageSopInstanceUid, 'UI', uidOf(k, 3)));
  return writePart10(meta, dataset, TEMPLATE.transferSyntax);
}

/** Every file under `dir`. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) out.push(...(await filesUnder(path.join(dir, e.name))));
    else out.push(path.join(dir, e.name));
  }
  return out;
}

let s3: S3Server;
let database: TestDatabase;
let dataSource: DataSource;
let services: Services;
let store: S3ObjectStore;
const namespaces: NetworkNamespace[] = [];
const processes: NodeProcess[] = [];
const dirs: string[] = [];
const servers: Array<{ url: string; dataDir: string }> = [];
const workerDirs: string[] = [];

const tempDir = async (tag: string) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), `facet-${tag}-`));
  dirs.push(dir);
  return dir;
};

beforeAll(async () => {
  if (!available) return;
  s3 = await startS3Server('0.0.0.0');
  await s3.createBucket(BUCKET);
  store = s3.store(BUCKET);
  database = await createTestDatabase();
  for (let i = 1; i <= 4; i++) namespaces.push(await createNetworkNamespace(`o${process.pid % 10_000}`, i));
  // What each process may know: the database, the object store as its namespace reaches it, and nothing on disk.
  const common = (ns: NetworkNamespace): NodeJS.ProcessEnv => ({
    ...s3.env(BUCKET, `http://${ns.hostAddress}:${s3.port}`),
    DATABASE_URL: unixSocketUrl(database.url),
    FACET_INFERENCE_BATCH_SIZE: '1',
    FACET_JOB_SLICE_SECONDS: '1',
  });
  const started = await Promise.all(
    namespaces.map(async (ns, i) => {
      if (i < 2) {
        const dataDir = await tempDir(`server-${i}`);
        return {
          server: true,
          dataDir,
          process: await startNodeProcess(['serve'], { ...common(ns), HOST: '0.0.0.0', FACET_DATA_DIR: dataDir }, 120_000, ns.exec),
        };
      }
      // A worker is given no data directory at all, and starts in an empty folder: nothing it needs is on disk.
      const cwd = await tempDir(`worker-${i}`);
      return { server: false, dataDir: cwd, process: await startNodeProcess(['worker'], { ...common(ns), FACET_DATA_DIR: undefined }, 120_000, ns.exec, cwd) };
    }),
  );
  for (const [i, s] of started.entries()) {
    processes.push(s.process);
    if (s.server) servers.push({ url: `http://${namespaces[i].innerAddress}:${new URL(s.process.url).port}`, dataDir: s.dataDir });
    else workerDirs.push(s.dataDir);
  }
  dataSource = createDataSource(database.url, { poolSize: 2 });
  await dataSource.initialize();
  services = createServices(dataSource, { objectRoot: await tempDir('host'), objects: store });
}, 300_000);

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
  for (const ns of namespaces) await ns.destroy();
  if (dataSource?.isInitialized) await dataSource.destroy();
  await s3?.stop();
  if (filePassed()) {
    await database?.drop();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }
});

describeWhereAvailable('a node over several machines (network namespaces, PostgreSQL, an S3 server; root and iproute2)', () => {
  it('ingests through one server, runs the job on the workers, and streams its progress to a subscriber of the other', async () => {
    const [a, b] = servers;
    const ctx = systemContext('test');
    const site = await services.sites.createSite(ctx, { code: 'EAST', name: 'East' });
    const { secret: coordinator } = await services.tokens.createApiToken(ctx, { name: 'c', role: Role.COORDINATOR, siteId: site.id });
    const { secret: engineer } = await services.tokens.createApiToken(ctx, { name: 'e', role: Role.ENGINEER });
    const ids = Array.from({ length: PATIENTS }, (_, k) => k);

    // The upload goes through A.
    await gqlOk(a.url, coordinator, `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored } }`, {
      csv: ['site,patient_id', ...ids.map((k) => `EAST,SCALE-${k}`)].join('\n'),
    });
    const answer = await stow(
      a.url,
      coordinator,
      ids.map((k) => ({ bytes: ctOfPatient(k) })),
    );
    expect([answer.status, answer.failed]).toEqual([202, []]);
    const rows = ids.flatMap((k) =>
      LEVELS.flatMap((level, l) => ['LEFT', 'RIGHT'].map((side, s) => `SCALE-${k},${level},${side},${uidOf(k, 3)},0,${4 * l},${16 * s},32,32`)),
    );
    const images = await gqlOk(a.url, coordinator, `mutation ($site: ID!, $csv: String!) { importJointImagesManifest(siteId: $site, csv: $csv) { stored } }`, {
      site: site.id,
      csv: ['patient_id,level,side,sop_instance_uid,frame,x,y,width,height', ...rows].join('\n'),
    });
    expect(images.importJointImagesManifest.stored).toBe(true);

    // The model through B.
    const manifestJson = await readFile(path.join(ONNX, 'tiny-multitask.manifest.json'), 'utf8');
    const form = new FormData();
    form.append('manifest', new Blob([manifestJson]), 'manifest.json');
    form.append('model', new Blob([await readFile(path.join(ONNX, 'tiny-multitask.onnx'))]), 'model.onnx');
    const registered = await fetch(`${b.url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form });
    expect(registered.status).toBe(201);
    const model = (await registered.json()) as { id: string; sha256: string };

    // Every object is in the bucket, none on any machine's disk.
    const [{ shas }] = await dataSource.query(`SELECT array_agg(DISTINCT sha256) AS shas FROM instance`);
    expect(shas).toHaveLength(PATIENTS);
    for (const sha of [...shas, model.sha256]) expect(await store.has(sha.trim())).toBe(true);

    // The job starts on A; B's subscriber follows it.
    const started = (await gqlOk(a.url, engineer, `mutation ($id: ID!) { startInferenceJob(modelVersionId: $id) { id total } }`, { id: model.id }))
      .startInferenceJob;
    expect(started.total).toBe(ITEMS);
    const progress = await subscribe<{ jobProgress: { status: string; done: number; total: number } }>(
      b.url,
      engineer,
      `subscription ($id: ID!) { jobProgress(jobId: $id) { status done total } }`,
      { id: started.id },
    );
    try {
      await progress.waitFor((e) => e.jobProgress.status === 'SUCCEEDED', 180_000);
      const done = progress.events.map((e) => e.jobProgress.done);
      expect(done).toEqual([...done].sort((x, y) => x - y));
      expect(progress.events.length).toBeGreaterThan(2);
      expect(progress.events.at(-1)!.jobProgress).toEqual({ status: 'SUCCEEDED', done: ITEMS, total: ITEMS });
    } finally {
      await progress.close();
    }

    // Predictions exact: ONNX Runtime here, over the bytes in the bucket, one image per run as the workers did.
    const manifest = parseManifest(JSON.parse(manifestJson));
    const items = await workItems(services.db, ctx, { siteIds: [], modalities: [] }, manifest);
    expect(items).toHaveLength(ITEMS);
    const { session } = await new SessionCache(['cpu']).get(model.sha256, () => store.read(model.sha256));
    const stored: Array<{ joint_id: string; feature: string; probabilities: number[] }> = await dataSource.query(
      `SELECT joint_id, feature, probabilities FROM prediction WHERE model_version_id = $1`,
      [model.id],
    );
    expect(stored).toHaveLength(ITEMS * manifest.outputs.length);
    const byCell = new Map(stored.map((p) => [`${p.joint_id}:${p.feature}`, p.probabilities]));
    for (const item of items) {
      const input = preprocess(await decodeFrame(readPart10(await store.read(item.sha256)), item.frame), item.region, manifest.preprocessing[item.modality]!);
      const outputs = await runBatch(session, manifest, [input]);
      for (const output of manifest.outputs)
        expect([item.jointId, output.feature, byCell.get(`${item.jointId}:${output.feature}`)]).toEqual([
          item.jointId,
          output.feature,
          outputs.get(output.feature)![0],
        ]);
    }

    // No machine kept an object: the servers' data directories hold at most the bootstrap admin token, the workers' folders nothing.
    for (const server of servers) for (const file of await filesUnder(server.dataDir)) expect(path.basename(file)).toBe('admin-token');
    for (const dir of workerDirs) expect(await filesUnder(dir)).toEqual([]);
  });

  it('reaches the other machines only through the network: no namespace reaches a server on another one by its loopback', async () => {
    // Each server listens inside its own namespace; from a worker's namespace, 127.0.0.1 is the worker's own loopback.
    for (const server of servers) {
      const port = Number(new URL(server.url).port);
      const { stdout } = spawnSync(namespaces[2].exec[0], [
        ...namespaces[2].exec.slice(1),
        process.execPath,
        '-e',
        `
        const s = require('node:net').connect(${port}, '127.0.0.1');
        s.setTimeout(3000, () => { console.log('timeout'); process.exit(0); });
        s.on('connect', () => { console.log('connected'); process.exit(0); });
        s.on('error', (e) => { console.log(e.code); process.exit(0); });`,
      ]);
      expect(stdout.toString().trim()).toMatch(/^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|timeout)$/);
    }
  });
});
