import { ComputeError } from '../../../server/federation/compute-query';
import { clusteredCountOf } from '../../../server/federation/compute-binary';
import { FederationTaskKind } from '../../../server/federation/protocol';
import { aggregateVocabulary, checkAggregateShape, type AggregateGroup } from '../../../server/federation/release-policy';
import { PROPORTIONS, type BinaryCountsValues, type FederatedGroupBy, type FederatedScope } from '../../../server/federation/task-kinds';
import { Level, MetricsGroupBy, Side, Split } from '../../../server/domain';
import { systemContext } from '../../../server/services';
import { seededRandom } from '../../../server/stats/bootstrap';
import { clusteredWilson } from '../../../server/stats/proportion';
import { useTestNode } from '../../helpers/lifecycle';
import { loadFederationTestData, type FederationTestData } from './node-data';

const ALL: FederatedScope = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };
const DIMENSION_OF: Record<FederatedGroupBy, string> = { SITE: 'site', FEATURE: 'feature', MODALITY: 'modality', LEVEL: 'level', SIDE: 'side', SPLIT: 'split' };

const sum = (groups: readonly AggregateGroup[]): BinaryCountsValues => {
  const values = groups.map((g) => g.values as BinaryCountsValues);
  const add = (k: 'tp' | 'fp' | 'tn' | 'fn') => values.reduce((t, v) => t + v[k], 0);
  const addArrays = (k: 'clusters' | 'x' | 'n' | 'xx' | 'xn' | 'nn') => PROPORTIONS.map((_, i) => values.reduce((t, v) => t + v[k][i], 0));
  return {
    tp: add('tp'),
    fp: add('fp'),
    tn: add('tn'),
    fn: add('fn'),
    clusters: addArrays('clusters'),
    x: addArrays('x'),
    n: addArrays('n'),
    xx: addArrays('xx'),
    xn: addArrays('xn'),
    nn: addArrays('nn'),
  };
};

