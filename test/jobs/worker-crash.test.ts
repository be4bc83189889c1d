import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { textElement } from '../../server/dicom/dataset';
import { TAGS } from '../../server/dicom/dictionary';
import { readPart10 } from '../../server/dicom/reader';
import { writePart10 } from '../../server/dicom/writer';
import { Role } from '../../server/domain';
import { jobHandlers } from '../../server/jobs/job-registry';
import { INFERENCE_FAILED, RUN_INFERENCE } from '../../server/queue/job-catalogue';
import { systemContext } from '../../server/services';
import { Factory } from '../helpers/factories';
import { gqlOk, subscribe } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { stow } from '../helpers/stow';

const MAIN = path.resolve(__dirname, '../../dist/server/main.js');
const ONNX = path.resolve(__dirname, '../fixtures/onnx');
const MANIFEST = JSON.parse(readFileSync(path.join(ONNX, 'tiny-multitask.manifest.json'), 'utf8'));
const TEMPLATE = readPart10(readFileSync(path.resolve(__dirname, '../fixtures/dicom/identified-explicit-le.dcm')));
const PATIENTS = 30;
const LEVELS = ['L1_L2', 'L2_L3', 'L3_L4', 'L4_L5', 'L5_S1'];
const ITEMS = PATIENTS * LEVELS.length * 2; // one CT image per joint
const START = `mutation ($id: ID!) { startInferenceJob(modelVersionId: $id) { id total } }`;
const JOB = `query ($id: ID!) { job(id: $id) { status total done failed provider error } }`;

/** One CT instance of its own patient (the fixture with new identifiers), so each patient's ten joints have an image. */
function ctOfPatient(k: number): Buffer {
  const uid = (what: number) => `1.2.826.0.1.3680043.9.7134.5.${k}.${what}`;
  const dataset = new Map(TEMPLATE.dataset);
  const meta = new Map(TEMPLATE.meta);
  dataset.set(TAGS.patientId, textElement(TAGS.patientId, 'LO', `CRASH-${k}`));
  dataset.set(TAGS.studyInstanceUid, textElement(TAGS.studyInstanceUid, 'UI', uid(1)));
  dataset.set(TAGS.seriesInstanceUid, textElement(TAGS.seriesInstanceUid, 'UI', uid(2)));
  dataset.set(TAGS.sopInstanceUid, textElement(TAGS.sopInstanceUid, 'UI', uid(3)));
  meta.set(TAGS.mediaStorageSopInstanceUid, textElement(TAGS.mediaStorageSopInstanceUid, 'UI', uid(3)));
  return writePart10(meta, dataset, TEMPLATE.transferSyntax);
}

/**
 * Worker processes (`main.js worker`, built by `npm test`) over this file's database and object store: one
 * image per batch so a job has many batches, one-second slices, queue jobs taken for dead 3 s after they start
 * (so only a killed worker's queue job expires).
 */
function startWorker(dataDir: string, databaseUrl: string): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [MAIN, 'worker'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      FACET_DATA_DIR: dataDir,
      FACET_INFERENCE_BATCH_SIZE: '1',
      FACET_JOB_SLICE_SECONDS: '1',
      FACET_JOB_RETRY_LIMIT: '1',
      FACET_JOB_EXPIRE_SECONDS: '3',
      FACET_QUEUE_MAINTENANCE_SECONDS: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return Object.assign(child, { output: () => output });
}

const stopped = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

