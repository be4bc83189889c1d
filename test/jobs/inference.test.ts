import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { textElement } from '../../server/dicom/dataset';
import { TAGS } from '../../server/dicom/dictionary';
import { readPart10 } from '../../server/dicom/reader';
import { writePart10 } from '../../server/dicom/writer';
import { Role } from '../../server/domain';
import { decodeFrame, preprocess } from '../../server/inference/pixels';
import { softmax } from '../../server/inference/session-cache';
import { jobHandlers } from '../../server/jobs/job-registry';
import { RUN_INFERENCE } from '../../server/queue/job-catalogue';
import { JobQueue } from '../../server/queue/job-queue';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk, subscribe } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { stow } from '../helpers/stow';

const DICOM = path.resolve(__dirname, '../fixtures/dicom');
const ONNX = path.resolve(__dirname, '../fixtures/onnx');
const MANIFEST = JSON.parse(readFileSync(path.join(ONNX, 'tiny-multitask.manifest.json'), 'utf8'));
const MRN = 'MRN-7734021';
const UID = (suffix: string) => `1.2.826.0.1.3680043.9.7134.1.20240117.1.2.3.${suffix}`;
const START = `mutation ($id: ID!) { startInferenceJob(modelVersionId: $id) { id status total } }`;
const JOB = `query ($id: ID!) { job(id: $id) { status total done failed failures { reason } provider rate } }`;

