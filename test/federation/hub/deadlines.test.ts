import { systemContext } from '../../../server/services';
import { subscribe } from '../../helpers/graphql-client';
import { filePassed } from '../../helpers/lifecycle';
import { Gen } from '../generators';
import { studyFlowAggregate } from './cases';
import { eventually, READ, START, startTestHub, type TestHub } from './hub-harness';

let hub: TestHub;

beforeAll(async () => {
  hub = await startTestHub(['NORTH', 'SOUTH', 'HARBOUR'], { leaseSeconds: 1 });
});
afterAll(async () => {
  await hub?.close(filePassed());
});

const node = (code: string) => hub.nodes.get(code)!;
const read = async (id: string): Promise<Record<string, any>> => (await hub.query(READ, { id })).federatedQuery;
const start = async (input: Record<string, unknown>) => (await hub.query(START, { input: { kind: 'STUDY_FLOW', ...input } })).startFederatedQuery;
/** The deadline job has run: no site-task is open any more. */
const expired = (q: Record<string, any>) => q.sites.every((s: { state: string }) => s.state !== 'QUEUED' && s.state !== 'CLAIMED');

describe('deadlines and partial answers', () => {
  it('answers PARTIAL at the deadline naming the silent sites, then folds a late result in as revision 2', async () => {
    const query = await start({ deadlineSeconds: 3, minSites: 1 });
    const watching = await subscribe(
      hub.url,
      hub.token,
      `subscription($id: ID!) { federatedQueryUpdated(id: $id) { status revision updated missing { site code } } }`,
      { id: query.id },
    );
    const [north] = (await node('NORTH').claim(0)).tasks;
    const [south] = (await node('SOUTH').claim(0)).tasks;
    const gen = new Gen(11);
    expect(await node('NORTH').submit(node('NORTH').sign(node('NORTH').resultPayload(north, { aggregate: studyFlowAggregate(gen, 'NORTH') })))).toMatchObject({
      accepted: true,
    });
    // SOUTH claimed and fell silent (a killed node); HARBOUR never called in.
    expect((await read(query.id)).status).toBe('RUNNING');
    const partial = await eventually(() => read(query.id), expired);
    expect(partial).toMatchObject({ status: 'PARTIAL', revision: 1, updated: false });
    expect(partial.missing).toEqual([
      { site: 'HARBOUR', code: 'SITE_UNAVAILABLE', reason: null },
      { site: 'SOUTH', code: 'SITE_TIMEOUT', reason: null },
    ]);
    expect(partial.sites.map((s: { site: string; state: string }) => [s.site, s.state])).toEqual([
      ['HARBOUR', 'EXPIRED'],
      ['NORTH', 'SUCCEEDED'],
      ['SOUTH', 'EXPIRED'],
    ]);
    expect(partial.answer.studyFlow.filter((r: { pooled: boolean }) => r.pooled)).toEqual([expect.objectContaining({ sites: ['NORTH'] })]);

    // SOUTH comes back and delivers: the answer is updated, not failed.
    const southAggregate = studyFlowAggregate(gen, 'SOUTH');
    expect(await node('SOUTH').submit(node('SOUTH').sign(node('SOUTH').resultPayload(south, { aggregate: southAggregate })))).toMatchObject({ accepted: true });
    const late = await read(query.id);
    expect(late).toMatchObject({ status: 'PARTIAL', revision: 2, updated: true });
    expect(late.missing).toEqual([{ site: 'HARBOUR', code: 'SITE_UNAVAILABLE', reason: null }]);
    expect(late.sites.find((s: { site: string }) => s.site === 'SOUTH')).toMatchObject({ state: 'SUCCEEDED', late: true });
    const pooled = late.answer.studyFlow.find((r: { pooled: boolean }) => r.pooled);
    expect(pooled.sites).toEqual(['NORTH', 'SOUTH']);
    expect(pooled.enrolled).toBe(
      late.answer.studyFlow.filter((r: { pooled: boolean }) => !r.pooled).reduce((sum: number, r: { enrolled: number }) => sum + r.enrolled, 0),
    );
    expect(late.answer.rowsSha256).not.toBe(partial.answer.rowsSha256);
    // The researcher's subscription saw the answer at once, at the deadline, and when the late result folded in.
    try {
      const seen = (e: Record<string, any>) => `${e.federatedQueryUpdated.status}/${e.federatedQueryUpdated.revision}`;
      await watching.waitFor((e) => seen(e) === 'PARTIAL/2');
      expect(watching.events.map(seen)).toEqual(expect.arrayContaining(['RUNNING/1', 'PARTIAL/1', 'PARTIAL/2']));
      expect(watching.events.at(-1)!.federatedQueryUpdated).toEqual({
        status: 'PARTIAL',
        revision: 2,
        updated: true,
        missing: [{ site: 'HARBOUR', code: 'SITE_UNAVAILABLE' }],
      });
    } finally {
      await watching.close();
    }
  });

  it('answers INSUFFICIENT when fewer than minSites answered, with no pooled numbers', async () => {
    const query = await start({ deadlineSeconds: 2, minSites: 2, sites: ['NORTH', 'HARBOUR'] });
    const task = (await node('NORTH').claim(0)).tasks.find((t) => t.taskId === query.id)!;
    await node('NORTH').submit(node('NORTH').sign(node('NORTH').resultPayload(task, { aggregate: studyFlowAggregate(new Gen(12), 'NORTH') })));
    const answer = await eventually(() => read(query.id), expired);
    expect(answer).toMatchObject({ status: 'INSUFFICIENT', answer: { rowsSha256: null, studyFlow: [], metrics: [] } });
    expect(answer.missing).toEqual([{ site: 'HARBOUR', code: 'SITE_UNAVAILABLE', reason: null }]);
    expect(answer.contributions.map((c: { site: string }) => c.site)).toEqual(['NORTH']);
  });

  it('reports a FAILED site as SITE_FAILED with its code', async () => {
    const query = await start({ deadlineSeconds: 2, sites: ['SOUTH', 'HARBOUR'] });
    const task = (await node('HARBOUR').claim(0)).tasks.find((t) => t.taskId === query.id)!;
    await node('HARBOUR').submit(node('HARBOUR').sign(node('HARBOUR').resultPayload(task, { state: 'FAILED', reason: 'COMPUTE_ERROR' })));
    const answer = await eventually(() => read(query.id), expired);
    expect(answer.status).toBe('INSUFFICIENT');
    expect(answer.missing).toEqual([
      { site: 'HARBOUR', code: 'SITE_FAILED', reason: 'COMPUTE_ERROR' },
      { site: 'SOUTH', code: 'SITE_UNAVAILABLE', reason: null },
    ]);
  });

  it('sends an early deadline job again for the deadline and leaves the query running', async () => {
    const query = await start({ deadlineSeconds: 600, sites: ['SOUTH'] });
    expect(await hub.node.services.federatedQueries.expireAtDeadline(systemContext('test'), query.id)).toBe('skipped');
    expect((await read(query.id)).sites).toEqual([expect.objectContaining({ site: 'SOUTH', state: 'QUEUED' })]);
    const jobs = await hub.node.dataSource.query(`SELECT start_after FROM pgboss.job WHERE name = 'federation-deadline' AND data->>'taskId' = $1`, [query.id]);
    expect(jobs).toHaveLength(2);
    for (const job of jobs) expect(new Date(job.start_after).getTime()).toBe(Date.parse(query.deadline));
    await hub.query(`mutation($id: ID!) { cancelFederatedQuery(id: $id) { status } }`, { id: query.id });
  });

  it('offers a task again when its lease lapses, and keeps it with the claimer that lists it as working', async () => {
    const query = await start({ deadlineSeconds: 600, sites: ['HARBOUR'] });
    const first = (await node('HARBOUR').claim(0)).tasks.find((t) => t.taskId === query.id);
    expect(first).toBeDefined();
    // Still working: the claim extends the lease, so the task is not offered again.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await node('HARBOUR').claim(0, { working: [query.id] })).tasks).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await node('HARBOUR').claim(0, { working: [query.id] })).tasks).toEqual([]);
    // Silent past the lease (the node restarted and lost it): the next claim gets the same task again.
    await new Promise((resolve) => setTimeout(resolve, 1300));
    const again = (await node('HARBOUR').claim(0)).tasks;
    expect(again).toEqual([first]);
    await hub.query(`mutation($id: ID!) { cancelFederatedQuery(id: $id) { status } }`, { id: query.id });
  });

  it('tells a site that claimed a cancelled task, once, and refuses its result', async () => {
    const query = await start({ deadlineSeconds: 600, sites: ['NORTH', 'SOUTH'] });
    const task = (await node('NORTH').claim(0)).tasks.find((t) => t.taskId === query.id)!;
    const cancelled = await hub.query(`mutation($id: ID!) { cancelFederatedQuery(id: $id) { status sites { site state reason } } }`, { id: query.id });
    expect(cancelled.cancelFederatedQuery).toEqual({
      status: 'CANCELLED',
      sites: [
        { site: 'NORTH', state: 'EXPIRED', reason: 'CANCELLED' },
        { site: 'SOUTH', state: 'EXPIRED', reason: 'CANCELLED' },
      ],
    });
    expect((await node('NORTH').claim(0)).cancelled).toEqual([query.id]);
    expect((await node('NORTH').claim(0)).cancelled).toEqual([]);
    // SOUTH never claimed it: nothing to stop there.
    expect((await node('SOUTH').claim(0)).cancelled).toEqual([]);
    const result = node('NORTH').sign(node('NORTH').resultPayload(task, { aggregate: studyFlowAggregate(new Gen(13), 'NORTH') }));
    expect(await node('NORTH').submit(result)).toEqual({ accepted: false, code: 'TASK_CANCELLED', receipt: null });
    const again = await hub.node.dataSource.query(`SELECT 1 FROM federation_task WHERE id = $1`, [query.id]);
    expect(again).toHaveLength(1);
    const twice = await fetch(`${hub.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${hub.token}` },
      body: JSON.stringify({ query: `mutation($id: ID!) { cancelFederatedQuery(id: $id) { status } }`, variables: { id: query.id } }),
    });
    expect(((await twice.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code).toBe('CONFLICT');
  });
});
