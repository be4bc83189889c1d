import { canonicalSha256 } from '../../../server/federation/canonical-json';
import { EnvelopeKind, signEnvelope } from '../../../server/federation/envelope';
import { CLAIM_FEDERATION_TASKS, SUBMIT_FEDERATION_RESULT } from '../../../server/federation/hub-client';
import { loadOrCreateNodeIdentity, NodeIdentity } from '../../../server/federation/identity';
import { PROPORTIONS } from '../../../server/federation/task-kinds';
import { gql, gqlOk } from '../../helpers/graphql-client';
import { filePassed } from '../../helpers/lifecycle';
import { SITE_CODES, startFederationCluster, until, type ClusterNode, type FederationCluster } from '../../helpers/federation-cluster';
import { Client } from 'pg';
import { verifyAnswer } from '../../../server/cli/verify';
import { FederationTaskKind } from '../../../server/federation/protocol';
import { vectorFromBase64 } from '../../../server/federation/secure-sum';
import { encodeRound, rowLayout } from '../../../server/federation/secure-rows';
import { loadSiteRegistry } from '../../../server/federation/site-registry';
import { QUERY_FIELDS, READ, START } from '../hub/hub-harness';

/**
 * The hub and three nodes as separate processes, each with its own database, talking over real HTTP: the
 * federation end to end, with nothing scripted on either side.
 */
