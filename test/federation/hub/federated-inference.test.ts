import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REFERENCE_MODEL_DIR } from '../../../server/demo/demo-cohort';
import { Role } from '../../../server/domain';
import { canonicalSha256, type JsonValue } from '../../../server/federation/canonical-json';
import { EnvelopeKind, signEnvelope } from '../../../server/federation/envelope';
import { modelRequestAuthorization, type ProgressPayload } from '../../../server/federation/federated-inference';
import { NodeIdentity } from '../../../server/federation/identity';
import type { TaskPayload } from '../../../server/federation/protocol';
import { systemContext } from '../../../server/services';
import { sha256Of } from '../../../server/storage/object-store';
import { codeOf, gql, gqlOk } from '../../helpers/graphql-client';
import { filePassed } from '../../helpers/lifecycle';
import { startTestHub, type ScriptedNode, type TestHub } from './hub-harness';

/**
 * The hub's side of federated inference against scripted nodes (they sign with real identities and speak through
 * hub-client.ts): starting a job, the signed model download, progress reports, results, cancellation, and every
 * refusal with its code.
 */
let hub: TestHub;
let engineer: string;
let model: { id: string; sha256: string };
beforeAll(async () => {
  hub = await startTestHub(['NORTH', 'HARBOUR']);
  engineer = (await hub.node.services.tokens.createApiToken(systemContext('test'), { name: 'ml', role: Role.ENGINEER })).secret;
  const form = new FormData();
  form.append('manifest', new Blob([readFileSync(path.join(REFERENCE_MODEL_DIR, 'manifest.json'))]), 'manifest.json');
  form.append('model', new Blob([readFileSync(path.join(REFERENCE_MODEL_DIR, 'model.onnx'))]), 'model.onnx');
  const registered = await fetch(`${hub.url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form });
  expect(registered.status).toBe(201);
  model = (await registered.json()) as { id: string; sha256: string };
});
afterAll(async () => {
  await hub?.close(filePassed());
});

const FIELDS = `id status model { sha256 } sites { site state total done failed rate etaSeconds executionProvider reason result { modelSha256 done } } total { finished ended total done }`;
const start = (input: Record<string, unknown>, token = engineer) =>
  gql(hub.url, token, `mutation ($input: FederatedInferenceInput!) { startFederatedInference(input: $input) { ${FIELDS} } }`, {
    input: { modelVersionId: model.id, ...input },
  });
const read = async (id: string) =>
  (await gqlOk(hub.url, engineer, `query ($id: ID!) { federatedInference(id: $id) { ${FIELDS} } }`, { id })).federatedInference;
const site = (job: { sites: Array<Record<string, any>> }, code: string) => job.sites.find((s) => s.site === code)!;
const scripted = (code: string): ScriptedNode => hub.nodes.get(code)!;

function report(node: ScriptedNode, task: TaskPayload, over: Partial<ProgressPayload> = {}, signer: NodeIdentity = node.identity) {
  const payload: ProgressPayload = {
    taskId: task.taskId,
    taskSha256: canonicalSha256(task),
    site: node.code,
    sequence: 1,
    phase: 'RUNNING',
    total: 40,
    done: 10,
    failed: 0,
    elapsedSeconds: 5,
    executionProvider: 'cpu',
    ...over,
  };
  const envelope = signEnvelope(signer, { kind: EnvelopeKind.PROGRESS, signer: node.code, audience: 'hub', payload });
  return node.hub.reportProgress(envelope);
}

const download = (sha256: string, authorization?: string) =>
  fetch(`${hub.url}/federation/models/${sha256}`, { headers: authorization ? { authorization } : {} });
const requestFor = (node: ScriptedNode, taskId: string, sha256: string, signer: NodeIdentity = node.identity) =>
  modelRequestAuthorization(
    signEnvelope(signer, { kind: EnvelopeKind.MODEL_REQUEST, signer: node.code, audience: 'hub', payload: { site: node.code, taskId, modelSha256: sha256 } }),
  );

describe('federated inference at the hub', () => {
  it('refuses bad starts with their codes', async () => {
    expect(codeOf(await start({ sites: ['EAST'] }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await start({ deadlineSeconds: 0 }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await start({ modelVersionId: '00000000-0000-4000-8000-000000000000' }))).toBe('NOT_FOUND');
    expect(codeOf(await start({}, hub.token))).toBe('FORBIDDEN');
    const asQuery = await gql(hub.url, hub.token, `mutation { startFederatedQuery(input: { kind: INFERENCE }) { id } }`);
    expect(codeOf(asQuery)).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(hub.url, engineer, `query { federatedInference(id: "00000000-0000-4000-8000-000000000000") { id } }`))).toBe('NOT_FOUND');
  });

  it('hands the model to a site that claimed its task, takes its progress and result, and shows the site that never claimed as WAITING', async () => {
    const started = await start({ sites: ['NORTH', 'HARBOUR'], modalities: ['XR'] });
    expect(started.errors).toBeUndefined();
    const id = started.data!.startFederatedInference.id;
    expect(started.data!.startFederatedInference.sites.map((s: { state: string }) => s.state)).toEqual(['WAITING', 'WAITING']);
    // Listed with the inference jobs (a statistician reads them too), not with the federated queries.
    expect((await gqlOk(hub.url, hub.token, `{ federatedInferences { id } }`)).federatedInferences.map((j: { id: string }) => j.id)).toContain(id);
    expect((await gqlOk(hub.url, hub.token, `{ federatedQueries { id } }`)).federatedQueries.map((q: { id: string }) => q.id)).not.toContain(id);
    const north = scripted('NORTH');
    const harbour = scripted('HARBOUR');
    // HARBOUR holds no claimed task: it may not download, nor report.
    expect((await download(model.sha256, requestFor(harbour, id, model.sha256))).status).toBe(403);
    const [task] = (await north.claim()).tasks;
    expect(task).toMatchObject({
      taskId: id,
      kind: 'INFERENCE',
      query: { model: { sha256: model.sha256, name: 'facet-reference', version: '1.0.0' }, modalities: ['XR'] },
    });
    expect(site(await read(id), 'NORTH').state).toBe('QUEUED');

    // The download: the signed request is the authentication, and it is checked like any envelope.
    expect((await download(model.sha256)).status).toBe(401);
    expect((await download(model.sha256, 'Bearer fct_x')).status).toBe(401);
    expect((await download(model.sha256, requestFor(north, id, model.sha256, NodeIdentity.generate()))).status).toBe(401);
    expect((await download('c'.repeat(64), requestFor(north, id, 'c'.repeat(64)))).status).toBe(403);
    expect((await download(model.sha256, requestFor(north, id, 'c'.repeat(64)))).status).toBe(403);
    const authorization = requestFor(north, id, model.sha256);
    const fetched = await download(model.sha256, authorization);
    expect(fetched.status).toBe(200);
    expect(await sha256Of(Buffer.from(await fetched.arrayBuffer()))).toBe(model.sha256);
    const replayed = await download(model.sha256, authorization);
    expect(replayed.status).toBe(401);
    expect(((await replayed.json()) as { errors: Array<{ extensions: { reason: string } }> }).errors[0].extensions.reason).toBe('REPLAYED');
    // Through the node's own client, as a node fetches it.
    const bytes = await north.hub.fetchModel(`${hub.url}/federation/models/${model.sha256}`, requestFor(north, id, model.sha256), 10_000_000);
    expect(await sha256Of(bytes)).toBe(model.sha256);
    await expect(north.hub.fetchModel(`${hub.url}/federation/models/${model.sha256}`, requestFor(north, id, model.sha256), 100)).rejects.toThrow(
      /more than 100/,
    );

    // Progress: counts only, newest sequence wins, every malformed or foreign report refused with its code and ignored.
    expect(await report(north, task, { sequence: 2, phase: 'RUNNING', done: 10 })).toEqual({ accepted: true, code: null });
    expect(await report(north, task, { sequence: 1, phase: 'QUEUED', done: 0 })).toEqual({ accepted: true, code: null });
    const running = site(await read(id), 'NORTH');
    expect(running).toMatchObject({ state: 'RUNNING', total: 40, done: 10, rate: 2, etaSeconds: 15, executionProvider: 'cpu' });
    expect(await report(north, task, { sequence: 3, done: 41 })).toMatchObject({ accepted: false, code: 'MALFORMED_PROGRESS' });
    expect(await report(north, task, { sequence: 3, taskSha256: 'd'.repeat(64) })).toMatchObject({ accepted: false, code: 'TASK_HASH_MISMATCH' });
    expect(await report(north, { ...task, taskId: '00000000-0000-4000-8000-000000000000' })).toMatchObject({ accepted: false, code: 'UNKNOWN_TASK' });
    expect(await report(north, task, { site: 'HARBOUR', sequence: 3 })).toMatchObject({ accepted: false, code: 'NOT_ADDRESSEE' });
    expect(await report(north, task, { sequence: 3 }, NodeIdentity.generate())).toMatchObject({ accepted: false, code: 'UNKNOWN_SIGNER' });
    expect(site(await read(id), 'NORTH')).toMatchObject({ state: 'RUNNING', done: 10 });

    // The result: only the run's provenance, naming the task's model.
    const provenance = {
      modelSha256: model.sha256,
      executionProvider: 'cpu',
      facetVersion: 'test',
      job: { status: 'SUCCEEDED', total: 40, done: 39, failed: 1 },
    };
    const withManifest = (aggregate: JsonValue) => {
      const payload = north.resultPayload(task, { aggregate });
      payload.manifest.modelSha256 = model.sha256;
      return north.sign(payload);
    };
    expect(await north.submit(withManifest({ ...provenance, predictions: [0.5] }))).toMatchObject({ accepted: false, code: 'BAD_AGGREGATE' });
    expect(await north.submit(withManifest({ ...provenance, modelSha256: 'e'.repeat(64) }))).toMatchObject({ accepted: false, code: 'BAD_AGGREGATE' });
    expect(await north.submit(withManifest(provenance))).toMatchObject({ accepted: true, code: null });
    const done = await read(id);
    expect(site(done, 'NORTH')).toMatchObject({
      state: 'FINISHED',
      total: 40,
      done: 39,
      failed: 1,
      etaSeconds: 0,
      result: { modelSha256: model.sha256, done: 39 },
    });
    expect(site(done, 'HARBOUR')).toMatchObject({ state: 'WAITING', total: 0, reason: null, result: null });
    expect(done).toMatchObject({ status: 'RUNNING', total: { finished: 1, ended: 1, total: 40, done: 39 } });

    // Cancelled: HARBOUR never had it (CANCELLED at once); a second cancel is refused; its download is refused now.
    const cancelled = await gqlOk(hub.url, engineer, `mutation ($id: ID!) { cancelFederatedInference(id: $id) { status sites { site state } } }`, { id });
    expect(cancelled.cancelFederatedInference).toEqual({
      status: 'CANCELLED',
      sites: [
        { site: 'HARBOUR', state: 'CANCELLED' },
        { site: 'NORTH', state: 'FINISHED' },
      ],
    });
    expect(codeOf(await gql(hub.url, engineer, `mutation ($id: ID!) { cancelFederatedInference(id: $id) { id } }`, { id }))).toBe('JOB_NOT_CANCELLABLE');
    expect((await download(model.sha256, requestFor(north, id, model.sha256))).status).toBe(403);
  });

  it('tells a site that claimed a cancelled job in its next claim, and shows it CANCELLING until the site confirms', async () => {
    const id = (await start({ sites: ['HARBOUR'] })).data!.startFederatedInference.id;
    const harbour = scripted('HARBOUR');
    const [task] = (await harbour.claim()).tasks;
    expect(await report(harbour, task, { sequence: 1, phase: 'RUNNING', done: 3 })).toMatchObject({ accepted: true });
    // A long-poll pending when the job is cancelled wakes with it.
    const pending = harbour.claim(10, { working: [id] });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await gqlOk(hub.url, engineer, `mutation ($id: ID!) { cancelFederatedInference(id: $id) { id } }`, { id });
    const woken = await pending;
    expect(woken.cancelled).toEqual([id]);
    expect(site(await read(id), 'HARBOUR').state).toBe('CANCELLING');
    expect((await harbour.claim()).cancelled).toEqual([]);
    expect(await report(harbour, task, { sequence: 2, phase: 'CANCELLED', done: 3 })).toMatchObject({ accepted: true });
    expect(site(await read(id), 'HARBOUR')).toMatchObject({ state: 'CANCELLED', reason: 'CANCELLED' });
    const late = harbour.sign(harbour.resultPayload(task, { state: 'FAILED', reason: 'CANCELLED' }));
    expect(await harbour.submit(late)).toMatchObject({ accepted: false, code: 'TASK_CANCELLED' });
  });
});
