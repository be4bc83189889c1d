import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { REFERENCE_MODEL_DIR } from '../../../server/demo/demo-cohort';
import { Role } from '../../../server/domain';
import { HubClient } from '../../../server/federation/hub-client';
import { loadOrCreateNodeIdentity } from '../../../server/federation/identity';
import { addSite, registryEntryFor } from '../../../server/federation/site-registry';
import { systemContext } from '../../../server/services';
import { codeOf, gql, gqlOk } from '../../helpers/graphql-client';
import { filePassed } from '../../helpers/lifecycle';
import { startTestNode, type TestNode } from '../../helpers/test-node';
import { startTestHub, type TestHub } from '../hub/hub-harness';

/**
 * A node's federated inference runner against a real in-process hub, step by step (claim, receive, compute, relay,
 * cancel driven by the test instead of a worker, so each state can be looked at): every way a node refuses or fails
 * a model, with its code at the hub, and a cancel that stops the node's job.
 */
const ONNX = path.resolve(__dirname, '../../fixtures/onnx');
let hub: TestHub;
let node: TestNode;
let dataDir: string;
let hubEngineer: string;
let nodeEngineer: string;
let claims: HubClient;

async function register(url: string, token: string, manifest: object, file: string): Promise<{ id: string; sha256: string }> {
  const form = new FormData();
  form.append('manifest', new Blob([JSON.stringify(manifest)]), 'manifest.json');
  form.append('model', new Blob([readFileSync(file)]), 'model.onnx');
  const response = await fetch(`${url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; sha256: string };
}
const REFERENCE_MANIFEST = JSON.parse(readFileSync(path.join(REFERENCE_MODEL_DIR, 'manifest.json'), 'utf8'));
const TINY_MANIFEST = JSON.parse(readFileSync(path.join(ONNX, 'tiny-multitask.manifest.json'), 'utf8'));

beforeAll(async () => {
  hub = await startTestHub(['HARBOUR']);
  hubEngineer = (await hub.node.services.tokens.createApiToken(systemContext('test'), { name: 'ml', role: Role.ENGINEER })).secret;
  // The node's identity first, joined to the hub's registry as an operator adds a member.
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'facet-fedinfer-node-'));
  const identity = await loadOrCreateNodeIdentity(dataDir);
  await addSite(hub.sitesDir, registryEntryFor(identity, { code: 'NORTH', name: 'North', contact: { name: 'Admin', email: 'admin@north.example' } }));
  node = await startTestNode({ federation: { site: 'NORTH', hubUrl: `${hub.url}/graphql`, hubSigningKey: hub.identity.public.signingKey, dataDir } });
  nodeEngineer = (await node.services.tokens.createApiToken(systemContext('test'), { name: 'node-ml', role: Role.ENGINEER })).secret;
  claims = new HubClient({ url: `${hub.url}/graphql`, graceMs: 10_000 });
});
afterAll(async () => {
  await claims?.close();
  await node?.close(filePassed());
  await hub?.close(filePassed());
  if (filePassed() && dataDir) await rm(dataDir, { recursive: true, force: true });
});

const READ = `query ($id: ID!) { federatedInference(id: $id) { status sites { site state reason total } } }`;
const north = async (id: string) =>
  (await gqlOk(hub.url, hubEngineer, READ, { id })).federatedInference.sites.find((s: { site: string }) => s.site === 'NORTH');
const setPolicy = (policy: Record<string, unknown>) =>
  gqlOk(node.url, adminToken, `mutation ($p: ReleasePolicyInput!) { setReleasePolicy(policy: $p) { sha256 } }`, { p: policy });
let adminToken = '';

/** What the node's worker does for a new task: claim it, store it, run the compute job. The inbox row's id. */
async function claimAndCompute(): Promise<string> {
  const federation = node.services.federationNode;
  const answer = await claims.claimTasks(federation.makeClaim(await federation.identity(), 0, []), 0);
  expect(answer.tasks).toHaveLength(1);
  const received = await federation.receiveTask(answer.tasks[0]);
  expect(received).toMatchObject({ stored: true, duplicate: false });
  const [{ id }] = await node.dataSource.query(`SELECT id FROM federation_inbox_task WHERE task_id = $1`, [(received as { taskId: string }).taskId]);
  expect(await federation.computeTask(id)).toBe('done');
  return id;
}
/** The result the node queued, delivered as its federation-submit job would. */
async function deliver(inboxTaskId: string): Promise<void> {
  expect(await node.services.federationNode.submitResult(inboxTaskId)).toBe('done');
}
const startAtHub = async (modelVersionId: string) =>
  (
    await gqlOk(hub.url, hubEngineer, `mutation ($id: ID!) { startFederatedInference(input: { modelVersionId: $id, sites: ["NORTH"] }) { id } }`, {
      id: modelVersionId,
    })
  ).startFederatedInference.id as string;
const inbox = async (inboxTaskId: string) =>
  (await node.dataSource.query(`SELECT state, reason FROM federation_inbox_task WHERE id = $1`, [inboxTaskId]))[0] as { state: string; reason: string | null };

describe('a node running the hub’s model', () => {
  let reference: { id: string; sha256: string };

  beforeAll(async () => {
    adminToken = (await node.services.tokens.createApiToken(systemContext('test'), { name: 'admin', role: Role.ADMIN })).secret;
    reference = await register(hub.url, hubEngineer, REFERENCE_MANIFEST, path.join(REFERENCE_MODEL_DIR, 'model.onnx'));
  });

  it('refuses an INFERENCE task its policy does not list (the default policy), before downloading anything', async () => {
    const id = await startAtHub(reference.id);
    const row = await claimAndCompute();
    expect(await inbox(row)).toEqual({ state: 'REFUSED', reason: 'TASK_KIND_NOT_ALLOWED' });
    await deliver(row);
    expect(await north(id)).toMatchObject({ state: 'REFUSED', reason: 'TASK_KIND_NOT_ALLOWED' });
    expect(await node.dataSource.query(`SELECT 1 FROM model_version`)).toEqual([]);
  });

  it('fails with MODEL_UNAVAILABLE when the hub no longer hands out the model (cancelled before the node computed)', async () => {
    await setPolicy({ taskKinds: ['STUDY_FLOW', 'BINARY_COUNTS', 'INFERENCE'] });
    const id = await startAtHub(reference.id);
    const federation = node.services.federationNode;
    const answer = await claims.claimTasks(federation.makeClaim(await federation.identity(), 0, []), 0);
    await federation.receiveTask(answer.tasks[0]);
    await gqlOk(hub.url, hubEngineer, `mutation ($id: ID!) { cancelFederatedInference(id: $id) { id } }`, { id });
    const [{ id: row }] = await node.dataSource.query(`SELECT id FROM federation_inbox_task WHERE task_id = $1`, [id]);
    expect(await federation.computeTask(row)).toBe('done');
    expect(await inbox(row)).toEqual({ state: 'FAILED', reason: 'MODEL_UNAVAILABLE' });
    // The hub cancelled the task: it takes no answer, and the node stops delivering.
    await deliver(row);
    expect(await inbox(row)).toMatchObject({ state: 'SUBMITTED' });
  });

  it('refuses a model its own registration refuses (its grading scheme differs: MODEL_MANIFEST_MISMATCH), storing nothing', async () => {
    const [{ grades }] = await node.dataSource.query(`SELECT grades FROM grading_feature WHERE code = 'OSTEOPHYTES'`);
    await node.dataSource.query(`UPDATE grading_feature SET grades = jsonb_path_query_array(grades, '$[0 to 1]') WHERE code = 'OSTEOPHYTES'`);
    try {
      const id = await startAtHub(reference.id);
      const row = await claimAndCompute();
      expect(await inbox(row)).toEqual({ state: 'REFUSED', reason: 'MODEL_MANIFEST_MISMATCH' });
      await deliver(row);
      expect(await north(id)).toMatchObject({ state: 'REFUSED', reason: 'MODEL_MANIFEST_MISMATCH' });
      expect(await node.dataSource.query(`SELECT 1 FROM model_version`)).toEqual([]);
    } finally {
      await node.dataSource.query(`UPDATE grading_feature SET grades = $1 WHERE code = 'OSTEOPHYTES'`, [JSON.stringify(grades)]);
    }
  });

  it('refuses a model whose name and version the node holds with another file (MODEL_VERSION_CONFLICT)', async () => {
    const named = { ...TINY_MANIFEST, name: 'shared-name', version: '1' };
    const atHub = await register(hub.url, hubEngineer, named, path.join(ONNX, 'tiny-multitask.onnx'));
    await register(node.url, nodeEngineer, { ...REFERENCE_MANIFEST, name: 'shared-name', version: '1' }, path.join(REFERENCE_MODEL_DIR, 'model.onnx'));
    const id = await startAtHub(atHub.id);
    const row = await claimAndCompute();
    expect(await inbox(row)).toEqual({ state: 'REFUSED', reason: 'MODEL_VERSION_CONFLICT' });
    await deliver(row);
    expect(await north(id)).toMatchObject({ state: 'REFUSED', reason: 'MODEL_VERSION_CONFLICT' });
  });

  it('reuses the model it holds by sha256, starts a job, relays its state, and stops the job when the hub cancels', async () => {
    const id = await startAtHub(reference.id);
    const row = await claimAndCompute();
    expect(await inbox(row)).toEqual({ state: 'COMPUTING', reason: null });
    // The node held the same file (registered under another name above): the same model version runs, no second copy.
    const [run] = await node.dataSource.query(`SELECT model_version_id, inference_job_id FROM federated_inference_run WHERE inbox_task_id = $1`, [row]);
    const [held] = await node.dataSource.query(`SELECT id, name FROM model_version WHERE sha256 = $1`, [reference.sha256]);
    expect(run.model_version_id).toBe(held.id);
    expect(held.name).toBe('shared-name');
    const [job] = await node.dataSource.query(`SELECT status FROM inference_job WHERE id = $1`, [run.inference_job_id]);
    expect(job.status).toBe('QUEUED');
    await node.services.federatedInferenceRunner.relayOnce();
    expect(await north(id)).toMatchObject({ state: 'QUEUED' });
    const runs = await gqlOk(node.url, nodeEngineer, `{ federatedInferenceRuns { taskId phase inferenceJobId } }`);
    expect(runs.federatedInferenceRuns.find((r: { taskId: string }) => r.taskId === id)).toEqual({
      taskId: id,
      phase: 'QUEUED',
      inferenceJobId: run.inference_job_id,
    });

    await gqlOk(hub.url, hubEngineer, `mutation ($id: ID!) { cancelFederatedInference(id: $id) { id } }`, { id });
    expect(await north(id)).toMatchObject({ state: 'CANCELLING' });
    const federation = node.services.federationNode;
    const answer = await claims.claimTasks(federation.makeClaim(await federation.identity(), 0, [id]), 0);
    expect(answer.cancelled).toEqual([id]);
    await federation.cancelTasks(answer.cancelled);
    const [stopped] = await node.dataSource.query(`SELECT status FROM inference_job WHERE id = $1`, [run.inference_job_id]);
    expect(stopped.status).toBe('CANCELLED');
    expect(await inbox(row)).toEqual({ state: 'FAILED', reason: 'CANCELLED' });
    await node.services.federatedInferenceRunner.relayOnce();
    expect(await north(id)).toMatchObject({ state: 'CANCELLED' });
    // Nothing more to relay: the run is closed, and a second cancel changes nothing.
    await federation.cancelTasks([id]);
    const [closed] = await node.dataSource.query(`SELECT closed, sequence FROM federated_inference_run WHERE inbox_task_id = $1`, [row]);
    await node.services.federatedInferenceRunner.relayOnce();
    expect((await node.dataSource.query(`SELECT closed, sequence FROM federated_inference_run WHERE inbox_task_id = $1`, [row]))[0]).toEqual(closed);
    expect(closed.closed).toBe(true);
    // An engineer cannot decide a task that is not held.
    const late = await gql(node.url, nodeEngineer, `mutation ($id: String!) { refuseFederatedInference(taskId: $id, reason: "no") { phase } }`, { id });
    expect(codeOf(late)).toBe('CONFLICT');
    expect(codeOf(await gql(node.url, nodeEngineer, `mutation { approveFederatedInference(taskId: "nope") { phase } }`))).toBe('NOT_FOUND');
  });
  it('does not resend a report the hub refused for good (UNKNOWN_TASK) until the state changes, and relays the other tasks meanwhile', async () => {
    const gone = await startAtHub(reference.id);
    const goneRow = await claimAndCompute();
    const kept = await startAtHub(reference.id);
    await claimAndCompute();
    // The hub lost the first task (its database restored from a backup, say).
    await hub.node.dataSource.query(`DELETE FROM federation_task WHERE id = $1`, [gone]);
    const errors: unknown[] = [];
    await node.services.federatedInferenceRunner.relayOnce((error) => errors.push(error));
    expect(errors.map((e) => (e as Error).message)).toEqual([expect.stringMatching(/UNKNOWN_TASK/)]);
    expect(await north(kept)).toMatchObject({ state: 'QUEUED' });
    const sequenceOf = async () =>
      (await node.dataSource.query(`SELECT sequence FROM federated_inference_run WHERE inbox_task_id = $1`, [goneRow]))[0].sequence as number;
    const sent = await sequenceOf();
    await node.services.federatedInferenceRunner.relayOnce((error) => errors.push(error));
    expect(errors).toHaveLength(1);
    expect(await sequenceOf()).toBe(sent);
  });
});