describe('inference workers that die or are stopped', () => {
  // Queue jobs sent by this node expire 3 s after they start, as the workers' continuations do.
  const node = useTestNode({ jobs: { jobExpireSeconds: 3, queueMaintenanceSeconds: 1, inferenceBatchSize: 1, jobRetryLimit: 1 } });
  let engineer: string;
  let modelId: string;
  let siteId: string;
  const workers: ChildProcess[] = [];

  const job = async (id: string) => (await gqlOk(node().url, engineer, JOB, { id })).job;
  async function waitFor(id: string, until: (j: any) => boolean, ms = 60_000): Promise<any> {
    const deadline = Date.now() + ms;
    for (;;) {
      const current = await job(id);
      if (until(current)) return current;
      if (Date.now() > deadline) throw new Error(`job ${id} stayed ${JSON.stringify(current)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    // This process records jobs whose retries are spent (the dead-letter queue), whichever worker died.
    await node().services.queue.work(INFERENCE_FAILED, jobHandlers(node().services)[INFERENCE_FAILED]);
    const factory = new Factory(node().services);
    const site = await factory.site('EAST');
    siteId = site.id;
    const coordinator = await factory.token(Role.COORDINATOR, { site });
    engineer = await factory.token(Role.ENGINEER);
    const ids = Array.from({ length: PATIENTS }, (_, k) => k);
    await gqlOk(node().url, coordinator, `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored } }`, {
      csv: ['site,patient_id', ...ids.map((k) => `EAST,CRASH-${k}`)].join('\n'),
    });
    expect(
      (
        await stow(
          node().url,
          coordinator,
          ids.map((k) => ({ bytes: ctOfPatient(k) })),
        )
      ).status,
    ).toBe(202);
    const rows = ids.flatMap((k) =>
      LEVELS.flatMap((level, l) =>
        ['LEFT', 'RIGHT'].map((side, s) => `CRASH-${k},${level},${side},1.2.826.0.1.3680043.9.7134.5.${k}.3,0,${4 * l},${16 * s},32,32`),
      ),
    );
    const images = await gqlOk(
      node().url,
      coordinator,
      `mutation ($site: ID!, $csv: String!) { importJointImagesManifest(siteId: $site, csv: $csv) { stored rejected { reason } } }`,
      {
        site: site.id,
        csv: ['patient_id,level,side,sop_instance_uid,frame,x,y,width,height', ...rows].join('\n'),
      },
    );
    expect(images.importJointImagesManifest).toMatchObject({ stored: true, rejected: [] });
    const form = new FormData();
    form.append('manifest', new Blob([JSON.stringify(MANIFEST)]), 'manifest.json');
    form.append('model', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.onnx'))]), 'model.onnx');
    const registered = await fetch(`${node().url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form });
    modelId = ((await registered.json()) as { id: string }).id;
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) {
      w.kill('SIGKILL');
      await stopped(w);
    }
    await node().dataSource.query('DELETE FROM prediction');
  });

  it('resumes a job whose worker was SIGKILLed on another worker, without duplicate or lost predictions', async () => {
    const started = (await gqlOk(node().url, engineer, START, { id: modelId })).startInferenceJob;
    expect(started.total).toBe(ITEMS);
    const first = startWorker(node().dataDir, node().database.url);
    workers.push(first);
    await waitFor(started.id, (j) => j.done >= 20);
    first.kill('SIGKILL');
    await stopped(first);
    const [before] = await node().dataSource.query(`SELECT worker FROM inference_job WHERE id = $1`, [started.id]);
    expect(before.worker).toMatch(new RegExp(`:${first.pid}$`));
    const atKill = await job(started.id);
    expect(atKill.status).toBe('RUNNING');
    expect(atKill.done).toBeLessThan(ITEMS);

    // A second worker takes the job over once the killed worker's queue job expires.
    const second = startWorker(node().dataDir, node().database.url);
    workers.push(second);
    const finished = await waitFor(started.id, (j) => j.status !== 'RUNNING');
    expect(finished).toMatchObject({ status: 'SUCCEEDED', total: ITEMS, done: ITEMS, failed: 0, provider: 'cpu' });
    const [predictions] = await node().dataSource.query(
      `SELECT count(*)::int AS n, count(DISTINCT (joint_id, modality, feature))::int AS cells FROM prediction WHERE model_version_id = $1`,
      [modelId],
    );
    expect(predictions).toEqual({ n: ITEMS * MANIFEST.outputs.length, cells: ITEMS * MANIFEST.outputs.length });
    const [row] = await node().dataSource.query(`SELECT worker, attempts FROM inference_job WHERE id = $1`, [started.id]);
    expect(row.worker).toMatch(new RegExp(`:${second.pid}$`));
    // The killed worker's queue job was retried (expired, not completed). How many pg-boss rows that takes depends on
    // when the second worker picked up work (a retried row may carry every remaining slice), so count our own attempts.
    const queueJobs: Array<{ state: string; retry_count: number }> = await node().dataSource.query(
      `SELECT state, retry_count FROM pgboss.job WHERE name = 'run-inference' AND data->>'inferenceJobId' = $1`,
      [started.id],
    );
    expect(queueJobs.some((q) => q.retry_count >= 1)).toBe(true);
    expect(row.attempts).toBeGreaterThanOrEqual(3);
  });

  it('streams ordered progress to jobs(siteId) subscribers: the active jobs first, then events at a few a second', async () => {
    type Event = { jobs: { id: string; status: string; done: number; total: number } };
    const other = await new Factory(node().services).site('WEST');
    const query = `subscription ($site: ID) { jobs(siteId: $site) { id status done total } }`;
    const started = (await gqlOk(node().url, engineer, START, { id: modelId })).startInferenceJob;
    // Subscribed while the job is queued: it comes first. WEST is not in scope... unless the job's scope is every site.
    const east = await subscribe<Event>(node().url, engineer, query, { site: siteId });
    const scoped = (
      await gqlOk(node().url, engineer, `mutation ($id: ID!, $site: ID!) { startInferenceJob(modelVersionId: $id, siteIds: [$site]) { id } }`, {
        id: modelId,
        site: other.id,
      })
    ).startInferenceJob;
    const west = await subscribe<Event>(node().url, engineer, query, { site: other.id });
    try {
      expect((await east.waitFor(() => true)).jobs).toMatchObject({ id: started.id, status: 'QUEUED', done: 0 });
      const begun = Date.now();
      workers.push(startWorker(node().dataDir, node().database.url));
      await east.waitFor((e) => e.jobs.id === started.id && e.jobs.status === 'SUCCEEDED', 60_000);
      const seconds = (Date.now() - begun) / 1000;
      const progress = east.events.filter((e) => e.jobs.id === started.id);
      const done = progress.map((e) => e.jobs.done);
      expect(done).toEqual([...done].sort((a, b) => a - b));
      expect(progress.at(-1)!.jobs).toMatchObject({ status: 'SUCCEEDED', done: ITEMS });
      expect(progress.length).toBeGreaterThan(2);
      // At most about four progress events a second, plus the status changes.
      expect(progress.length).toBeLessThanOrEqual(4 * Math.ceil(seconds) + 4);
      // The WEST-only job (no image there: nothing to do) is never shown to EAST's subscribers; WEST sees both.
      expect(east.events.some((e) => e.jobs.id === scoped.id)).toBe(false);
      await west.waitFor((e) => e.jobs.id === scoped.id);
      await west.waitFor((e) => e.jobs.id === started.id);
    } finally {
      await east.close();
      await west.close();
    }
  });

  it('stops a running job within one batch of cancelJob', async () => {
    const started = (await gqlOk(node().url, engineer, START, { id: modelId })).startInferenceJob;
    workers.push(startWorker(node().dataDir, node().database.url));
    await waitFor(started.id, (j) => j.done >= 10);
    const cancel = await gqlOk(node().url, engineer, `mutation ($id: ID!) { cancelJob(id: $id) { status done } }`, { id: started.id });
    expect(cancel.cancelJob.status).toBe('CANCELLED');
    // The batch in flight when the cancel landed writes nothing (its lease is gone), and nothing runs after it.
    await new Promise((r) => setTimeout(r, 1000));
    const cancelled = await job(started.id);
    expect(cancelled).toMatchObject({ status: 'CANCELLED', done: cancel.cancelJob.done });
    const [{ n }] = await node().dataSource.query(`SELECT count(*)::int AS n FROM prediction`);
    expect(n).toBe(cancelled.done * MANIFEST.outputs.length);
  });

  it('lets only the newest run of a job write: a stale run stops at its next batch', async () => {
    const started = (await gqlOk(node().url, engineer, START, { id: modelId })).startInferenceJob;
    // Two runs of the same job at once, as when a slow worker's queue job expired and was retried elsewhere.
    const ctx = systemContext('worker');
    const runs = await Promise.all([node().services.inferenceRunner.runSlice(ctx, started.id), node().services.inferenceRunner.runSlice(ctx, started.id)]);
    expect(runs.sort()).toEqual(['done', 'skipped']);
    expect(await job(started.id)).toMatchObject({ status: 'SUCCEEDED', done: ITEMS, failed: 0 });
    const [{ n }] = await node().dataSource.query(`SELECT count(*)::int AS n FROM prediction WHERE model_version_id = $1`, [modelId]);
    expect(n).toBe(ITEMS * MANIFEST.outputs.length);
  });

  it('ends a job FAILED, not RUNNING forever, when its worker is killed on every try', async () => {
    const started = (await gqlOk(node().url, engineer, START, { id: modelId })).startInferenceJob;
    const first = startWorker(node().dataDir, node().database.url);
    workers.push(first);
    await waitFor(started.id, (j) => j.done >= 5);
    first.kill('SIGKILL');
    // The retry (the last, with FACET_JOB_RETRY_LIMIT 1) goes to a second worker, killed as soon as it takes the job.
    const second = startWorker(node().dataDir, node().database.url);
    workers.push(second);
    const pattern = new RegExp(`:${second.pid}$`);
    for (const deadline = Date.now() + 30_000; ;) {
      const [row] = await node().dataSource.query(`SELECT worker FROM inference_job WHERE id = $1`, [started.id]);
      if (pattern.test(row.worker)) break;
      if (Date.now() > deadline) throw new Error('the second worker never took the job');
      await new Promise((r) => setTimeout(r, 20));
    }
    second.kill('SIGKILL');
    const failed = await waitFor(started.id, (j) => j.status !== 'RUNNING', 30_000);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(/^Gave up after its retries: job failed by timeout/);
  });

  it('ends a job FAILED with the reason once its retries are spent (its model file is gone)', async () => {
    const manifest = { ...MANIFEST, version: '0.9.0-lost' };
    const lost = await node().services.models.registerModelVersion(systemContext('test'), readFileSync(path.join(ONNX, 'tiny-multitask.onnx')), manifest);
    // As if the object store lost the file: the version now names an object that is not there.
    await node().dataSource.query(`UPDATE model_version SET sha256 = $2 WHERE id = $1`, [lost.id, 'f'.repeat(64)]);
    const started = (await gqlOk(node().url, engineer, START, { id: lost.id })).startInferenceJob;
    await node().services.queue.work(RUN_INFERENCE, jobHandlers(node().services)[RUN_INFERENCE]);
    const failed = await waitFor(started.id, (j) => j.status === 'FAILED', 30_000);
    expect(failed.error).toMatch(/^Gave up after its retries: .*(no such file|ENOENT)/);
    // One try and one retry (jobRetryLimit 1), then no more.
    const [{ n }] = await node().dataSource.query(`SELECT count(*)::int AS n FROM pgboss.job WHERE data->>'inferenceJobId' = $1 AND state = 'failed'`, [
      started.id,
    ]);
    expect(n).toBe(1);
  });
});
