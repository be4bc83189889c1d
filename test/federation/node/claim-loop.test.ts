import { createHash } from 'node:crypto';
import { Role } from '../../../server/domain';
import { FederationInboxState } from '../../../server/domain';
import { canonicalJson, canonicalSha256 } from '../../../server/federation/canonical-json';
import { HubClient } from '../../../server/federation/hub-client';
import { EnvelopeKind, signEnvelope } from '../../../server/federation/envelope';
import { NodeIdentity } from '../../../server/federation/identity';
import { FederationTaskKind, secureDeclarationOf } from '../../../server/federation/protocol';
import { aggregateVocabulary, checkAggregateShape, DEFAULT_RELEASE_POLICY } from '../../../server/federation/release-policy';
import { jobHandlers, workEveryQueue } from '../../../server/jobs/job-registry';
import { FederationClaimLoop } from '../../../server/services/federation-node/federation-claim-loop';
import { AUDIT_RELEASE, AUDIT_SECURE, AUDIT_TASK_REJECTED, FACET_VERSION } from '../../../server/services/federation-node/federation-node.service';
import { systemContext } from '../../../server/services';
import { Factory } from '../../helpers/factories';
import { codeOf, gql, gqlOk } from '../../helpers/graphql-client';
import { filePassed } from '../../helpers/lifecycle';
import { startTestNode, type TestNode } from '../../helpers/test-node';
import { loadFederationTestData, type FederationTestData } from './node-data';
import { ScriptedHub } from './scripted-hub';

const SITE = 'NORTH';
const ALL = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };
const FAST = { waitSeconds: 1, lockRetryMs: 200, backoff: { baseMs: 100, maxMs: 800 } };

