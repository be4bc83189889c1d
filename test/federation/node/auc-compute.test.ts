import { binOf } from '../../../server/federation/auc-rounds';
import { ComputeError } from '../../../server/federation/compute-query';
import { parseAucQuery, type AucQuery } from '../../../server/federation/compute-auc';
import { aucAnswerRows, placementTablesOf, type AucContribution, type AucRow } from '../../../server/federation/pool-auc';
import { FederationTaskKind } from '../../../server/federation/protocol';
import {
  aggregateVocabulary,
  checkAggregateShape,
  decideRelease,
  DEFAULT_RELEASE_POLICY,
  type AggregateGroup,
} from '../../../server/federation/release-policy';
import type { FederatedGroupBy, FederatedScope } from '../../../server/federation/task-kinds';
import { MetricsGroupBy } from '../../../server/domain';
import { systemContext } from '../../../server/services';
import { aucClustered } from '../../../server/stats/auc';
import { scoreOf } from '../../../server/stats/engine';
import type { Estimate } from '../../../server/stats/estimate';
import { useTestNode } from '../../helpers/lifecycle';
import { loadFederationTestData, type FederationTestData } from './node-data';

const ALL: FederatedScope = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };
/** Whole grades 0..9 each in their own bin: the AUC of a reader is then the node's own AUC, not an approximation. */
const GRADE_GRID = { lower: -0.5, upper: 9.5, bins: 10 };
const PROBABILITY_GRID = { lower: 0, upper: 1, bins: 50 };

const close = (actual: number | null, expected: number | null) => {
  if (expected === null) expect(actual).toBeNull();
  else expect(Math.abs((actual as number) - expected)).toBeLessThanOrEqual(1e-9);
};
const sameEstimate = (actual: Estimate, expected: Estimate) => {
  for (const f of ['value', 'lower', 'upper'] as const) close(actual[f], expected[f]);
};

/** The node's three sites as three contributions: the SITE groups of one node's aggregate, each as its site released it. */
const bySite = (groups: readonly AggregateGroup[]): AucContribution[] =>
  [...new Set(groups.map((g) => g.key.SITE))].map((site) => ({ site, groups: groups.filter((g) => g.key.SITE === site), suppressed: [] }));

