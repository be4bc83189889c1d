import { bootstrapIntervals, type BootstrapSums } from '../../../server/federation/bootstrap-rounds';
import { FederationTaskKind } from '../../../server/federation/protocol';
import { aggregateVocabulary, checkAggregateShape } from '../../../server/federation/release-policy';
import type { BinaryCountsValues } from '../../../server/federation/task-kinds';
import { systemContext } from '../../../server/services';
import { useTestNode } from '../../helpers/lifecycle';
import { loadFederationTestData, type FederationTestData } from './node-data';

const ALL = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };
const REPLICATES = 300;

describe('BOOTSTRAP_SUMS computed at a node', () => {
  const node = useTestNode();
  const ctx = systemContext('federation bootstrap test');
  let data: FederationTestData;

  beforeAll(async () => {
    data = await loadFederationTestData(node().services);
  }, 240_000);

  const compute = (query: object) => node().services.federationCompute.computeAggregate(ctx, FederationTaskKind.BOOTSTRAP_SUMS, query);
  const query = (groupBy: string[], seed = 'study-seed-0001') => ({
    rater: { modelSha256: data.modelSha256 },
    scope: ALL,
    groupBy,
    threshold: 1,
    seed,
    replicates: REPLICATES,
  });

  it('the sites’ replicate sums add up to the whole node’s, replicate for replicate: pooling equals the union', async () => {
    const bySite = await compute(query(['SITE']));
    const union = await compute(query([]));
    expect(checkAggregateShape(bySite.aggregate, { vocabulary: aggregateVocabulary(bySite.vocabulary), arrayLengths: bySite.arrayLengths })).toEqual({
      ok: true,
    });
    expect(bySite.arrayLengths).toEqual([REPLICATES]);
    expect(bySite.aggregate.groups).toHaveLength(3);
    const sum = (field: 'tp' | 'fp' | 'tn' | 'fn') =>
      Array.from({ length: REPLICATES }, (_, r) => bySite.aggregate.groups.reduce((s, g) => s + (g.values[field] as number[])[r], 0));
    for (const field of ['tp', 'fp', 'tn', 'fn'] as const) expect(sum(field)).toEqual(union.aggregate.groups[0].values[field]);
    expect(bySite.populations?.flat().sort()).toEqual(union.populations?.[0].slice().sort());

    // The intervals around the node's point counts (BINARY_COUNTS of the same query).
    const counts = await node().services.federationCompute.computeAggregate(ctx, FederationTaskKind.BINARY_COUNTS, {
      rater: { modelSha256: data.modelSha256 },
      scope: ALL,
      groupBy: [],
      threshold: 1,
    });
    const point = counts.aggregate.groups[0].values as BinaryCountsValues;
    const intervals = bootstrapIntervals(point, union.aggregate.groups[0].values as BootstrapSums);
    for (const name of ['sensitivity', 'specificity', 'f1', 'youden']) {
      const e = intervals[name];
      expect(e.reason).toBeNull();
      expect(e.lower as number).toBeLessThanOrEqual(e.value as number);
      expect(e.upper as number).toBeGreaterThanOrEqual(e.value as number);
    }
  });

  it('the same seed gives the same replicates; another seed others', async () => {
    const a = await compute(query(['SITE']));
    const b = await compute(query(['SITE']));
    const c = await compute(query(['SITE'], 'study-seed-0002'));
    expect(b.aggregate).toEqual(a.aggregate);
    expect(c.aggregate.groups[0].values.tp).not.toEqual(a.aggregate.groups[0].values.tp);
  });

  it('refuses a malformed query and an unknown model', async () => {
    await expect(compute({ ...query([]), seed: 'x' })).rejects.toMatchObject({ code: 'BAD_QUERY' });
    await expect(compute({ ...query([]), replicates: 5 })).rejects.toMatchObject({ code: 'BAD_QUERY' });
    await expect(compute({ ...query([]), rater: { modelSha256: 'ef'.repeat(32) } })).rejects.toMatchObject({ code: 'UNKNOWN_MODEL' });
  });
});