describe('a federation node against a scripted hub', () => {
  let hub: ScriptedHub;
  let node: TestNode;
  let data: FederationTestData;
  let admin: string;
  let coordinator: string;
  const admins = systemContext('federation test');
  const binaryCounts = () => ({ rater: { modelSha256: data.modelSha256 }, scope: ALL, groupBy: ['SITE'], threshold: 1 });
  const inbox = async (taskId: string) => (await node.services.federationNode.listInbox(admins, null)).find((e) => e.taskId === taskId);
  const auditRows = async (action: string): Promise<Array<{ details: Record<string, unknown> }>> =>
    node.dataSource.query(`SELECT details FROM audit_event WHERE action = $1 ORDER BY seq`, [action]);

  beforeAll(async () => {
    hub = await new ScriptedHub(SITE, null).listen();
    node = await startTestNode({ federation: { site: SITE, hubUrl: hub.url, hubSigningKey: hub.identity.public.signingKey, claim: FAST } });
    hub.setNodeKey((await node.services.federationNode.identity()).public.signingKey);
    data = await loadFederationTestData(node.services);
    const factory = new Factory(node.services);
    admin = await factory.token(Role.ADMIN);
    const [north] = await node.dataSource.query(`SELECT id FROM site WHERE code = 'NORTH'`);
    coordinator = await factory.token(Role.COORDINATOR, { site: { id: north.id } as never });
    await workEveryQueue(node.services.queue, jobHandlers(node.services));
    node.services.federationClaimLoop?.start();
  });

  // A test that fails half-way must not leave its policy to the next one.
  afterEach(async () => {
    await node.services.federationNode.setReleasePolicy(admins, {});
    hub.down = false;
    hub.forgeReceipts = 0;
    hub.alreadySettled = 0;
  });

  afterAll(async () => {
    await node?.close(filePassed());
    await hub?.close();
  });

  it('claims a task, computes it, signs the result with its manifest and keeps the hub’s verified receipt', async () => {
    const task = hub.task(FederationTaskKind.BINARY_COUNTS, binaryCounts());
    hub.send(task);
    const result = await hub.waitFor('the result', () => hub.resultFor(task.taskId));
    const computed = await node.services.federationCompute.computeAggregate(admins, FederationTaskKind.BINARY_COUNTS, binaryCounts());
    expect(result.signer).toBe(SITE);
    expect(result.payload).toMatchObject({ taskId: task.taskId, taskSha256: canonicalSha256(task), site: SITE, state: 'SUCCEEDED', reason: null });
    expect(result.payload.aggregate).toEqual(computed.aggregate);
    expect(checkAggregateShape(result.payload.aggregate, { vocabulary: aggregateVocabulary(computed.vocabulary), arrayLengths: [6] })).toEqual({ ok: true });
    expect(result.payload.manifest).toEqual({
      facetVersion: FACET_VERSION,
      taskSha256: canonicalSha256(task),
      splitVersionId: null,
      modelSha256: data.modelSha256,
      referenceSnapshotSha256: computed.referenceSnapshotSha256,
      policySha256: canonicalSha256(DEFAULT_RELEASE_POLICY as never),
      aggregateSha256: canonicalSha256(result.payload.aggregate),
    });
    const settled = await waitUntil(async () => (await inbox(task.taskId))?.state === FederationInboxState.SUBMITTED);
    expect(settled).toBe(true);
    const releases = await auditRows(AUDIT_RELEASE);
    expect(releases.map((r) => r.details)).toContainEqual(
      expect.objectContaining({ taskId: task.taskId, resultPayloadSha256: result.payloadSha256, aggregateSha256: result.payload.manifest.aggregateSha256 }),
    );
  });

  it('answers a secure task with its pooled keys only, masks when asked, and refuses every unsafe unmask or restart', async () => {
    const other = NodeIdentity.generate();
    const own = await node.services.federationNode.identity();
    // Two sites, no SITE rows: the pooled rows are secure-summed, so no number leaves with the result.
    const task = hub.task(FederationTaskKind.BINARY_COUNTS, { ...binaryCounts(), groupBy: ['FEATURE'] }, { sites: ['NORTH', 'OTHER'] });
    hub.send(task);
    const result = await hub.waitFor('the result', () => hub.resultFor(task.taskId));
    expect(result.payload).toMatchObject({ state: 'SUCCEEDED', aggregate: { groups: [] } });
    const declaration = secureDeclarationOf(result.payload)!;
    expect(declaration.keys.length).toBeGreaterThan(0);
    expect(declaration.keys.every((k) => !k.includes('NORTH'))).toBe(true);
    const participants = [
      { code: 'NORTH', agreementKey: own.public.agreementKey },
      { code: 'OTHER', agreementKey: other.public.agreementKey },
    ];
    const base = { taskId: task.taskId, site: SITE, roundId: `${task.taskId}#1` };
    const answerTo = async (n: number) => hub.waitFor(`answer ${n}`, () => hub.roundAnswers.length >= n && hub.roundAnswers[n - 1].payload);
    const mask = {
      ...base,
      step: 'MASK' as const,
      taskSha256: canonicalSha256(task),
      attempt: 1,
      participants,
      keys: declaration.keys,
      lengths: declaration.lengths,
      minSites: 2,
    };
    hub.sendRound(mask);
    const masked = await answerTo(1);
    expect(masked).toMatchObject({ step: 'MASKED', code: null, seed: null });
    const sha = createHash('sha256').update(Buffer.from(masked.masked!, 'base64')).digest('hex');
    const unmask = {
      ...base,
      step: 'UNMASK' as const,
      participants: ['NORTH', 'OTHER'],
      maskedSha256: { NORTH: sha, OTHER: 'a'.repeat(64) },
      pairwiseFor: [] as string[],
    };
    // Its self seed and the pairwise seeds together would unmask its vector alone.
    hub.sendRound({ ...unmask, pairwiseFor: ['OTHER'] });
    expect(await answerTo(2)).toMatchObject({ step: 'REFUSED', code: 'PAIRWISE_NOT_REVEALED', seed: null });
    hub.sendRound({ ...unmask, maskedSha256: { NORTH: sha } });
    expect(await answerTo(3)).toMatchObject({ step: 'REFUSED', code: 'INCOMPLETE' });
    hub.sendRound({ ...unmask, maskedSha256: { NORTH: 'b'.repeat(64), OTHER: 'a'.repeat(64) } });
    expect(await answerTo(4)).toMatchObject({ step: 'REFUSED', code: 'NOT_MY_VECTOR' });
    hub.sendRound({ ...unmask, participants: ['NORTH', 'OTHER', 'THIRD'] });
    expect(await answerTo(5)).toMatchObject({ step: 'REFUSED', code: 'PARTICIPANTS_CHANGED' });
    hub.sendRound(unmask);
    const seed = await answerTo(6);
    expect(seed.step).toBe('SEED');
    expect(Buffer.from(seed.seed!, 'base64')).toHaveLength(32);
    // The same question over another set of sites after revealing: its difference with this total would be a site's numbers.
    hub.sendRound({
      ...mask,
      roundId: `${task.taskId}#2`,
      attempt: 2,
      participants: [participants[0], { code: 'THIRD', agreementKey: other.public.agreementKey }],
    });
    expect(await answerTo(7)).toMatchObject({ step: 'REFUSED', code: 'DIFFERENT_PARTICIPANTS' });
    // A request for the masked round again (an answer lost on the way) gets the very same vector, not fresh masks.
    hub.sendRound(mask);
    expect((await answerTo(8)).masked).toBe(masked.masked);
    // Every answer is audited at the node, with the hash of a masked vector and never a plain value.
    const audited = await auditRows(AUDIT_SECURE);
    expect(audited.map((a) => a.details.code)).toEqual([
      null,
      'PAIRWISE_NOT_REVEALED',
      'INCOMPLETE',
      'NOT_MY_VECTOR',
      'PARTICIPANTS_CHANGED',
      null,
      'DIFFERENT_PARTICIPANTS',
      null,
    ]);
    expect(audited[0].details.maskedSha256).toBe(sha);
  });

  it('does not execute a task signed by another key, addressed to another site, or replayed; a re-signed redelivery runs once', async () => {
    const before = (await auditRows(AUDIT_TASK_REJECTED)).length;
    const impostor = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    hub.send(impostor, { signer: NodeIdentity.generate() });
    const elsewhere = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    hub.send(elsewhere, { audience: 'HARBOUR' });
    const notOurs = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL }, { site: 'HARBOUR' });
    hub.send(notOurs);
    const genuine = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    const envelope = hub.send(genuine);
    await hub.waitFor('the genuine result', () => hub.resultFor(genuine.taskId));
    hub.deliver(envelope);
    hub.send(genuine);
    await waitUntil(async () => (await auditRows(AUDIT_TASK_REJECTED)).length >= before + 4);
    const codes = (await auditRows(AUDIT_TASK_REJECTED)).slice(before).map((r) => r.details.code);
    expect(codes.sort()).toEqual(['NOT_ADDRESSEE', 'REPLAYED', 'UNKNOWN_SIGNER', 'WRONG_AUDIENCE']);
    // The re-signed redelivery of the genuine task was fresh, and the inbox's unique task id made it a no-op.
    await new Promise((r) => setTimeout(r, 1500));
    for (const refused of [impostor, elsewhere, notOurs]) {
      expect(await inbox(refused.taskId)).toBeUndefined();
      expect(hub.resultFor(refused.taskId)).toBeUndefined();
    }
    expect(hub.results.filter((r) => r.payload.taskId === genuine.taskId)).toHaveLength(1);
    const [{ rows }] = await node.dataSource.query(`SELECT count(*)::int AS rows FROM federation_inbox_task WHERE task_id = $1`, [genuine.taskId]);
    expect(rows).toBe(1);
  });

  it('sends a policy refusal as REFUSED with its reason: a kind it does not answer, then an exhausted budget', async () => {
    await node.services.federationNode.setReleasePolicy(admins, { taskKinds: [FederationTaskKind.STUDY_FLOW] });
    const refusedKind = hub.task(FederationTaskKind.BINARY_COUNTS, binaryCounts());
    hub.send(refusedKind);
    const refusal = await hub.waitFor('the refusal', () => hub.resultFor(refusedKind.taskId));
    expect(refusal.payload).toMatchObject({ state: 'REFUSED', reason: 'TASK_KIND_NOT_ALLOWED', aggregate: null, taskSha256: canonicalSha256(refusedKind) });
    const made = (await auditRows(AUDIT_RELEASE)).length;
    await node.services.federationNode.setReleasePolicy(admins, { budget: { releases: made + 1, periodDays: 1 } });
    const last = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    hub.send(last);
    expect((await hub.waitFor('the last release', () => hub.resultFor(last.taskId))).payload.state).toBe('SUCCEEDED');
    const over = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    hub.send(over);
    const exhausted = await hub.waitFor('the budget refusal', () => hub.resultFor(over.taskId));
    expect(exhausted.payload).toMatchObject({ state: 'REFUSED', reason: 'BUDGET_EXHAUSTED', aggregate: null });
    expect(await auditRows(AUDIT_RELEASE)).toHaveLength(made + 1);
    await node.services.federationNode.setReleasePolicy(admins, {});
  });

  it('holds results for manual approval: nothing leaves until a coordinator approves, then exactly the held bytes; a refusal sends REFUSED', async () => {
    await gqlOk(node.url, admin, `mutation { setReleasePolicy(policy: { manualApproval: true }) { manualApproval sha256 } }`);
    const held = hub.task(FederationTaskKind.BINARY_COUNTS, binaryCounts());
    hub.send(held);
    await waitUntil(async () => (await inbox(held.taskId))?.state === FederationInboxState.HELD);
    // Several claims pass while it waits; each names the held task as work in progress (its lease at the hub).
    const claimsBefore = hub.claims.length;
    await hub.waitFor('two more claims', () => hub.claims.length >= claimsBefore + 2);
    expect(hub.claims.at(-1)?.payload.working).toContain(held.taskId);
    expect(hub.resultFor(held.taskId)).toBeUndefined();
    const listed = await gqlOk(node.url, coordinator, `{ federationInbox(state: HELD) { taskId state aggregateJson aggregateSha256 taskSha256 } }`);
    const entry = listed.federationInbox.find((e: { taskId: string }) => e.taskId === held.taskId);
    expect(entry).toMatchObject({ state: 'HELD', taskSha256: canonicalSha256(held) });
    expect(entry.aggregateSha256).toBe(canonicalSha256(JSON.parse(entry.aggregateJson)));
    const approved = await gqlOk(node.url, coordinator, `mutation ($id: String!) { approveFederationRelease(taskId: $id) { state decidedBy } }`, {
      id: held.taskId,
    });
    expect(approved.approveFederationRelease.state).toBe('RELEASED');
    const result = await hub.waitFor('the approved result', () => hub.resultFor(held.taskId));
    expect(canonicalJson(result.payload.aggregate)).toBe(entry.aggregateJson);
    expect(result.payload.manifest.aggregateSha256).toBe(entry.aggregateSha256);
    const again = await gql(node.url, coordinator, `mutation ($id: String!) { approveFederationRelease(taskId: $id) { state } }`, { id: held.taskId });
    expect(codeOf(again)).toBe('CONFLICT');

    const refused = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    hub.send(refused);
    await waitUntil(async () => (await inbox(refused.taskId))?.state === FederationInboxState.HELD);
    const factory = new Factory(node.services);
    const [north] = await node.dataSource.query(`SELECT id, code FROM site WHERE code = 'NORTH'`);
    for (const [token, code] of [
      [await factory.token(Role.STATISTICIAN), 'FORBIDDEN'],
      [(await factory.readerWithToken(north)).token, 'FORBIDDEN'],
    ] as const) {
      const attempt = await gql(node.url, token, `mutation ($id: String!) { approveFederationRelease(taskId: $id) { state } }`, { id: refused.taskId });
      expect(codeOf(attempt)).toBe(code);
    }
    // A coordinator token always names a site; should one not, it may decide nothing.
    const siteless = { ...admins, actor: { ...admins.actor!, role: Role.COORDINATOR, siteId: null } };
    await expect(node.services.federationNode.approveRelease(siteless, refused.taskId)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const unknown = await gql(node.url, coordinator, `mutation { refuseFederationRelease(taskId: "no-such-task", reason: "x") { state } }`);
    expect(codeOf(unknown)).toBe('NOT_FOUND');
    const note = 'Our ethics board has not cleared this question yet';
    const refusal = await gqlOk(
      node.url,
      coordinator,
      `mutation ($id: String!, $r: String!) { refuseFederationRelease(taskId: $id, reason: $r) { state reason detail } }`,
      {
        id: refused.taskId,
        r: note,
      },
    );
    expect(refusal.refuseFederationRelease).toEqual({ state: 'REFUSED', reason: 'REFUSED_BY_COORDINATOR', detail: note });
    const sent = await hub.waitFor('the coordinator’s refusal', () => hub.resultFor(refused.taskId));
    expect(sent.payload).toMatchObject({ state: 'REFUSED', reason: 'REFUSED_BY_COORDINATOR', aggregate: null });
    expect(Buffer.concat(hub.bodies).includes(note)).toBe(false);
    await gqlOk(node.url, admin, `mutation { setReleasePolicy(policy: {}) { manualApproval } }`);
  });

  it('keeps delivering until the hub’s receipt verifies (a receipt signed by another key is not proof)', async () => {
    hub.forgeReceipts = 1;
    const task = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    hub.send(task);
    await waitUntil(async () => (await inbox(task.taskId))?.state === FederationInboxState.SUBMITTED, 60_000);
    const deliveries = hub.results.filter((r) => r.payload.taskId === task.taskId);
    expect(deliveries.length).toBeGreaterThanOrEqual(2);
    // Each attempt is signed afresh (never a replay) over the same payload.
    expect(new Set(deliveries.map((d) => d.payloadSha256)).size).toBe(1);
    expect(new Set(deliveries.map((d) => d.nonce)).size).toBe(deliveries.length);
  });

  it('ends the delivery when the hub already holds an answer for the task (an earlier reply was lost)', async () => {
    hub.alreadySettled = 1;
    const task = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    hub.send(task);
    await waitUntil(async () => (await inbox(task.taskId))?.state === FederationInboxState.SUBMITTED);
    expect(await inbox(task.taskId)).toMatchObject({ detail: 'the hub already held an answer' });
    expect(hub.results.filter((r) => r.payload.taskId === task.taskId)).toHaveLength(1);
  });

  it('tells the hub FAILED (COMPUTE_ERROR) once a compute job’s retries are spent, and only for a task still open', async () => {
    // A task whose compute job died on every try (written as such: a real one would race this test's worker).
    const task = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    const envelope = signEnvelope(hub.identity, { kind: EnvelopeKind.TASK, signer: 'hub', audience: SITE, payload: task });
    const [{ id }] = await node.dataSource.query(
      `INSERT INTO federation_inbox_task (task_id, task_envelope, task_sha256, kind, state) VALUES ($1, $2, $3, $4, 'COMPUTING') RETURNING id`,
      [task.taskId, JSON.stringify(envelope), canonicalSha256(task), task.kind],
    );
    const handlers = jobHandlers(node.services);
    expect(await handlers['federation-compute-failed']({ inboxTaskId: id }, { message: 'boom' })).toBe('done');
    const result = await hub.waitFor('the FAILED result', () => hub.resultFor(task.taskId));
    expect(result.payload).toMatchObject({ state: 'FAILED', reason: 'COMPUTE_ERROR', aggregate: null });
    expect(await handlers['federation-compute-failed']({ inboxTaskId: id }, { message: 'boom' })).toBe('skipped');
  });

  it('backs off while the hub is down and recovers when it returns', async () => {
    hub.down = true;
    const task = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    hub.send(task);
    const refusedBefore = hub.refusedWhileDown;
    await new Promise((r) => setTimeout(r, 3000));
    const attempts = hub.refusedWhileDown - refusedBefore;
    // Backoff from 100 ms doubling to 800 ms: a handful of tries in 3 s, not a tight loop (hundreds).
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThan(30);
    expect(hub.resultFor(task.taskId)).toBeUndefined();
    hub.down = false;
    expect((await hub.waitFor('the result after the outage', () => hub.resultFor(task.taskId))).payload.state).toBe('SUCCEEDED');
  });

  it('runs one claim loop per node however many workers: the advisory lock holder claims, another takes over when it stops', async () => {
    const loop = node.services.federationClaimLoop as FederationClaimLoop;
    const second = new FederationClaimLoop(node.services.db, node.services.federationNode, new HubClient({ url: hub.url }), FAST);
    second.start();
    try {
      await new Promise((r) => setTimeout(r, 1000));
      expect([loop.holdsLock, second.holdsLock]).toEqual([true, false]);
      const [{ locks }] = await node.dataSource.query(
        // pg_locks is the whole cluster's: other test files' nodes hold the same key in their own databases.
        `SELECT count(*)::int AS locks FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND objid::bigint = (hashtext($1)::bigint & 4294967295)
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [`facet-federation-claim:${SITE}`],
      );
      expect(locks).toBe(1);
      await loop.stop();
      await waitUntil(async () => second.holdsLock, 10_000);
      const task = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
      hub.send(task);
      expect((await hub.waitFor('a result through the second loop', () => hub.resultFor(task.taskId))).payload.state).toBe('SUCCEEDED');
    } finally {
      await second.stop();
    }
  });

  it('sent the hub no pseudonym, hospital id, row id, per-case score or coordinator note in any byte', async () => {
    const wire = Buffer.concat(hub.bodies).toString('utf8');
    expect(hub.results.length).toBeGreaterThan(8);
    expect(wire).toContain('"aggregate":{"groups":[');
    const secrets = [...data.secrets.pseudonyms, ...data.secrets.hospitalIds, ...data.secrets.rowIds, ...data.secrets.scores];
    expect(data.secrets.scores.length).toBeGreaterThan(1000);
    expect(data.secrets.pseudonyms.length).toBe(18);
    const leaked = secrets.filter((secret) => wire.includes(secret));
    expect(leaked).toEqual([]);
  });
});

async function waitUntil(probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}
