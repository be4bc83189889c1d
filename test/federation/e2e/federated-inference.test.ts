import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { REFERENCE_MODEL_DIR } from '../../../server/demo/demo-cohort';
import { readPart10 } from '../../../server/dicom/reader';
import { parseManifest } from '../../../server/inference/manifest';
import { decodeFrame, preprocess } from '../../../server/inference/pixels';
import { softmax } from '../../../server/inference/session-cache';
import { FACET_VERSION } from '../../../server/services/federation-node/federation-node.service';
import { FileObjectStore } from '../../../server/storage/file-object-store';
import { codeOf, gql, gqlOk, subscribe } from '../../helpers/graphql-client';
import { filePassed } from '../../helpers/lifecycle';
import { runCli, SITE_CODES, startFederationCluster, until, type ClusterNode, type FederationCluster } from '../../helpers/federation-cluster';

/**
 * Federated inference end to end: a hub and three node processes, each node with its own database and object store
 * holding only its site's phantom images (XR) and no model. The hub holds the reference model; each node fetches it
 * over its outbound channel, checks it, registers it, runs it on its own images, and reports progress to the hub.
 */
let cluster: FederationCluster;
let engineer: string;
let model: { id: string; sha256: string };
/** The nodes reach the hub through this relay, which can flip a byte of the model files it passes on (a network at fault). */
let relay: http.Server;
let damageModels = false;
const SITES = [...SITE_CODES].sort();
const INFERENCE_POLICY = { taskKinds: ['STUDY_FLOW', 'BINARY_COUNTS', 'SCORE_HISTOGRAM', 'PLACEMENT_SUMS', 'BOOTSTRAP_SUMS', 'INFERENCE'] };