let cluster: FederationCluster;
beforeAll(async () => {
  // Short secure-round attempts, so that a dropout restarts within the test.
  cluster = await startFederationCluster({ hubEnv: { FACET_SECURE_ROUND_SECONDS: '30' } });
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

  describe('secure-summed pooled rows (siteRows: false)', () => {
    const SECURE_FIELDS = `${QUERY_FIELDS} secureSum { phase failure attempt participants roundsRestarted restartedWithout restarts { attempt dropped } }`;
    const readSecure = async (id: string) =>
      (await gqlOk(cluster.hub.url, cluster.hub.token, `query ($id: ID!) { federatedQuery(id: $id) { ${SECURE_FIELDS} } }`, { id })).federatedQuery;
    async function waitSecure(id: string, what: string, done: (q: Record<string, any>) => boolean): Promise<Record<string, any>> {
      let last: Record<string, any> = {};
      await until(`${what} (last: ${JSON.stringify({ status: last.status, sites: last.sites, secureSum: last.secureSum })})`, async () =>
        done((last = await readSecure(id))),
      );
      return last;
    }
    const hubQuery = async <T = Record<string, any>>(sql: string, params: unknown[] = []): Promise<T[]> => {
      const client = new Client({ connectionString: cluster.hub.database.url });
      await client.connect();
      try {
        return (await client.query(sql, params)).rows;
      } finally {
        await client.end();
      }
    };
    const modelByFeature = (extra: Record<string, unknown> = {}) => ({
      kind: 'BINARY_COUNTS',
      rater: { modelSha256: cluster.modelSha256 },
      groupBy: ['FEATURE'],
      siteRows: false,
      threshold: 1,
      deadlineSeconds: 300,
      ...extra,
    });

    it('pools the model by FEATURE equal to the union while the hub holds only masked vectors, and the export verifies', async () => {
      const query = await start(modelByFeature());
      const answer = await waitSecure(query.id, 'the secure round', (q) => q.status !== 'RUNNING');
      expect(answer.status).toBe('COMPLETE');
      expect(answer.secureSum).toMatchObject({
        phase: 'DONE',
        failure: null,
        attempt: 1,
        participants: [...SITE_CODES].sort(),
        roundsRestarted: 0,
        restartedWithout: [],
      });
      const rows = answer.answer.metrics as Array<Record<string, any>>;
      // No site rows: every row is pooled, one per feature, and equals one node holding the union.
      expect(rows.length).toBe(cluster.union.metricsByFeature.filter((g) => g.key.feature).length);
      for (const row of rows) {
        expect(row.pooled).toBe(true);
        const union = cluster.union.metricsByFeature.find((g) => g.key.feature === row.feature && g.key.site === null)!;
        const plain = cluster.union.plainByFeature.find((g) => g.key.feature === row.feature && g.key.site === null)!;
        expect([row.feature, row.confusion, row.patients]).toEqual([row.feature, union.confusion, union.clusters]);
        expect(row.sites).toEqual([...SITE_CODES].sort());
        for (const name of PROPORTIONS) {
          for (const field of ['value', 'lower', 'upper'] as const) {
            close(row[name][field], union[name][field]);
            close(row.wilson[name][field], plain[name][field]);
          }
        }
      }

      // What the hub holds for this task: results with no numbers, and masked vectors that match no site's own.
      const results = await hubQuery<{ site: string; envelope: any }>(`SELECT site, envelope FROM federation_result WHERE task_id = $1`, [query.id]);
      expect(results.map((r) => r.envelope.payload.aggregate)).toEqual(SITE_CODES.map(() => ({ groups: [] })));
      const [round] = await hubQuery<{ round_id: string; keys: string[]; lengths: Record<string, number> }>(
        `SELECT round_id, keys, lengths FROM federation_secure_round WHERE task_id = $1`,
        [query.id],
      );
      const layout = rowLayout(FederationTaskKind.BINARY_COUNTS, round.lengths);
      const answers = await hubQuery<{ site: string; step: string; envelope: any }>(
        `SELECT site, step, envelope FROM federation_secure_answer WHERE task_id = $1`,
        [query.id],
      );
      expect(answers.map((a) => `${a.site} ${a.step}`).sort()).toEqual(SITE_CODES.flatMap((s) => [`${s} MASKED`, `${s} SEED`]).sort());
      const plain = new Map<string, BigUint64Array>();
      for (const code of SITE_CODES) {
        const [share] = await node(code).query<{ share: { groups: Record<string, any> } }>(`SELECT share FROM federation_secure_share WHERE task_id = $1`, [
          query.id,
        ]);
        plain.set(code, encodeRound(layout, round.keys, new Map(Object.entries(share.share.groups)), SITE_CODES.length));
      }
      for (const a of answers.filter((x) => x.step === 'MASKED')) {
        const masked = vectorFromBase64(a.envelope.payload.masked, layout.length * round.keys.length);
        // Uniform noise: equal to the plain value at a position with probability 2^-64.
        for (const own of plain.values()) expect(masked.filter((v, i) => v === own[i]).length).toBe(0);
      }
      // Anyone can recompute the pooled rows from the signed transcript (and learns the totals, as the hub did).
      const exported = await gqlOk(cluster.hub.url, cluster.hub.token, `query ($id: ID!) { federatedAnswer(id: $id) { export } }`, { id: query.id });
      const report = verifyAnswer(exported.federatedAnswer.export, await loadSiteRegistry(cluster.hub.sitesDir), cluster.hub.signingKey);
      expect(report.problems).toEqual([]);
      const tampered = structuredClone(exported.federatedAnswer.export);
      tampered.payload.secureSum.answers = tampered.payload.secureSum.answers.slice(1);
      expect(verifyAnswer(tampered, await loadSiteRegistry(cluster.hub.sitesDir), cluster.hub.signingKey).ok).toBe(false);
    });

    it('is refused by every node when asked again over fewer sites (the difference would be a site’s numbers)', async () => {
      const query = await start(modelByFeature({ sites: ['HARBOUR', 'NORTH'] }));
      const answer = await waitSecure(query.id, 'the refused round', (q) => q.status !== 'RUNNING');
      expect(answer.secureSum).toMatchObject({ phase: 'FAILED', failure: 'TOO_FEW_SITES' });
      expect(answer.answer.metrics.filter((r: { pooled: boolean; suppressed: boolean }) => r.pooled && !r.suppressed)).toEqual([]);
      const refusals = await hubQuery<{ site: string; envelope: any }>(`SELECT site, envelope FROM federation_secure_answer WHERE task_id = $1`, [query.id]);
      expect(refusals.map((r) => [r.site, r.envelope.payload.step, r.envelope.payload.code]).sort()).toEqual([
        ['HARBOUR', 'REFUSED', 'DIFFERENT_PARTICIPANTS'],
        ['NORTH', 'REFUSED', 'DIFFERENT_PARTICIPANTS'],
      ]);
    });

    it('restarts without a node killed before it masked, and pools the other two exactly (restartedWithout)', async () => {
      const valley = node('VALLEY');
      // NORTH's coordinator holds its result, so the round starts only after VALLEY has answered and been killed.
      await setPolicy('NORTH', { manualApproval: true });
      const features = [...new Set(cluster.union.metricsByFeature.map((g) => g.key.feature).filter(Boolean))].sort();
      // The same data as the first query, asked as another row (the features listed), so the ledgers start afresh.
      const query = await start(modelByFeature({ scope: { features } }));
      await waitSecure(query.id, 'HARBOUR and VALLEY answering', (q) =>
        ['HARBOUR', 'VALLEY'].every((code) => q.sites.find((s: { site: string }) => s.site === code).state === 'SUCCEEDED'),
      );
      await until('NORTH holding its result', async () => (await inboxState('NORTH', query.id)) === 'HELD');
      await valley.kill();
      await gqlOk(node('NORTH').process!.url, node('NORTH').tokens.coordinator, `mutation ($id: String!) { approveFederationRelease(taskId: $id) { state } }`, {
        id: query.id,
      });
      const answer = await waitSecure(query.id, 'the restarted round', (q) => q.status !== 'RUNNING');
      expect(answer.status).toBe('COMPLETE');
      expect(answer.secureSum).toMatchObject({
        phase: 'DONE',
        attempt: 2,
        participants: ['HARBOUR', 'NORTH'],
        roundsRestarted: 1,
        restartedWithout: ['VALLEY'],
        restarts: [{ attempt: 1, dropped: ['VALLEY'] }],
      });
      for (const row of answer.answer.metrics as Array<Record<string, any>>) {
        const bySite = (code: string) => cluster.union.metricsBySiteFeature.find((g) => g.key.feature === row.feature && g.key.site === code)!;
        const two = ['HARBOUR', 'NORTH'].map(bySite);
        expect(row.sites).toEqual(['HARBOUR', 'NORTH']);
        expect(row.patients).toBe(two[0].clusters + two[1].clusters);
        for (const f of ['tp', 'fp', 'tn', 'fn'] as const)
          expect([row.feature, f, row.confusion[f]]).toEqual([row.feature, f, two[0].confusion[f] + two[1].confusion[f]]);
      }
      await setPolicy('NORTH', {});
      await valley.start();
    });

    it('waits for a node killed after it masked: restarted, it reveals from its ledger and the round completes', async () => {
      const harbour = node('HARBOUR');
      const valley = node('VALLEY');
      // NORTH's result stays held: at the deadline the round runs over HARBOUR and VALLEY.
      await setPolicy('NORTH', { manualApproval: true });
      const query = await start(modelByFeature({ scope: { modalities: ['XR', 'CT', 'MR'] }, minSites: 2, deadlineSeconds: 20 }));
      await waitSecure(query.id, 'HARBOUR and VALLEY answering', (q) =>
        ['HARBOUR', 'VALLEY'].every((code) => q.sites.find((s: { site: string }) => s.site === code).state === 'SUCCEEDED'),
      );
      // HARBOUR frozen, VALLEY masks alone; then VALLEY dies with its vector at the hub, before anyone was asked for a seed.
      harbour.process!.child.kill('SIGSTOP');
      try {
        await until(
          'VALLEY’s masked vector',
          async () =>
            (await hubQuery(`SELECT 1 FROM federation_secure_answer WHERE task_id = $1 AND site = 'VALLEY' AND step = 'MASKED'`, [query.id])).length === 1,
        );
        await valley.kill();
        await valley.start();
      } finally {
        harbour.process!.child.kill('SIGCONT');
      }
      const answer = await waitSecure(query.id, 'the round', (q) => q.status !== 'RUNNING');
      expect(answer.status).toBe('PARTIAL');
      // No restart: VALLEY's seed came from its ledger, kept in its database across the kill.
      expect(answer.secureSum).toMatchObject({ phase: 'DONE', attempt: 1, participants: ['HARBOUR', 'VALLEY'], roundsRestarted: 0 });
      const [ledger] = await valley.query<{ state: string }>(`SELECT state FROM federation_secure_ledger_entry WHERE task_id = $1`, [query.id]);
      expect(ledger.state).toBe('REVEALED');
      for (const row of answer.answer.metrics as Array<Record<string, any>>) {
        const two = ['HARBOUR', 'VALLEY'].map((code) => cluster.union.metricsBySiteFeature.find((g) => g.key.feature === row.feature && g.key.site === code)!);
        expect(row.sites).toEqual(['HARBOUR', 'VALLEY']);
        for (const f of ['tp', 'fp', 'tn', 'fn'] as const)
          expect([row.feature, f, row.confusion[f]]).toEqual([row.feature, f, two[0].confusion[f] + two[1].confusion[f]]);
      }
      await setPolicy('NORTH', {});
    });
  });
});
