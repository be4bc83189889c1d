import { canonicalSha256 } from '../../../server/federation/canonical-json';
import { EnvelopeKind, signEnvelope } from '../../../server/federation/envelope';
import { CLAIM_FEDERATION_TASKS, SUBMIT_FEDERATION_RESULT } from '../../../server/federation/hub-client';
import { loadOrCreateNodeIdentity, NodeIdentity } from '../../../server/federation/identity';
import { PROPORTIONS } from '../../../server/federation/task-kinds';
import { gql, gqlOk } from '../../helpers/graphql-client';
import { filePassed } from '../../helpers/lifecycle';
import { SITE_CODES, startFederationCluster, until, type ClusterNode, type FederationCluster } from '../../helpers/federation-cluster';
import { READ, START } from '../hub/hub-harness';

/**
 * The hub and three nodes as separate processes, each with its own database, talking over real HTTP: the
 * federation end to end, with nothing scripted on either side.
 */
let cluster: FederationCluster;
beforeAll(async () => {
  cluster = await startFederationCluster();
});
afterAll(async () => {
  await cluster?.close(filePassed());
});

const FLOW_FIELDS = ['enrolled', 'excluded', 'eligible', 'joints', 'assessable', 'notAssessable', 'analysed'] as const;
const node = (code: string): ClusterNode => cluster.nodes.get(code)!;
const start = async (input: Record<string, unknown>) => (await gqlOk(cluster.hub.url, cluster.hub.token, START, { input })).startFederatedQuery;
const read = async (id: string) => (await gqlOk(cluster.hub.url, cluster.hub.token, READ, { id })).federatedQuery;
async function waitFor(id: string, what: string, done: (q: Record<string, any>) => boolean): Promise<Record<string, any>> {
  let last: Record<string, any> = {};
  await until(`${what} (last: ${JSON.stringify({ status: last.status, sites: last.sites })})`, async () => done((last = await read(id))));
  return last;
}
const inboxState = async (code: string, taskId: string) =>
  (await node(code).query<{ state: string }>(`SELECT state FROM federation_inbox_task WHERE task_id = $1`, [taskId]))[0]?.state;
const setPolicy = (code: string, policy: Record<string, unknown>) =>
  gqlOk(node(code).process!.url, node(code).tokens.admin, `mutation ($p: ReleasePolicyInput!) { setReleasePolicy(policy: $p) { sha256 } }`, { p: policy });
const close = (a: number | null, b: number | null) => (a === null || b === null ? expect(a).toBe(b) : expect(Math.abs(a - b)).toBeLessThan(1e-9));

function expectStudyFlowOfUnion(answer: Record<string, any>) {
  for (const row of answer.answer.studyFlow) {
    const union = cluster.union.studyFlow.find((u) => (row.pooled ? u.site === null : u.site === row.site));
    expect(union).toBeDefined();
    for (const field of FLOW_FIELDS) expect([row.site, field, row[field]]).toEqual([row.site, field, union![field]]);
  }
  expect(answer.answer.studyFlow.filter((r: { pooled: boolean }) => !r.pooled).map((r: { site: string }) => r.site)).toEqual([...SITE_CODES].sort());
}

