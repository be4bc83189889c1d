import { randomUUID } from 'node:crypto';
import { FederationReleasedPopulation } from '../../../server/entities';
import { FederationTaskKind } from '../../../server/federation/protocol';
import { DEFAULT_RELEASE_POLICY } from '../../../server/federation/release-policy';
import { jobHandlers, workEveryQueue } from '../../../server/jobs/job-registry';
import { systemContext } from '../../../server/services';
import { filePassed } from '../../helpers/lifecycle';
import { startTestNode, type TestNode } from '../../helpers/test-node';
import { loadFederationTestData, type FederationTestData } from './node-data';
import { ScriptedHub } from './scripted-hub';

const SITE = 'NORTH';
const ALL = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };
const FAST = { waitSeconds: 1, lockRetryMs: 200, backoff: { baseMs: 100, maxMs: 800 } };

describe('the node’s differencing guard', () => {
  let hub: ScriptedHub;
  let node: TestNode;
  let data: FederationTestData;
  const admins = systemContext('federation differencing test');
  const query = () => ({ rater: { modelSha256: data.modelSha256 }, scope: ALL, groupBy: ['SITE'], threshold: 1 });
  const populations = () => node.services.db.repo(admins, FederationReleasedPopulation);

  beforeAll(async () => {
    hub = await new ScriptedHub(SITE, null).listen();
    node = await startTestNode({ federation: { site: SITE, hubUrl: hub.url, hubSigningKey: hub.identity.public.signingKey, claim: FAST } });
    hub.setNodeKey((await node.services.federationNode.identity()).public.signingKey);
    data = await loadFederationTestData(node.services);
    await workEveryQueue(node.services.queue, jobHandlers(node.services));
    node.services.federationClaimLoop?.start();
  });

  afterAll(async () => {
    await node?.close(filePassed());
    await hub?.close();
  });

  async function answer(kind: FederationTaskKind, q: object) {
    const task = hub.task(kind, q as never);
    hub.send(task);
    return (await hub.waitFor('the result', () => hub.resultFor(task.taskId))).payload;
  }

  it('refuses a task with a group one patient away from a released population, and records what it releases', async () => {
    const computed = await node.services.federationCompute.computeAggregate(admins, FederationTaskKind.BINARY_COUNTS, query());
    const [first] = computed.populations as string[][];
    expect(first.length).toBeGreaterThanOrEqual(DEFAULT_RELEASE_POLICY.minGroupPatients);
    // As if an earlier release had covered the same patients but one.
    const earlier = randomUUID();
    await populations().insert({ inboxTaskId: earlier, patients: first.slice(1) });
    const refused = await answer(FederationTaskKind.BINARY_COUNTS, query());
    expect(refused).toMatchObject({ state: 'REFUSED', reason: 'DIFFERENCING', aggregate: null });
    expect(await populations().countBy({ inboxTaskId: earlier })).toBe(1);
    expect(await populations().count()).toBe(1);

    await populations().delete({ inboxTaskId: earlier });
    const released = await answer(FederationTaskKind.BINARY_COUNTS, query());
    expect(released.state).toBe('SUCCEEDED');
    const releasedGroups = computed.aggregate.groups.filter((g) => g.patients >= DEFAULT_RELEASE_POLICY.minGroupPatients);
    const recorded = await populations().find();
    expect(recorded.map((r) => [...r.patients].sort())).toEqual(
      expect.arrayContaining(releasedGroups.map((g) => [...(computed.populations as string[][])[computed.aggregate.groups.indexOf(g)]].sort())),
    );
    expect(recorded).toHaveLength(releasedGroups.length);
    // The same question again reveals nothing new: it is answered.
    expect((await answer(FederationTaskKind.BINARY_COUNTS, query())).state).toBe('SUCCEEDED');
  });

  it('guards the AUC rounds’ populations the same way', async () => {
    await node.services.federationNode.setReleasePolicy(admins, { taskKinds: [FederationTaskKind.SCORE_HISTOGRAM] });
    const auc = { raters: [{ modelSha256: data.modelSha256 }], scope: ALL, groupBy: ['SITE'], threshold: 1, grids: [{ lower: 0, upper: 1, bins: 20 }] };
    const computed = await node.services.federationCompute.computeAggregate(admins, FederationTaskKind.SCORE_HISTOGRAM, auc);
    const [first] = computed.populations as string[][];
    await populations().insert({ inboxTaskId: randomUUID(), patients: [...first, randomUUID()] });
    expect(await answer(FederationTaskKind.SCORE_HISTOGRAM, auc)).toMatchObject({ state: 'REFUSED', reason: 'DIFFERENCING' });
    await node.services.federationNode.setReleasePolicy(admins, {});
  });
});