describe('federated AUC aggregates computed at a node', () => {
  const node = useTestNode();
  const ctx = systemContext('federation AUC compute test');
  let data: FederationTestData;

  beforeAll(async () => {
    data = await loadFederationTestData(node().services);
  }, 240_000);

  /** Both rounds at the node, the node's sites standing for three members. */
  async function federate(raw: Record<string, unknown>): Promise<{ query: AucQuery; rows: AucRow[] }> {
    const compute = node().services.federationCompute;
    const query = parseAucQuery(raw);
    const round1 = await compute.computeAggregate(ctx, FederationTaskKind.SCORE_HISTOGRAM, raw);
    expect(checkAggregateShape(round1.aggregate, { vocabulary: aggregateVocabulary(round1.vocabulary), arrayLengths: round1.arrayLengths })).toEqual({
      ok: true,
    });
    expect(round1.scoreBins).toBe(Math.max(...query.grids.map((g) => g.bins)));
    const tables = placementTablesOf(bySite(round1.aggregate.groups), query, 1);
    const round2 = await compute.computeAggregate(ctx, FederationTaskKind.PLACEMENT_SUMS, { ...raw, tables });
    expect(checkAggregateShape(round2.aggregate, { vocabulary: aggregateVocabulary(round2.vocabulary), arrayLengths: round2.arrayLengths })).toEqual({
      ok: true,
    });
    return { query, rows: aucAnswerRows(bySite(round1.aggregate.groups), bySite(round2.aggregate.groups), query, { minPatients: 1 }) };
  }

  it.each([[['SITE']], [['SITE', 'FEATURE']]] as FederatedGroupBy[][][])(
    'a reader slot, groupBy %j: site rows and pooled rows equal the node’s own metrics (clustered and DeLong AUC intervals)',
    async (groupBy) => {
      const { rows } = await federate({ raters: [{ readerSlot: 'FIRST' }], scope: ALL, groupBy, threshold: 1, grids: [GRADE_GRID] });
      const metricsOf = async (dims: FederatedGroupBy[], clustered: boolean) =>
        (
          await node().services.metrics.metrics(ctx, {
            rater: { readerSlot: 'FIRST' as never },
            scope: {},
            groupBy: dims as MetricsGroupBy[],
            threshold: 1,
            confirmedOnly: true,
            clustered,
            bootstrapReplicates: 200,
          })
        ).groups.filter((g) => (dims.length ? !g.pooled : g.pooled));
      const pooledDims = groupBy.filter((d) => d !== 'SITE');
      const expected = {
        site: { clustered: await metricsOf(groupBy, true), delong: await metricsOf(groupBy, false) },
        pooled: { clustered: await metricsOf(pooledDims, true), delong: await metricsOf(pooledDims, false) },
      };
      let compared = 0;
      for (const row of rows) {
        const source = row.pooled ? expected.pooled : expected.site;
        const find = (list: typeof source.clustered) =>
          list.find((g) => Object.entries(row.key).every(([d, v]) => String((g.key as unknown as Record<string, unknown>)[d.toLowerCase()]) === v));
        const clustered = find(source.clustered);
        const delong = find(source.delong);
        if (!clustered || clustered.suppressed || !delong || delong.suppressed) throw new Error(`no released metrics group for ${JSON.stringify(row.key)}`);
        sameEstimate(row.aucs[0].clustered, clustered.auc);
        sameEstimate(row.aucs[0].delong, delong.auc);
        compared++;
      }
      expect(compared).toBe(rows.length);
      expect(rows.filter((r) => r.pooled && r.aucs[0].clustered.lower !== null).length).toBeGreaterThan(0);
    },
    120_000,
  );

  it('a model against a reader slot: each site row’s model AUC is the clustered AUC of the node’s cases at the grid', async () => {
    const raw = {
      raters: [{ modelSha256: data.modelSha256 }, { readerSlot: 'SECOND' }],
      scope: ALL,
      groupBy: ['SITE'],
      threshold: 1,
      grids: [PROBABILITY_GRID, GRADE_GRID],
    };
    const { rows } = await federate(raw);
    const [{ id: modelVersionId }] = await node().dataSource.query(`SELECT id FROM model_version WHERE sha256 = $1`, [data.modelSha256]);
    const request = (rater: object) => ({ rater: rater as never, scope: {}, threshold: 1, confirmedOnly: true });
    const model = await node().services.metrics.gradedCases(ctx, request({ modelVersionId }));
    const reader = new Set(
      (await node().services.metrics.gradedCases(ctx, request({ readerSlot: 'SECOND' }))).map((r) => `${r.jointId} ${r.modality} ${r.feature}`),
    );
    const paired = model.filter((r) => reader.has(`${r.jointId} ${r.modality} ${r.feature}`));
    for (const row of rows.filter((r) => !r.pooled)) {
      const cases = paired.filter((r) => r.site === row.key.SITE);
      const score = (r: (typeof cases)[number]) =>
        binOf(scoreOf({ cluster: 0, truth: r.truth, grade: r.grade, probabilities: r.probabilities ?? undefined }, 1), PROBABILITY_GRID);
      const pos = cases.filter((r) => r.truth >= 1);
      const neg = cases.filter((r) => r.truth < 1);
      const expected = aucClustered(
        pos.map(score),
        neg.map(score),
        pos.map((r) => r.patientId),
        neg.map((r) => r.patientId),
      );
      sameEstimate(row.aucs[0].clustered, expected);
      expect(row.patients).toBe(new Set(cases.map((r) => r.patientId)).size);
      expect(row.difference?.clustered.reason).toBeNull();
    }
    expect(rows.filter((r) => !r.pooled)).toHaveLength(3);
    expect(rows.find((r) => r.pooled)?.difference?.delong.p).not.toBeNull();
  }, 120_000);

  it('refuses what it cannot answer: an unknown model, a malformed grid; the policy holds the grid to maxScoreBins', async () => {
    const compute = node().services.federationCompute;
    const base = { raters: [{ modelSha256: 'cd'.repeat(32) }], scope: ALL, groupBy: [], threshold: 1, grids: [PROBABILITY_GRID] };
    await expect(compute.computeAggregate(ctx, FederationTaskKind.SCORE_HISTOGRAM, base)).rejects.toMatchObject({ code: 'UNKNOWN_MODEL' });
    await expect(compute.computeAggregate(ctx, FederationTaskKind.SCORE_HISTOGRAM, { ...base, grids: [{ lower: 0, upper: 1 }] })).rejects.toBeInstanceOf(
      ComputeError,
    );
    await expect(compute.computeAggregate(ctx, FederationTaskKind.PLACEMENT_SUMS, { ...base, raters: [{ readerSlot: 'FIRST' }] })).rejects.toMatchObject({
      code: 'BAD_QUERY',
    });
    const fine = await compute.computeAggregate(ctx, FederationTaskKind.SCORE_HISTOGRAM, {
      ...base,
      raters: [{ readerSlot: 'FIRST' }],
      grids: [{ lower: -0.5, upper: 9.5, bins: 200 }],
    });
    const decision = decideRelease({
      policy: { ...DEFAULT_RELEASE_POLICY, taskKinds: [FederationTaskKind.SCORE_HISTOGRAM] },
      request: { kind: FederationTaskKind.SCORE_HISTOGRAM, arrayLengths: fine.arrayLengths, scoreBins: fine.scoreBins },
      aggregate: fine.aggregate,
      vocabulary: aggregateVocabulary(fine.vocabulary),
      releasesInPeriod: 0,
    });
    expect(decision).toMatchObject({ decision: 'REFUSE', reason: 'GRID_TOO_FINE' });
  });
});