describe('federated aggregates computed at a node', () => {
  const node = useTestNode();
  const ctx = systemContext('federation compute test');
  let data: FederationTestData;
  let splitVersionId: string;
  let modelVersionId: string;

  beforeAll(async () => {
    data = await loadFederationTestData(node().services);
    [{ id: splitVersionId }] = await node().dataSource.query(`SELECT id FROM split_version WHERE frozen_at IS NOT NULL`);
    [{ id: modelVersionId }] = await node().dataSource.query(`SELECT id FROM model_version WHERE sha256 = $1`, [data.modelSha256]);
  });

  /** The node's own `metrics` for the same question, and the aggregate: every interval derived from the aggregate equals the node's. */
  async function expectSameAsMetrics(query: { rater: Record<string, string>; scope: FederatedScope; groupBy: FederatedGroupBy[]; threshold: number }) {
    const computed = await node().services.federationCompute.computeAggregate(ctx, FederationTaskKind.BINARY_COUNTS, query);
    const shape = checkAggregateShape(computed.aggregate, { vocabulary: aggregateVocabulary(computed.vocabulary), arrayLengths: computed.arrayLengths });
    expect(shape).toEqual({ ok: true });
    const nonEmpty = <T>(v: T[]) => (v.length ? v : null);
    const metrics = await node().services.metrics.metrics(ctx, {
      rater: query.rater.modelSha256 ? { modelVersionId } : { readerSlot: query.rater.readerSlot as never },
      scope: {
        splitVersionId: query.scope.splits.length ? splitVersionId : null,
        splits: nonEmpty(query.scope.splits) as never,
        modalities: nonEmpty(query.scope.modalities) as never,
        features: nonEmpty(query.scope.features),
        levels: nonEmpty(query.scope.levels) as never,
        sides: nonEmpty(query.scope.sides) as never,
      },
      groupBy: query.groupBy as MetricsGroupBy[],
      threshold: query.threshold,
      confirmedOnly: query.scope.confirmedOnly,
      bootstrapReplicates: 200,
    });
    // Grouped: the metrics rows that fix every grouped dimension; ungrouped: the pooled row.
    const expected = metrics.groups.filter((g) => (query.groupBy.length ? !g.pooled : g.pooled));
    expect(computed.aggregate.groups).toHaveLength(expected.length);
    for (const group of computed.aggregate.groups) {
      const match = expected.find((g) => query.groupBy.every((d) => String((g.key as unknown as Record<string, unknown>)[DIMENSION_OF[d]]) === group.key[d]));
      expect(match).toBeDefined();
      if (!match || match.suppressed) throw new Error('the node computed a group its own metrics do not have');
      const values = group.values as BinaryCountsValues;
      expect({ tp: values.tp, fp: values.fp, tn: values.tn, fn: values.fn }).toEqual(match.confusion);
      expect(group.patients).toBe(match.clusters);
      for (const proportion of PROPORTIONS) {
        const derived = clusteredWilson(clusteredCountOf(values, proportion), 0.95);
        const local = match[proportion];
        expect(derived.value).toBe(local.value);
        if (local.lower === null) expect(derived.lower).toBeNull();
        else {
          expect(derived.lower).toBeCloseTo(local.lower, 12);
          expect(derived.upper).toBeCloseTo(local.upper as number, 12);
        }
      }
    }
    return computed;
  }

  it('BINARY_COUNTS of a model named by sha256, per site and feature, give exactly the node’s metrics and Wilson intervals', async () => {
    const computed = await expectSameAsMetrics({ rater: { modelSha256: data.modelSha256 }, scope: ALL, groupBy: ['SITE', 'FEATURE'], threshold: 1 });
    expect(computed.aggregate.groups.length).toBe(3 * 5);
    expect(computed.modelSha256).toBe(data.modelSha256);
    expect(computed.splitVersionId).toBeNull();
    expect(computed.referenceSnapshotSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('sums of the per-site groups give the pooled row’s intervals: pooling by addition equals computing on the union', async () => {
    const query = { rater: { modelSha256: data.modelSha256 }, scope: ALL, threshold: 1 };
    const bySite = await node().services.federationCompute.computeAggregate(ctx, FederationTaskKind.BINARY_COUNTS, { ...query, groupBy: ['SITE'] });
    const pooled = await expectSameAsMetrics({ ...query, groupBy: [] });
    expect(sum(bySite.aggregate.groups)).toEqual(pooled.aggregate.groups[0].values);
  });

  it('matches the node’s metrics on generated queries: raters, scopes, splits, groupings and thresholds', async () => {
    const random = seededRandom(2026);
    const pick = <T>(values: readonly T[], p = 0.4): T[] => values.filter(() => random() < p);
    for (let i = 0; i < 8; i++) {
      const splits = random() < 0.5 ? pick(Object.values(Split), 0.6) : [];
      const groupBy = pick<FederatedGroupBy>(['SITE', 'FEATURE', 'LEVEL', 'SIDE', ...(splits.length ? (['SPLIT'] as const) : [])], 0.35);
      await expectSameAsMetrics({
        rater: random() < 0.5 ? { modelSha256: data.modelSha256 } : { readerSlot: random() < 0.5 ? 'FIRST' : 'SECOND' },
        scope: {
          ...ALL,
          levels: pick(Object.values(Level), 0.5),
          sides: pick(Object.values(Side), 0.3),
          features: pick(['OSTEOPHYTES', 'HYPERTROPHY', 'EROSION'], 0.5),
          splits,
          confirmedOnly: random() < 0.7,
        },
        groupBy,
        threshold: 1 + Math.floor(random() * 2),
      });
    }
  });

  it('STUDY_FLOW gives the node’s studyFlow counts per site and, with splits, its eligible patients per split', async () => {
    const computed = await node().services.federationCompute.computeAggregate(ctx, FederationTaskKind.STUDY_FLOW, {
      scope: { ...ALL, splits: [Split.TRAIN, Split.TEST] },
    });
    expect(checkAggregateShape(computed.aggregate, { vocabulary: aggregateVocabulary(computed.vocabulary), arrayLengths: [] })).toEqual({ ok: true });
    expect(computed.splitVersionId).toBe(splitVersionId);
    const flow = await node().services.agreement.studyFlow(ctx, { splitVersionId });
    for (const row of flow.filter((r) => r.site !== null)) {
      const group = computed.aggregate.groups.find((g) => g.key.SITE === row.site && g.key.SPLIT === undefined);
      expect(group?.values).toEqual({
        enrolled: row.enrolled,
        excluded: row.excluded,
        eligible: row.eligible,
        joints: row.joints,
        assessable: row.assessable,
        notAssessable: row.notAssessable,
        analysed: row.analysed,
      });
      for (const split of [Split.TRAIN, Split.TEST]) {
        const patients = row.bySplit.find((s) => s.split === split)?.patients ?? 0;
        const splitGroup = computed.aggregate.groups.find((g) => g.key.SITE === row.site && g.key.SPLIT === split);
        expect(splitGroup?.patients ?? 0).toBe(patients);
        if (splitGroup) expect(splitGroup.values.joints).toBe(patients * 10);
      }
    }
    expect(computed.aggregate.groups.some((g) => g.key.SPLIT === Split.VALIDATION)).toBe(false);
  });

  it.each([
    ['a scope that is not an object', FederationTaskKind.STUDY_FLOW, { scope: 'all' }, 'BAD_QUERY', /query.scope: must be an object/],
    ['a study flow restricted by modality', FederationTaskKind.STUDY_FLOW, { scope: { ...ALL, modalities: ['XR'] } }, 'BAD_QUERY', /modalities/],
    ['an unknown query field', FederationTaskKind.STUDY_FLOW, { scope: ALL, sql: 'SELECT 1' }, 'BAD_QUERY', /query.sql: unknown field/],
    ['a missing confirmedOnly', FederationTaskKind.STUDY_FLOW, { scope: { ...ALL, confirmedOnly: undefined } }, 'BAD_QUERY', /confirmedOnly/],
    [
      'two raters',
      FederationTaskKind.BINARY_COUNTS,
      { rater: { modelSha256: 'a'.repeat(64), readerSlot: 'FIRST' }, scope: ALL, groupBy: [], threshold: 1 },
      'BAD_QUERY',
      /exactly one/,
    ],
    [
      'a reader named by node-local id',
      FederationTaskKind.BINARY_COUNTS,
      { rater: { readerId: 'x' }, scope: ALL, groupBy: [], threshold: 1 },
      'BAD_QUERY',
      /readerId/,
    ],
    [
      'an unknown model',
      FederationTaskKind.BINARY_COUNTS,
      { rater: { modelSha256: 'b'.repeat(64) }, scope: ALL, groupBy: [], threshold: 1 },
      'UNKNOWN_MODEL',
      /sha256/,
    ],
    [
      'SPLIT grouping without splits',
      FederationTaskKind.BINARY_COUNTS,
      { rater: { readerSlot: 'FIRST' }, scope: ALL, groupBy: ['SPLIT'], threshold: 1 },
      'BAD_QUERY',
      /SPLIT/,
    ],
    [
      'a fractional threshold',
      FederationTaskKind.BINARY_COUNTS,
      { rater: { readerSlot: 'FIRST' }, scope: ALL, groupBy: [], threshold: 1.5 },
      'BAD_QUERY',
      /threshold/,
    ],
    [
      'an unknown grouping',
      FederationTaskKind.BINARY_COUNTS,
      { rater: { readerSlot: 'FIRST' }, scope: ALL, groupBy: ['PATIENT'], threshold: 1 },
      'BAD_QUERY',
      /groupBy/,
    ],
    ['a kind this node does not compute', FederationTaskKind.INFERENCE, {}, 'UNSUPPORTED_KIND', /INFERENCE/],
  ])('refuses %s with %s', async (_what, kind, query, code, message) => {
    const attempt = node().services.federationCompute.computeAggregate(ctx, kind, query);
    await expect(attempt).rejects.toBeInstanceOf(ComputeError);
    await expect(node().services.federationCompute.computeAggregate(ctx, kind, query)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
  });
});