describe('a hub and three node processes', () => {
  it('answers STUDY_FLOW and BINARY_COUNTS from all three (COMPLETE), pooled equal to one node holding the union', async () => {
    const flow = await start({ kind: 'STUDY_FLOW', deadlineSeconds: 300 });
    const binary = await start({
      kind: 'BINARY_COUNTS',
      rater: { modelSha256: cluster.modelSha256 },
      groupBy: ['FEATURE'],
      threshold: 1,
      deadlineSeconds: 300,
    });
    const flowAnswer = await waitFor(flow.id, 'the study flow', (q) => q.status !== 'RUNNING');
    expect(flowAnswer.status).toBe('COMPLETE');
    expect(flowAnswer.sites.map((s: { site: string; state: string }) => [s.site, s.state])).toEqual([...SITE_CODES].sort().map((s) => [s, 'SUCCEEDED']));
    expectStudyFlowOfUnion(flowAnswer);

    const answer = await waitFor(binary.id, 'the binary counts', (q) => q.status !== 'RUNNING');
    expect(answer.status).toBe('COMPLETE');
    expect(answer.missing).toEqual([]);
    const rows = answer.answer.metrics as Array<Record<string, any>>;
    // A row per site and feature and a pooled row per feature (three sites, five features).
    expect(rows.length).toBe(3 * 5 + 5);
    expect(rows.length).toBe(
      cluster.union.metricsBySiteFeature.filter((g) => g.key.site && g.key.feature).length + cluster.union.metricsByFeature.filter((g) => g.key.feature).length,
    );
    for (const row of rows) {
      const union = row.pooled
        ? cluster.union.metricsByFeature.find((g) => g.key.feature === row.feature && g.key.site === null)
        : cluster.union.metricsBySiteFeature.find((g) => g.key.feature === row.feature && g.key.site === row.site);
      expect(union).toBeDefined();
      expect(union!.suppressed).toBe(false);
      expect(row.confusion).toEqual(union!.confusion);
      expect(row.patients).toBe(union!.clusters);
      // The design-effect Wilson intervals equal the union's clustered ones, the plain Wilson ones its unclustered ones.
      const plain = (row.pooled ? cluster.union.plainByFeature : cluster.union.plainBySiteFeature).find(
        (g) => g.key.feature === row.feature && g.key.site === (row.pooled ? null : row.site),
      );
      for (const name of PROPORTIONS) {
        for (const field of ['value', 'lower', 'upper'] as const) {
          close(row[name][field], union![name][field]);
          close(row.wilson[name][field], plain![name][field]);
        }
      }
      close(row.f1.value, union!.f1.value);
      close(row.youden.value, union!.youden.value);
    }
    // Every contribution names the task it answered and is the node's own: the manifest's task hash is the hub's task.
    expect(answer.contributions.map((c: { site: string }) => c.site)).toEqual([...SITE_CODES].sort());
  });

  it('gives a PARTIAL answer naming a node killed mid-task, and folds its result in when it comes back', async () => {
    const valley = node('VALLEY');
    // Held for its coordinator, the task is claimed and computed but not answered: the node is mid-task when it dies.
    await setPolicy('VALLEY', { manualApproval: true });
    const query = await start({ kind: 'STUDY_FLOW', deadlineSeconds: 15 });
    await until('VALLEY holding its result', async () => (await inboxState('VALLEY', query.id)) === 'HELD');
    await valley.kill();
    const partial = await waitFor(query.id, 'the deadline', (q) => q.status !== 'RUNNING');
    expect(partial.status).toBe('PARTIAL');
    expect(partial.missing).toEqual([{ site: 'VALLEY', code: expect.stringMatching(/^SITE_(TIMEOUT|UNAVAILABLE)$/), reason: null }]);
    expect(partial.sites.find((s: { site: string }) => s.site === 'VALLEY').state).not.toBe('SUCCEEDED');
    expect(partial.revision).toBe(1);

    await valley.start();
    const approved = await gqlOk(
      valley.process!.url,
      valley.tokens.coordinator,
      `mutation ($id: String!) { approveFederationRelease(taskId: $id) { state } }`,
      {
        id: query.id,
      },
    );
    expect(approved.approveFederationRelease.state).toMatch(/RELEASED|SUBMITTED/);
    const late = await waitFor(query.id, 'the late result', (q) => q.revision > 1);
    expect(late).toMatchObject({ status: 'COMPLETE', revision: 2, updated: true, missing: [] });
    expect(late.sites.find((s: { site: string }) => s.site === 'VALLEY')).toMatchObject({ state: 'SUCCEEDED', late: true });
    expectStudyFlowOfUnion(late);
    await setPolicy('VALLEY', {});
  });

  it('refuses, over the hub’s real port, a result with a bad signature, a replayed claim and an unknown node', async () => {
    const north = node('NORTH');
    const identity = await loadOrCreateNodeIdentity(north.dataDir);
    // A result exactly as NORTH sent it for an earlier task, re-signed by NORTH's key, with the signature of other bytes.
    const [sent] = await north.query<{ result_payload: Record<string, any> }>(
      `SELECT result_payload FROM federation_inbox_task WHERE state = 'SUBMITTED' ORDER BY created_at DESC LIMIT 1`,
    );
    const payload = sent.result_payload;
    const sign = (p: unknown, signer = 'NORTH', id: NodeIdentity = identity, kind = EnvelopeKind.RESULT) =>
      signEnvelope(id, { kind, signer, audience: 'hub', payload: p as never });
    const forged = { ...sign(payload), signature: sign({ ...payload, reason: 'x' }).signature };
    const submitted = await gqlOk(cluster.hub.url, null, SUBMIT_FEDERATION_RESULT, { result: forged });
    expect(submitted.submitFederationResult).toEqual({ accepted: false, code: 'BAD_SIGNATURE', receipt: null });

    const claimPayload = { site: 'NORTH', maxTasks: 1, waitSeconds: 0, facetVersion: 'test', working: [] };
    const claim = sign(claimPayload, 'NORTH', identity, EnvelopeKind.CLAIM);
    expect((await gql(cluster.hub.url, null, CLAIM_FEDERATION_TASKS, { claim, waitSeconds: 0 })).errors).toBeUndefined();
    const replayed = await gql(cluster.hub.url, null, CLAIM_FEDERATION_TASKS, { claim, waitSeconds: 0 });
    expect(replayed.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'REPLAYED' });

    const stranger = NodeIdentity.generate();
    for (const signer of ['EAST', 'NORTH']) {
      const unknown = sign({ ...claimPayload, site: signer }, signer, stranger, EnvelopeKind.CLAIM);
      const refused = await gql(cluster.hub.url, null, CLAIM_FEDERATION_TASKS, { claim: unknown, waitSeconds: 0 });
      expect([signer, refused.errors?.[0]?.extensions]).toMatchObject([signer, { code: 'UNAUTHENTICATED', reason: 'UNKNOWN_SIGNER' }]);
    }
    const unknownResult = await gqlOk(cluster.hub.url, null, SUBMIT_FEDERATION_RESULT, { result: sign(payload, 'NORTH', stranger) });
    expect(unknownResult.submitFederationResult).toEqual({ accepted: false, code: 'UNKNOWN_SIGNER', receipt: null });
    // The real node is unaffected: it still answers.
    const query = await start({ kind: 'STUDY_FLOW', deadlineSeconds: 300 });
    expect((await waitFor(query.id, 'an answer after the refusals', (q) => q.status !== 'RUNNING')).status).toBe('COMPLETE');
    expect(canonicalSha256(payload as never)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('comes back REFUSED with its reason from a node whose policy does not answer the kind (SITE_REFUSED at the hub)', async () => {
    await setPolicy('HARBOUR', { taskKinds: ['STUDY_FLOW'] });
    const query = await start({ kind: 'BINARY_COUNTS', rater: { readerSlot: 'FIRST' }, groupBy: ['FEATURE'], deadlineSeconds: 300 });
    const answer = await waitFor(query.id, 'the refusal', (q) => q.sites.every((s: { state: string }) => s.state !== 'QUEUED' && s.state !== 'CLAIMED'));
    expect(answer.sites.find((s: { site: string }) => s.site === 'HARBOUR')).toMatchObject({ state: 'REFUSED', reason: 'TASK_KIND_NOT_ALLOWED' });
    expect(answer.missing).toEqual([{ site: 'HARBOUR', code: 'SITE_REFUSED', reason: 'TASK_KIND_NOT_ALLOWED' }]);
    expect(answer.status).toBe('PARTIAL');
    expect(answer.answer.metrics.some((r: { site: string | null }) => r.site === 'HARBOUR')).toBe(false);
    expect(await inboxState('HARBOUR', query.id)).toMatch(/REFUSED|SUBMITTED/);
    await setPolicy('HARBOUR', {});
  });

  it('answers from a manual-approval node only after its coordinator approves (federationInbox, approveFederationRelease)', async () => {
    const north = node('NORTH');
    await setPolicy('NORTH', { manualApproval: true });
    const query = await start({ kind: 'STUDY_FLOW', deadlineSeconds: 300 });
    const inbox = `{ federationInbox(state: HELD) { taskId state aggregateJson aggregateSha256 } }`;
    let held: Array<Record<string, any>> = [];
    await until('the held result in the inbox', async () => {
      held = (await gqlOk(north.process!.url, north.tokens.coordinator, inbox)).federationInbox;
      return held.some((e) => e.taskId === query.id);
    });
    const entry = held.find((e) => e.taskId === query.id)!;
    // The other two answered; NORTH has said nothing yet.
    const waiting = await waitFor(query.id, 'the other sites', (q) => q.sites.filter((s: { state: string }) => s.state === 'SUCCEEDED').length === 2);
    expect(waiting.status).toBe('RUNNING');
    expect(waiting.sites.find((s: { site: string }) => s.site === 'NORTH').state).toBe('CLAIMED');
    expect(waiting.contributions.map((c: { site: string }) => c.site)).not.toContain('NORTH');

    const approved = await gqlOk(
      north.process!.url,
      north.tokens.coordinator,
      `mutation ($id: String!) { approveFederationRelease(taskId: $id) { state decidedBy } }`,
      {
        id: query.id,
      },
    );
    expect(approved.approveFederationRelease.state).toMatch(/RELEASED|SUBMITTED/);
    const answer = await waitFor(query.id, 'the approved result', (q) => q.status !== 'RUNNING');
    expect(answer.status).toBe('COMPLETE');
    // What arrived is exactly what the coordinator saw.
    const contribution = answer.contributions.find((c: { site: string }) => c.site === 'NORTH');
    expect(contribution.aggregateSha256).toBe(entry.aggregateSha256);
    expect(canonicalSha256(JSON.parse(entry.aggregateJson))).toBe(entry.aggregateSha256);
    await setPolicy('NORTH', {});
  });
});