describe('inference jobs', () => {
  const node = useTestNode();
  let engineer: string;
  let modelId: string;

  beforeAll(async () => {
    const factory = new Factory(node().services);
    const site = await factory.site('EAST');
    const coordinator = await factory.token(Role.COORDINATOR, { site });
    engineer = await factory.token(Role.ENGINEER);
    await gqlOk(node().url, coordinator, `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored } }`, {
      csv: `site,patient_id\nEAST,${MRN}\n`,
    });
    const files: Array<{ bytes: Buffer }> = ['identified-explicit-le.dcm', 'identified-mr.dcm', 'identified-jpeg-ls.dcm'].map((f) => ({
      bytes: readFileSync(path.join(DICOM, f)),
    }));
    // A valid object whose JPEG-LS codestream is cut short: stored fine, but it cannot be decoded for inference.
    const broken = readPart10(readFileSync(path.join(DICOM, 'identified-jpeg-ls.dcm')));
    const pixels = broken.dataset.get(TAGS.pixelData)!;
    pixels.fragments = [pixels.fragments![0], pixels.fragments![1].subarray(0, 64)];
    broken.dataset.set(TAGS.sopInstanceUid, textElement(TAGS.sopInstanceUid, 'UI', UID('19')));
    broken.meta.set(TAGS.mediaStorageSopInstanceUid, textElement(TAGS.mediaStorageSopInstanceUid, 'UI', UID('19')));
    files.push({ bytes: writePart10(broken.meta, broken.dataset, broken.transferSyntax) });
    expect((await stow(node().url, coordinator, files)).status).toBe(202);
    const csv = [
      'patient_id,level,side,sop_instance_uid,frame,x,y,width,height',
      `${MRN},L4_L5,LEFT,${UID('1')},0,4,4,32,32`,
      `${MRN},L4_L5,LEFT,${UID('4')},0,8,8,40,40`,
      `${MRN},L4_L5,RIGHT,${UID('14')},0,0,0,64,64`,
      `${MRN},L1_L2,LEFT,${UID('19')},0,0,0,16,16`, // the cut codestream: counted as failed, the job goes on
    ].join('\n');
    const images = await gqlOk(
      node().url,
      coordinator,
      `mutation ($site: ID!, $csv: String!) { importJointImagesManifest(siteId: $site, csv: $csv) { stored rejected { reason } } }`,
      { site: site.id, csv },
    );
    expect(images.importJointImagesManifest.stored).toBe(true);
    const form = new FormData();
    form.append('manifest', new Blob([JSON.stringify(MANIFEST)]), 'manifest.json');
    form.append('model', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.onnx'))]), 'model.onnx');
    const registered = await fetch(`${node().url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form });
    modelId = ((await registered.json()) as { id: string }).id;
    // A real pg-boss worker in this process.
    const handlers = jobHandlers(node().services);
    await node().services.queue.work(RUN_INFERENCE, handlers[RUN_INFERENCE]);
  });

  it('runs a queued job to completion, reporting progress over graphql-ws, and counts an undecodable image as failed', async () => {
    const started = await gqlOk(node().url, engineer, START, { id: modelId });
    expect(started.startInferenceJob).toMatchObject({ status: 'QUEUED', total: 4 });
    const live = await subscribe<{ jobProgress: { status: string; done: number } }>(
      node().url,
      engineer,
      `subscription ($id: ID!) { jobProgress(jobId: $id) { status done failed } }`,
      {
        id: started.startInferenceJob.id,
      },
    );
    try {
      await live.waitFor((e) => e.jobProgress.status === 'SUCCEEDED', 180_000);
    } finally {
      await live.close();
    }
    const job = await gqlOk(node().url, engineer, JOB, { id: started.startInferenceJob.id });
    expect(job.job).toMatchObject({ status: 'SUCCEEDED', total: 4, done: 3, failed: 1, provider: 'cpu' });
    // A subscriber that (re)connects later gets the current state first.
    const late = await subscribe<{ jobProgress: { status: string; done: number } }>(
      node().url,
      engineer,
      `subscription ($id: ID!) { jobProgress(jobId: $id) { status done } }`,
      {
        id: started.startInferenceJob.id,
      },
    );
    try {
      expect((await late.waitFor(() => true, 5000)).jobProgress).toEqual({ status: 'SUCCEEDED', done: 3 });
    } finally {
      await late.close();
    }
    expect(job.job.failures[0].reason).toMatch(/JPEG-LS Lossless data does not decode/);
    expect((await node().dataSource.query('SELECT count(*)::int AS n FROM prediction'))[0].n).toBe(3 * 5);
  });

  it('writes predictions equal (1e-5) to ONNX Runtime run directly on the same preprocessed tensor', async () => {
    const session = await ort.InferenceSession.create(readFileSync(path.join(ONNX, 'tiny-multitask.onnx')));
    const frame = await decodeFrame(readPart10(readFileSync(path.join(DICOM, 'identified-jpeg-ls.dcm'))), 0);
    const input = preprocess(frame, { x: 0, y: 0, width: 64, height: 64 }, MANIFEST.preprocessing.CT);
    const result = await session.run({ image: new ort.Tensor('float32', input, [1, 1, 16, 16]) });
    const rows: Array<{ feature: string; probabilities: number[] }> = await node().dataSource.query(
      `SELECT p.feature, p.probabilities FROM prediction p JOIN joint j ON j.id = p.joint_id WHERE j.level = 'L4_L5' AND j.side = 'RIGHT' AND p.modality = 'CT'`,
    );
    expect(rows).toHaveLength(5);
    for (const o of MANIFEST.outputs) {
      const expected = softmax(Array.from((result[o.name] as ort.Tensor).data as Float32Array));
      const stored = rows.find((r) => r.feature === o.feature)!.probabilities.map(Number);
      stored.forEach((p, i) => expect(Math.abs(p - expected[i])).toBeLessThan(1e-5));
    }
  });

  it('never duplicates predictions: a second job over the same scope counts them as done', async () => {
    const started = await gqlOk(node().url, engineer, START, { id: modelId });
    const deadline = Date.now() + 180_000;
    let job: any;
    do {
      await new Promise((r) => setTimeout(r, 200));
      job = (await gqlOk(node().url, engineer, JOB, { id: started.startInferenceJob.id })).job;
    } while (job.status !== 'SUCCEEDED' && Date.now() < deadline);
    expect(job).toMatchObject({ status: 'SUCCEEDED', done: 3 });
    expect((await node().dataSource.query('SELECT count(*)::int AS n FROM prediction'))[0].n).toBe(15);
  });

  it('cancels a queued job, refuses to cancel a finished one, and refuses a model without an ONNX file', async () => {
    // Restart the queue without a worker: the next job stays queued.
    await node().services.queue.stop();
    await node().services.queue.start();
    const queued = await gqlOk(node().url, engineer, START, { id: modelId });
    const cancelled = await gqlOk(node().url, engineer, `mutation ($id: ID!) { cancelJob(id: $id) { status } }`, { id: queued.startInferenceJob.id });
    expect(cancelled.cancelJob.status).toBe('CANCELLED');
    expect(codeOf(await gql(node().url, engineer, `mutation ($id: ID!) { cancelJob(id: $id) { status } }`, { id: queued.startInferenceJob.id }))).toBe(
      'JOB_NOT_CANCELLABLE',
    );
    const external = await gqlOk(node().url, engineer, `mutation { registerExternalModel(input: { name: "elsewhere", version: "1" }) { id } }`);
    expect(codeOf(await gql(node().url, engineer, START, { id: external.registerExternalModel.id }))).toBe('BAD_USER_INPUT');
  });

  it('keeps a queued job across a restart of the queue, and two workers share the queue without double work', async () => {
    // The queue is running without a worker (previous test): queue jobs, then "restart" it.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await gqlOk(node().url, engineer, START, { id: modelId })).startInferenceJob.id);
    await node().services.queue.stop();
    await node().services.queue.start();
    // Two independent workers (two pg-boss clients) on the same database.
    const handlers = jobHandlers(node().services);
    const second = new JobQueue(node().database.url, { supervise: false });
    await second.start();
    try {
      await node().services.queue.work(RUN_INFERENCE, handlers[RUN_INFERENCE]);
      await second.work(RUN_INFERENCE, handlers[RUN_INFERENCE]);
      const deadline = Date.now() + 180_000;
      let statuses: string[] = [];
      do {
        await new Promise((r) => setTimeout(r, 200));
        statuses = await Promise.all(ids.map(async (id) => (await gqlOk(node().url, engineer, JOB, { id })).job.status));
      } while (statuses.some((s) => s !== 'SUCCEEDED') && Date.now() < deadline);
      expect(statuses).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
      // Each queued job ran exactly once: one completed pg-boss job per inference job, none retried.
      const runs: Array<{ id: string; n: number; retries: number }> = await node().dataSource.query(
        `SELECT data->>'inferenceJobId' AS id, count(*)::int AS n, max(retry_count)::int AS retries FROM pgboss.job WHERE name = 'run-inference' AND data->>'inferenceJobId' = ANY($1) GROUP BY 1`,
        [ids],
      );
      expect(runs.map((r) => [r.n, r.retries])).toEqual([
        [1, 0],
        [1, 0],
        [1, 0],
      ]);
      expect((await node().dataSource.query('SELECT count(*)::int AS n FROM prediction'))[0].n).toBe(15);
    } finally {
      await second.stop();
    }
  });
});
