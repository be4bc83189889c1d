import { canonicalSha256 } from '../../../server/federation/canonical-json';
import { EnvelopeKind, signEnvelope } from '../../../server/federation/envelope';
import { HubRequestError, runClaimLoop } from '../../../server/federation/hub-client';
import { NodeIdentity } from '../../../server/federation/identity';
import { Gen } from '../generators';
import { studyFlowAggregate } from './cases';
import { eventually, START, startTestHub, type TestHub } from './hub-harness';
import { filePassed } from '../../helpers/lifecycle';

let hub: TestHub;

beforeAll(async () => {
  hub = await startTestHub(['NORTH', 'SOUTH', 'HARBOUR']);
});
afterAll(async () => {
  await hub?.close(filePassed());
});

const node = (code: string) => hub.nodes.get(code)!;
const startFlow = async (extra: Record<string, unknown> = {}) =>
  (await hub.query(START, { input: { kind: 'STUDY_FLOW', deadlineSeconds: 600, ...extra } })).startFederatedQuery;
const resultCount = async () => (await hub.node.dataSource.query('SELECT count(*)::int AS n FROM federation_result'))[0].n as number;
const refusal = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HubRequestError) return { code: error.details.code, reason: error.details.reason };
    throw error;
  }
  throw new Error('the hub accepted it');
};