beforeAll(async () => {
  let relayUrl = '';
  cluster = await startFederationCluster({
    data: 'images',
    onHubStarted: async (hubUrl) => {
      relay = startRelay(new URL(hubUrl));
      await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
      relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    },
    hubUrlFor: () => relayUrl,
  });
  const hubEnv = { DATABASE_URL: cluster.hub.database.url, FACET_DATA_DIR: cluster.hub.dataDir };
  const made = await runCli(['create-token', '--role', 'ENGINEER', '--name', 'ml-engineer'], hubEnv);
  if (made.code !== 0) throw new Error(made.err);
  engineer = made.out.trim().split('\n').at(-1)!;
  const form = new FormData();
  form.append('manifest', new Blob([readFileSync(path.join(REFERENCE_MODEL_DIR, 'manifest.json'))]), 'manifest.json');
  form.append('model', new Blob([readFileSync(path.join(REFERENCE_MODEL_DIR, 'model.onnx'))]), 'model.onnx');
  const registered = await fetch(`${cluster.hub.url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form });
  expect(registered.status).toBe(201);
  model = (await registered.json()) as { id: string; sha256: string };
  for (const code of SITES) await setPolicy(code, INFERENCE_POLICY);
}, 600_000);
afterAll(async () => {
  await cluster?.close(filePassed());
  relay?.closeAllConnections();
  await new Promise((resolve) => relay?.close(resolve));
});

/** Passes every request on to the hub; while `damageModels` is set, a model file arrives with its last byte flipped. */
function startRelay(hub: URL): http.Server {
  return http.createServer((req, res) => {
    const upstream = http.request({ host: hub.hostname, port: hub.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      if (!(damageModels && req.url?.startsWith('/federation/models/'))) {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        const body = Buffer.concat(chunks);
        if (body.length > 0) body[body.length - 1] ^= 0xff;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        res.end(body);
      });
    });
    upstream.on('error', () => res.destroy());
    // A node that goes away ends its request at the hub too (the hub then hands its long-poll's tasks to nobody).
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
}

const node = (code: string): ClusterNode => cluster.nodes.get(code)!;
const setPolicy = (code: string, policy: Record<string, unknown>) =>
  gqlOk(node(code).process!.url, node(code).tokens.admin, `mutation ($p: ReleasePolicyInput!) { setReleasePolicy(policy: $p) { sha256 } }`, { p: policy });

const JOB_FIELDS = `id status model { sha256 name version bytes } modalities
  sites { site state total done failed rate etaSeconds executionProvider reason updatedAt
          result { modelSha256 executionProvider facetVersion total done failed resultSha256 } }
  total { sites finished ended total done failed rate etaSeconds }`;
const START = `mutation ($input: FederatedInferenceInput!) { startFederatedInference(input: $input) { ${JOB_FIELDS} } }`;
const READ = `query ($id: ID!) { federatedInference(id: $id) { ${JOB_FIELDS} } }`;
type Job = Record<string, any> & { sites: Array<Record<string, any>> };

const start = async (input: Record<string, unknown>): Promise<Job> =>
  (await gqlOk(cluster.hub.url, engineer, START, { input: { modelVersionId: model.id, ...input } })).startFederatedInference;
const read = async (id: string): Promise<Job> => (await gqlOk(cluster.hub.url, engineer, READ, { id })).federatedInference;
const siteOf = (job: Job, code: string) => job.sites.find((s) => s.site === code)!;
async function waitFor(id: string, what: string, done: (job: Job) => boolean, ms = 180_000): Promise<Job> {
  let last: Job = { sites: [] };
  await until(`${what} (last: ${JSON.stringify(last.sites?.map((s) => [s.site, s.state, s.reason]))})`, async () => done((last = await read(id))), ms);
  return last;
}
const runsAt = async (code: string) =>
  (await gqlOk(node(code).process!.url, node(code).tokens.engineer, `{ federatedInferenceRuns { taskId state phase modelSha256 inferenceJobId reason } }`))
    .federatedInferenceRuns as Array<Record<string, any>>;

/** The order a site moves through; a live view never shows a site going back. */
const RANK: Record<string, number> = { WAITING: 0, APPROVING: 1, QUEUED: 2, RUNNING: 3, FINISHED: 4 };

describe('federated inference with a hub and three node processes', () => {
  it('runs the hub’s model at all three nodes, whose predictions equal ONNX Runtime on their own images (1e-5), live to completion', async () => {
    const job = await start({});
    expect(job).toMatchObject({ status: 'RUNNING', model: { sha256: model.sha256, name: 'facet-reference', version: '1.0.0' } });
    const live = await subscribe<{ federatedJobProgress: Job }>(
      cluster.hub.url,
      engineer,
      `subscription ($id: ID!) { federatedJobProgress(id: $id) { ${JOB_FIELDS} } }`,
      {
        id: job.id,
      },
    );
    try {
      await live.waitFor((e) => e.federatedJobProgress.status === 'COMPLETE', 300_000);
    } finally {
      await live.close();
    }
    expect(live.errors).toEqual([]);
    const views = live.events.map((e) => e.federatedJobProgress);
    // Every site's progress in order: states never go back, counters never shrink, and each ends FINISHED with all counted.
    for (const code of SITES) {
      const seen = views.map((v) => siteOf(v, code));
      for (let i = 1; i < seen.length; i++) {
        expect([code, RANK[seen[i].state] >= RANK[seen[i - 1].state]]).toEqual([code, true]);
        expect(seen[i].done).toBeGreaterThanOrEqual(seen[i - 1].done);
      }
      expect(seen.at(-1)).toMatchObject({ state: 'FINISHED', failed: 0, etaSeconds: 0, executionProvider: 'cpu', reason: null });
      expect(seen.at(-1)!.done).toBe(seen.at(-1)!.total);
    }
    const final = views.at(-1)!;
    expect(final.total).toMatchObject({ sites: 3, finished: 3, ended: 3, failed: 0 });
    expect(final.total.done).toBe(final.total.total);

    const manifest = parseManifest(JSON.parse(readFileSync(path.join(REFERENCE_MODEL_DIR, 'manifest.json'), 'utf8')));
    const session = await ort.InferenceSession.create(readFileSync(path.join(REFERENCE_MODEL_DIR, 'model.onnx')));
    for (const code of SITES) {
      const site = node(code);
      // Provenance: the site ran exactly the hub's file, on its execution provider, and counted every image.
      const images: Array<{ jointId: string; modality: 'XR'; frame: number; x: number; y: number; width: number; height: number; sha256: string }> =
        await site.query(
          `SELECT ji.joint_id AS "jointId", se.modality, ji.frame, ji.roi_x AS x, ji.roi_y AS y, ji.roi_width AS width, ji.roi_height AS height, trim(i.sha256) AS sha256
             FROM joint_image ji JOIN instance i ON i.id = ji.instance_id JOIN series se ON se.id = i.series_id`,
        );
      expect(images.length).toBeGreaterThan(0);
      expect(siteOf(final, code).result).toMatchObject({
        modelSha256: model.sha256,
        executionProvider: 'cpu',
        facetVersion: FACET_VERSION,
        total: images.length,
        done: images.length,
        failed: 0,
      });
      const [version] = await site.query<{ id: string; name: string; version: string }>(`SELECT id, name, version FROM model_version WHERE sha256 = $1`, [
        model.sha256,
      ]);
      expect(version).toMatchObject({ name: 'facet-reference', version: '1.0.0' });
      const stored = await site.query<{ jointId: string; modality: string; feature: string; probabilities: number[] }>(
        `SELECT joint_id AS "jointId", modality, feature, probabilities FROM prediction WHERE model_version_id = $1`,
        [version.id],
      );
      expect(stored.length).toBe(images.length * manifest.outputs.length);
      const byCell = new Map(stored.map((p) => [`${p.jointId}:${p.modality}:${p.feature}`, p.probabilities.map(Number)]));
      const objects = new FileObjectStore(path.join(site.dataDir, 'objects'));
      let worst = 0;
      for (const image of images) {
        const frame = await decodeFrame(readPart10(await objects.read(image.sha256)), image.frame);
        const tensor = new ort.Tensor('float32', preprocess(frame, image, manifest.preprocessing[image.modality]!), [1, 1, 64, 64]);
        const result = await session.run({ [manifest.input.name]: tensor });
        for (const output of manifest.outputs) {
          const expected = softmax(Array.from((result[output.name] as ort.Tensor).data as Float32Array));
          const actual = byCell.get(`${image.jointId}:${image.modality}:${output.feature}`)!;
          expected.forEach((p, g) => (worst = Math.max(worst, Math.abs(p - actual[g]))));
        }
      }
      expect([code, worst < 1e-5]).toEqual([code, true]);
    }

    // The predictions feed the federated statistics: the model, named by its sha256, is a rater at every node.
    const query = await gqlOk(cluster.hub.url, cluster.hub.token, `mutation ($input: FederatedQueryInput!) { startFederatedQuery(input: $input) { id } }`, {
      input: { kind: 'BINARY_COUNTS', rater: { modelSha256: model.sha256 }, groupBy: ['FEATURE'], deadlineSeconds: 300 },
    });
    let answer: Record<string, any> = {};
    await until('the binary counts of the federated model', async () => {
      answer = (
        await gqlOk(
          cluster.hub.url,
          cluster.hub.token,
          `query ($id: ID!) { federatedQuery(id: $id) { status sites { site state reason } answer { metrics { pooled site feature patients confusion { tp fp tn fn } } } } }`,
          { id: query.startFederatedQuery.id },
        )
      ).federatedQuery;
      return answer.status !== 'RUNNING';
    });
    expect(answer.status).toBe('COMPLETE');
    const pooled = answer.answer.metrics.filter((r: { pooled: boolean }) => r.pooled);
    expect(pooled.map((r: { feature: string }) => r.feature).sort()).toEqual(manifest.outputs.map((o) => o.feature).sort());
    for (const row of pooled) expect(row.confusion.tp + row.confusion.fp + row.confusion.tn + row.confusion.fn).toBeGreaterThan(0);

    // And a statistician asks the hub `metrics` with the model as rater, as at a node: the same pooled counts.
    const metrics = (
      await gqlOk(
        cluster.hub.url,
        cluster.hub.token,
        `query ($input: MetricsInput!, $f: HubRunInput) { metrics(input: $input, federation: $f) {
          federation { status sites { site status } } groups { pooled feature confusion { tp fp tn fn } } } }`,
        { input: { rater: { modelSha256: model.sha256 }, groupBy: ['FEATURE'] }, f: { waitSeconds: 240 } },
      )
    ).metrics;
    expect(metrics.federation.status).toBe('COMPLETE');
    expect(metrics.federation.sites.map((s: { status: string }) => s.status)).toEqual(['ANSWERED', 'ANSWERED', 'ANSWERED']);
    // The node's shape: a group per feature, then the overall group (feature null).
    const confusionOf = (rows: Array<{ feature: string | null; confusion: unknown }>) =>
      Object.fromEntries(rows.filter((r) => r.feature !== null).map((r) => [r.feature, r.confusion]));
    expect(confusionOf(metrics.groups)).toEqual(confusionOf(pooled));
  });

  it('runs at a node whose policy holds new models only after its engineer approves, and refuses at one whose engineer refuses', async () => {
    await setPolicy('NORTH', { ...INFERENCE_POLICY, manualApproval: true });
    await setPolicy('HARBOUR', { ...INFERENCE_POLICY, manualApproval: true });
    const job = await start({ sites: ['HARBOUR', 'NORTH'] });
    const held = await waitFor(job.id, 'both sites approving', (j) => j.sites.every((s) => s.state === 'APPROVING'));
    expect(held.status).toBe('RUNNING');
    const [northRun] = (await runsAt('NORTH')).filter((r) => r.taskId === job.id);
    expect(northRun).toMatchObject({ state: 'HELD', phase: 'APPROVING', modelSha256: model.sha256, inferenceJobId: null });
    // Nothing runs while it waits: no job at the node, and the coordinator's release mutation does not decide models.
    const released = await gql(
      node('NORTH').process!.url,
      node('NORTH').tokens.coordinator,
      `mutation ($id: String!) { approveFederationRelease(taskId: $id) { state } }`,
      { id: job.id },
    );
    expect(codeOf(released)).toBe('CONFLICT');
    const asCoordinator = await gql(
      node('NORTH').process!.url,
      node('NORTH').tokens.coordinator,
      `mutation ($id: String!) { approveFederatedInference(taskId: $id) { state } }`,
      {
        id: job.id,
      },
    );
    expect(codeOf(asCoordinator)).toBe('FORBIDDEN');
    expect(siteOf(await read(job.id), 'NORTH').state).toBe('APPROVING');

    const approved = await gqlOk(
      node('NORTH').process!.url,
      node('NORTH').tokens.engineer,
      `mutation ($id: String!) { approveFederatedInference(taskId: $id) { state phase inferenceJobId } }`,
      {
        id: job.id,
      },
    );
    expect(approved.approveFederatedInference.inferenceJobId).toEqual(expect.any(String));
    const refused = await gqlOk(
      node('HARBOUR').process!.url,
      node('HARBOUR').tokens.engineer,
      `mutation ($id: String!) { refuseFederatedInference(taskId: $id, reason: "Not validated on our scanners yet") { state phase reason } }`,
      { id: job.id },
    );
    expect(refused.refuseFederatedInference).toMatchObject({ phase: 'REFUSED', reason: 'REFUSED_BY_ENGINEER' });
    const done = await waitFor(job.id, 'NORTH finished and HARBOUR refused', (j) => j.status !== 'RUNNING');
    expect(siteOf(done, 'NORTH')).toMatchObject({ state: 'FINISHED', result: { modelSha256: model.sha256 } });
    expect(siteOf(done, 'HARBOUR')).toMatchObject({ state: 'REFUSED', reason: 'REFUSED_BY_ENGINEER', result: null });
    // A second decision on the same task is a conflict.
    const again = await gql(
      node('NORTH').process!.url,
      node('NORTH').tokens.engineer,
      `mutation ($id: String!) { approveFederatedInference(taskId: $id) { state } }`,
      { id: job.id },
    );
    expect(codeOf(again)).toBe('CONFLICT');
    await setPolicy('NORTH', INFERENCE_POLICY);
    await setPolicy('HARBOUR', INFERENCE_POLICY);
  });

  it('shows an offline node as waiting while the others finish, and runs there once it is back', async () => {
    const valley = node('VALLEY');
    await valley.kill();
    const job = await start({});
    const partial = await waitFor(job.id, 'NORTH and HARBOUR finished', (j) => ['NORTH', 'HARBOUR'].every((c) => siteOf(j, c).state === 'FINISHED'));
    expect(siteOf(partial, 'VALLEY')).toMatchObject({ state: 'WAITING', total: 0, done: 0, reason: null, updatedAt: null });
    expect(partial.status).toBe('RUNNING');
    await valley.start();
    const complete = await waitFor(job.id, 'VALLEY finished after its restart', (j) => j.status !== 'RUNNING');
    expect(complete.status).toBe('COMPLETE');
    expect(siteOf(complete, 'VALLEY')).toMatchObject({ state: 'FINISHED', result: { modelSha256: model.sha256, failed: 0 } });
  });

  it('cancels at every node: each stops its task and confirms, and nothing runs after', async () => {
    for (const code of SITES) await setPolicy(code, { ...INFERENCE_POLICY, manualApproval: true });
    const job = await start({});
    await waitFor(job.id, 'every site approving', (j) => j.sites.every((s) => s.state === 'APPROVING'));
    const cancelled = await gqlOk(cluster.hub.url, engineer, `mutation ($id: ID!) { cancelFederatedInference(id: $id) { status sites { site state } } }`, {
      id: job.id,
    });
    expect(cancelled.cancelFederatedInference.status).toBe('CANCELLED');
    const confirmed = await waitFor(job.id, 'every node confirming', (j) => j.sites.every((s) => s.state === 'CANCELLED'), 90_000);
    expect(confirmed.status).toBe('CANCELLED');
    for (const code of SITES) {
      const [run] = (await runsAt(code)).filter((r) => r.taskId === job.id);
      expect([code, run]).toMatchObject([code, { phase: 'CANCELLED', reason: 'CANCELLED', inferenceJobId: null }]);
      const late = await gql(
        node(code).process!.url,
        node(code).tokens.engineer,
        `mutation ($id: String!) { approveFederatedInference(taskId: $id) { state } }`,
        { id: job.id },
      );
      expect([code, codeOf(late)]).toEqual([code, 'CONFLICT']);
    }
    const twice = await gql(cluster.hub.url, engineer, `mutation ($id: ID!) { cancelFederatedInference(id: $id) { status } }`, { id: job.id });
    expect(codeOf(twice)).toBe('JOB_NOT_CANCELLABLE');
    for (const code of SITES) await setPolicy(code, INFERENCE_POLICY);
  });

  it('is refused by every node when the bytes that arrive do not match the model’s sha256 (MODEL_SHA256_MISMATCH)', async () => {
    // The signed task names the model's sha256; the relay between the hub and the nodes damages the file on its way.
    damageModels = true;
    try {
      const job = await start({});
      const refused = await waitFor(job.id, 'every node refusing the damaged file', (j) => j.status !== 'RUNNING');
      for (const code of SITES)
        expect([code, siteOf(refused, code)]).toMatchObject([code, { state: 'REFUSED', reason: 'MODEL_SHA256_MISMATCH', result: null }]);
      expect(refused.status).toBe('INSUFFICIENT');
    } finally {
      damageModels = false;
    }
  });
});