describe('hub transport', () => {
  it('holds a claim and wakes it when a task for the site is queued', async () => {
    const started = Date.now();
    const pending = node('NORTH').claim(20);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const query = await startFlow({ sites: ['NORTH'] });
    const claimed = await pending;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(claimed.tasks).toHaveLength(1);
    expect(claimed.tasks[0]).toMatchObject({ taskId: query.id, kind: 'STUDY_FLOW', site: 'NORTH', sites: ['NORTH'], minSites: 1 });
    const row = (await hub.node.dataSource.query('SELECT state, task_sha256 FROM federation_site_task WHERE task_id = $1', [query.id]))[0];
    expect(row).toEqual({ state: 'CLAIMED', task_sha256: canonicalSha256(claimed.tasks[0]) });
    // Claimed once: a second claim gets nothing more, at once with waitSeconds 0.
    expect((await node('NORTH').claim(0)).tasks).toEqual([]);
  });

  it('answers a pending claim empty when the same site claims again (one pending claim per site)', async () => {
    const started = Date.now();
    const first = node('HARBOUR').claim(20);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const second = node('HARBOUR').claim(1);
    expect((await first).tasks).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await second).tasks).toEqual([]);
  });

  it('stops holding a claim whose client went away, so the task goes to the next claim', async () => {
    const gone = new AbortController();
    const abandoned = node('SOUTH')
      .hub.claimTasks(node('SOUTH').claimEnvelope({ waitSeconds: 20 }), 20, gone.signal)
      .catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 400));
    gone.abort();
    await abandoned;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const query = await startFlow({ sites: ['SOUTH'] });
    const claimed = await node('SOUTH').claim(5);
    expect(claimed.tasks.map((t) => t.taskId)).toEqual([query.id]);
    const [task] = claimed.tasks;
    await node('SOUTH').submit(node('SOUTH').sign(node('SOUTH').resultPayload(task, { aggregate: studyFlowAggregate(new Gen(8), 'SOUTH') })));
  });

  it('never hands one task to two concurrent claims (SELECT … FOR UPDATE SKIP LOCKED)', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 6; i++) ids.add((await startFlow({ sites: ['HARBOUR'] })).id);
    const answers = await Promise.all(Array.from({ length: 5 }, () => node('HARBOUR').hub.claimTasks(node('HARBOUR').claimEnvelope({ maxTasks: 2 }), 0)));
    const claimed = answers.flatMap((a) => a.tasks.map((t) => node('HARBOUR').task(t).taskId));
    expect(claimed.length).toBe(new Set(claimed).size);
    expect(new Set(claimed)).toEqual(ids);
    for (const id of ids) await hub.query(`mutation($id: ID!) { cancelFederatedQuery(id: $id) { status } }`, { id });
    // The cancellations reach HARBOUR once each.
    expect(new Set((await node('HARBOUR').claim(0)).cancelled)).toEqual(ids);
  });

  it('accepts a result with a signed receipt, gives the stored receipt to a re-signed retry, and refuses a different second result', async () => {
    const query = await startFlow({ sites: ['SOUTH'] });
    const [task] = (await node('SOUTH').claim(0)).tasks;
    const aggregate = studyFlowAggregate(new Gen(1), 'SOUTH');
    const payload = node('SOUTH').resultPayload(task, { aggregate });
    const first = await node('SOUTH').submit(node('SOUTH').sign(payload));
    expect(first).toMatchObject({ accepted: true, code: null });
    const receipt = node('SOUTH').receipt(first.receipt);
    expect(receipt.ok).toBe(true);
    if (receipt.ok) expect(receipt.envelope.payload.taskId).toBe(query.id);
    const retry = await node('SOUTH').submit(node('SOUTH').sign(payload));
    expect(retry).toEqual(first);
    const other = node('SOUTH').resultPayload(task, { aggregate: studyFlowAggregate(new Gen(2), 'SOUTH') });
    expect(await node('SOUTH').submit(node('SOUTH').sign(other))).toEqual({ accepted: false, code: 'ALREADY_SETTLED', receipt: null });
    const read = await hub.query(`query($id: ID!) { federatedQuery(id: $id) { status sites { site state } contributions { site aggregateSha256 } } }`, {
      id: query.id,
    });
    expect(read.federatedQuery).toEqual({
      status: 'COMPLETE',
      sites: [{ site: 'SOUTH', state: 'SUCCEEDED' }],
      contributions: [{ site: 'SOUTH', aggregateSha256: canonicalSha256(aggregate) }],
    });
  });

  it("serves the node's own claim loop (hub-client.ts runClaimLoop) from query to COMPLETE", async () => {
    const north = node('NORTH');
    const stop = new AbortController();
    const answered: string[] = [];
    const loop = runClaimLoop({
      client: north.hub,
      makeClaim: () => north.claimEnvelope({ waitSeconds: 5 }),
      waitSeconds: 5,
      signal: stop.signal,
      onTasks: async (raw) => {
        for (const envelope of raw) {
          const task = north.task(envelope);
          const submitted = await north.submit(north.sign(north.resultPayload(task, { aggregate: studyFlowAggregate(new Gen(9), 'NORTH') })));
          if (submitted.accepted) answered.push(task.taskId);
        }
      },
    });
    try {
      const query = await startFlow({ sites: ['NORTH'] });
      const done = await eventually(
        async () => (await hub.query(`query($id: ID!) { federatedQuery(id: $id) { status } }`, { id: query.id })).federatedQuery.status,
        (status) => status === 'COMPLETE',
        15_000,
      );
      expect(done).toBe('COMPLETE');
      expect(answered).toEqual([query.id]);
    } finally {
      stop.abort();
      await loop;
    }
  });

  describe('refusals', () => {
    it('refuses a replayed claim with REPLAYED', async () => {
      const claim = node('HARBOUR').claimEnvelope();
      await node('HARBOUR').hub.claimTasks(claim, 0);
      expect(await refusal(node('HARBOUR').hub.claimTasks(claim, 0))).toEqual({ code: 'UNAUTHENTICATED', reason: 'REPLAYED' });
    });

    it('refuses a claim from an unknown node, with a bad signature, for another audience, or for another site', async () => {
      const stranger = NodeIdentity.generate();
      const unknown = signEnvelope(stranger, { kind: EnvelopeKind.CLAIM, signer: 'NORTH', audience: 'hub', payload: node('NORTH').claimEnvelope().payload });
      expect(await refusal(node('NORTH').hub.claimTasks(unknown, 0))).toEqual({ code: 'UNAUTHENTICATED', reason: 'UNKNOWN_SIGNER' });
      const forged = { ...node('NORTH').claimEnvelope(), signature: node('SOUTH').claimEnvelope().signature };
      expect(await refusal(node('NORTH').hub.claimTasks(forged, 0))).toEqual({ code: 'UNAUTHENTICATED', reason: 'BAD_SIGNATURE' });
      const elsewhere = node('NORTH').claimEnvelope({ audience: 'other-hub' });
      expect(await refusal(node('NORTH').hub.claimTasks(elsewhere, 0))).toEqual({ code: 'UNAUTHENTICATED', reason: 'WRONG_AUDIENCE' });
      const forSouth = node('NORTH').claimEnvelope({ site: 'SOUTH' });
      expect(await refusal(node('NORTH').hub.claimTasks(forSouth, 0))).toEqual({ code: 'UNAUTHENTICATED', reason: 'WRONG_SITE' });
    });

    it('refuses results with their codes and writes nothing', async () => {
      const query = await startFlow({ sites: ['NORTH', 'SOUTH'] });
      const north = node('NORTH');
      const task = (await north.claim(0)).tasks.find((t) => t.taskId === query.id)!;
      const aggregate = studyFlowAggregate(new Gen(3), 'NORTH');
      const good = north.resultPayload(task, { aggregate });
      const before = await resultCount();
      const stranger = NodeIdentity.generate();
      const cases: [string, unknown][] = [
        ['BAD_SIGNATURE', { ...north.sign(good), signature: north.sign({ ...good, reason: 'x' }).signature }],
        // The signature covers payloadSha256 too: a changed hash is a bad signature.
        ['BAD_SIGNATURE', { ...north.sign(good), payloadSha256: canonicalSha256('other') }],
        ['UNKNOWN_SIGNER', signEnvelope(stranger, { kind: EnvelopeKind.RESULT, signer: 'NORTH', audience: 'hub', payload: good })],
        ['WRONG_AUDIENCE', north.sign(good, { audience: 'NORTH' })],
        ['WRONG_KIND', north.sign(good, { kind: EnvelopeKind.CLAIM })],
        [
          'TASK_HASH_MISMATCH',
          north.sign({ ...good, taskSha256: canonicalSha256('another task'), manifest: { ...good.manifest, taskSha256: canonicalSha256('another task') } }),
        ],
        ['MANIFEST_MISMATCH', north.sign({ ...good, manifest: { ...good.manifest, aggregateSha256: canonicalSha256('another aggregate') } })],
        ['NOT_ADDRESSEE', node('SOUTH').sign({ ...good, site: 'NORTH' })],
        ['UNKNOWN_TASK', north.sign({ ...good, taskId: '00000000-0000-4000-8000-000000000000' })],
        ['MALFORMED_RESULT', north.sign({ ...good, state: 'MAYBE' })],
        [
          'BAD_AGGREGATE',
          north.sign(
            north.resultPayload(task, {
              aggregate: { groups: [{ key: { SITE: 'NORTH', FEATURE: 'PAT-00017' }, patients: 7, values: aggregate.groups[0].values }] },
            }),
          ),
        ],
      ];
      for (const [code, envelope] of cases) expect([code, await north.submit(envelope)]).toEqual([code, { accepted: false, code, receipt: null }]);
      // A result replayed byte for byte is refused by the replay guard, not stored twice.
      const once = north.sign(good);
      expect(await north.submit(once)).toMatchObject({ accepted: true });
      expect(await north.submit(once)).toEqual({ accepted: false, code: 'REPLAYED', receipt: null });
      expect(await resultCount()).toBe(before + 1);
    });
  });

  it("reports a policy refusal as SITE_REFUSED with the node's reason", async () => {
    const query = await startFlow({ sites: ['NORTH', 'HARBOUR'], minSites: 1 });
    const north = (await node('NORTH').claim(0)).tasks.find((t) => t.taskId === query.id)!;
    const harbour = (await node('HARBOUR').claim(0)).tasks.find((t) => t.taskId === query.id)!;
    expect(
      await node('NORTH').submit(node('NORTH').sign(node('NORTH').resultPayload(north, { aggregate: studyFlowAggregate(new Gen(4), 'NORTH') }))),
    ).toMatchObject({ accepted: true });
    // A refusal computed nothing: its manifest need not hash an aggregate.
    const refusedPayload = node('HARBOUR').resultPayload(harbour, { state: 'REFUSED', reason: 'TASK_KIND_NOT_ALLOWED' });
    const refused = { ...refusedPayload, manifest: { ...refusedPayload.manifest, aggregateSha256: canonicalSha256('nothing released') } };
    expect(await node('HARBOUR').submit(node('HARBOUR').sign(refused))).toMatchObject({ accepted: true });
    const read = await hub.query(
      `query($id: ID!) { federatedQuery(id: $id) { status sites { site state reason } missing { site code reason } answer { studyFlow { pooled node } } } }`,
      { id: query.id },
    );
    expect(read.federatedQuery).toEqual({
      status: 'PARTIAL',
      sites: [
        { site: 'HARBOUR', state: 'REFUSED', reason: 'TASK_KIND_NOT_ALLOWED' },
        { site: 'NORTH', state: 'SUCCEEDED', reason: null },
      ],
      missing: [{ site: 'HARBOUR', code: 'SITE_REFUSED', reason: 'TASK_KIND_NOT_ALLOWED' }],
      answer: {
        studyFlow: [
          { pooled: false, node: 'NORTH' },
          { pooled: true, node: null },
        ],
      },
    });
  });
});
