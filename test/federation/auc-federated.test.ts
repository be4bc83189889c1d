import { binOf } from '../../server/federation/auc-rounds';
import { canonicalJson } from '../../server/federation/canonical-json';
import {
  parseAucQuery,
  parsePlacementSumsQuery,
  placementSumsGroups,
  scoreHistogramGroups,
  sumsLength,
  histogramLength,
  type AucCase,
  type AucQuery,
} from '../../server/federation/compute-auc';
import { ComputeError } from '../../server/federation/compute-query';
import { aucAnswerRows, placementTablesOf, type AucContribution, type AucRow } from '../../server/federation/pool-auc';
import { aggregateVocabulary, checkAggregateShape, type AggregateGroup, type SuppressedGroup } from '../../server/federation/release-policy';
import type { FederatedGroupBy } from '../../server/federation/task-kinds';
import {
  aucClustered,
  aucDelong,
  clusteredIntervalVariance,
  obuchowskiCovariance,
  pairedDelong,
  pairedDelongVariance,
  placements,
} from '../../server/stats/auc';
import type { Estimate } from '../../server/stats/estimate';
import { normalQuantile, twoSidedP } from '../../server/stats/normal';
import { Gen } from './generators';

const SITES = ['NORTH', 'SOUTH', 'WEST'];
const FEATURES = ['STENOSIS', 'EFFUSION'];
const MIN_PATIENTS = 5;
const ALL_SCOPE = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };

/** One analysed case of a generated study: site, patient, feature, truth, a model probability and a reader grade. */
interface Case {
  site: string;
  patient: string;
  feature: string;
  positive: boolean;
  scores: [number, number];
}

function study(gen: Gen): Case[] {
  const cases: Case[] = [];
  for (const site of SITES) {
    const patients = gen.pick([2, 8, 25, 40]);
    for (let p = 0; p < patients; p++) {
      const risk = gen.random();
      for (const feature of FEATURES) {
        for (let j = gen.int(0, 3); j > 0; j--) {
          const positive = gen.random() < (risk + (site === 'WEST' ? 0.1 : 0.4)) / 2;
          const probability = Math.min(1, Math.max(0, (positive ? 0.6 : 0.4) + (gen.random() - 0.5) * 0.9));
          const grade = Math.min(4, Math.max(0, Math.round((positive ? 2.6 : 1.4) + (gen.random() - 0.5) * 3)));
          cases.push({ site, patient: `${site}-${p}`, feature, positive, scores: [probability, grade] });
        }
      }
    }
  }
  return cases;
}

function queryOf(groupBy: FederatedGroupBy[], raters: 1 | 2): AucQuery {
  const all = {
    raters: [{ modelSha256: 'ab'.repeat(32) }, { readerSlot: 'FIRST' }],
    scope: ALL_SCOPE,
    groupBy,
    threshold: 2,
    grids: [
      { lower: 0, upper: 1, bins: 20 },
      { lower: -0.5, upper: 4.5, bins: 5 },
    ],
  };
  return parseAucQuery({ ...all, raters: all.raters.slice(0, raters), grids: all.grids.slice(0, raters) });
}

const keyOf = (c: Case, groupBy: readonly FederatedGroupBy[]): Record<string, string> =>
  Object.fromEntries(groupBy.map((d) => [d, d === 'SITE' ? c.site : c.feature]));
const aucCases = (cases: readonly Case[], query: AucQuery): AucCase[] =>
  cases.map((c) => ({ key: keyOf(c, query.groupBy), patient: c.patient, positive: c.positive, scores: c.scores.slice(0, query.raters.length) }));

/** The node's release step as its default policy makes it: groups under the minimum are withheld. */
function release(site: string, groups: AggregateGroup[], arrayLength: number): AucContribution {
  const shape = checkAggregateShape({ groups }, { vocabulary: new Set([...aggregateVocabulary(), ...SITES, ...FEATURES]), arrayLengths: [arrayLength] });
  expect(shape).toEqual({ ok: true });
  const suppressed: SuppressedGroup[] = groups.filter((g) => g.patients < MIN_PATIENTS).map((g) => ({ key: g.key, suppressed: true, reason: 'SMALL_GROUP' }));
  return { site, groups: groups.filter((g) => g.patients >= MIN_PATIENTS), suppressed };
}

/** Both rounds over the three sites, with the task queries passing through JSON as they do on the wire. */
function federate(cases: readonly Case[], query: AucQuery) {
  const round1 = SITES.map((site) =>
    release(
      site,
      scoreHistogramGroups(
        aucCases(
          cases.filter((c) => c.site === site),
          query,
        ),
        query,
      ),
      histogramLength(query),
    ),
  );
  const tables = placementTablesOf(round1, query, MIN_PATIENTS);
  const second = parsePlacementSumsQuery(JSON.parse(canonicalJson({ ...query, tables })));
  const round2 = SITES.map((site) => {
    const released = new Set(round1.find((r) => r.site === site)!.groups.map((g) => canonicalJson(g.key)));
    const groups = placementSumsGroups(
      aucCases(
        cases.filter((c) => c.site === site),
        second,
      ),
      second,
    ).filter((g) => released.has(canonicalJson(g.key)));
    return release(site, groups, sumsLength(query.raters.length));
  });
  return aucAnswerRows(round1, round2, query, { minPatients: MIN_PATIENTS });
}

const close = (actual: number | null, expected: number | null) => {
  if (expected === null) expect(actual).toBeNull();
  else expect(Math.abs((actual as number) - expected)).toBeLessThanOrEqual(1e-9);
};
const sameEstimate = (actual: Estimate, expected: Estimate) => {
  for (const f of ['value', 'lower', 'upper'] as const) close(actual[f], expected[f]);
  expect(actual.reason).toBe(expected.reason);
};

/** The single-node numbers on `cases` (the union behind a row), with stats/auc.ts on the grid's bins. */
function expectSingleNodeNumbers(row: AucRow, cases: readonly Case[], query: AucQuery) {
  const query0 = query.grids;
  const pos = cases.filter((c) => c.positive);
  const neg = cases.filter((c) => !c.positive);
  const bins = (list: readonly Case[], r: number) => list.map((c) => binOf(c.scores[r], query0[r]));
  query.raters.forEach((_, r) => {
    const delong = aucDelong(bins(pos, r), bins(neg, r));
    const clustered = aucClustered(
      bins(pos, r),
      bins(neg, r),
      pos.map((c) => c.patient),
      neg.map((c) => c.patient),
    );
    close(row.aucs[r].auc, delong.value);
    sameEstimate(row.aucs[r].delong, delong);
    sameEstimate(row.aucs[r].clustered, clustered);
  });
  if (query.raters.length === 1) return expect(row.difference).toBeNull();
  const pd = pairedDelong(bins(pos, 0), bins(neg, 0), bins(pos, 1), bins(neg, 1));
  if (!pd) return expect(row.difference).toBeNull();
  sameEstimate(row.difference!.delong, pd.difference);
  close(row.difference!.delong.p, pd.p);
  const a = placements(bins(pos, 0), bins(neg, 0))!;
  const b = placements(bins(pos, 1), bins(neg, 1))!;
  const cov = (x: typeof a, y: typeof a) =>
    obuchowskiCovariance(
      x,
      y,
      pos.map((c) => c.patient),
      neg.map((c) => c.patient),
    );
  const [va, vb, cab] = [cov(a, a), cov(b, b), cov(a, b)];
  if (va === null || vb === null || cab === null) return expect(row.difference!.clustered.reason).toBe('ONE_CLUSTER');
  const variance = clusteredIntervalVariance(va + vb - 2 * cab, pairedDelongVariance(a, b));
  if (!(variance > 0)) return expect(row.difference!.clustered.reason).toBe('ZERO_VARIANCE');
  const value = a.auc - b.auc;
  const half = normalQuantile(0.975) * Math.sqrt(variance);
  close(row.difference!.clustered.value, value);
  close(row.difference!.clustered.lower, value - half);
  close(row.difference!.clustered.upper, value + half);
  close(row.difference!.clustered.p, twoSidedP(value / Math.sqrt(variance)));
}

const GROUPINGS: FederatedGroupBy[][] = [[], ['SITE'], ['FEATURE'], ['SITE', 'FEATURE']];

describe('federated AUC rows equal the single-node numbers on the union of the released groups', () => {
  const cases = Array.from({ length: 12 }, (_, i) => 300 + i).flatMap((seed) =>
    GROUPINGS.flatMap((groupBy) => [1, 2].map((raters) => [seed, groupBy.join('+') || 'none', raters] as const)),
  );

  test.each(cases)('seed %i, groupBy %s, %i rater(s)', (seed, grouping, raters) => {
    const groupBy = grouping === 'none' ? [] : (grouping.split('+') as FederatedGroupBy[]);
    const data = study(new Gen(seed));
    const query = queryOf(groupBy, raters as 1 | 2);
    const rows = federate(data, query);
    const matches = (c: Case, key: Record<string, string>) => Object.entries(key).every(([d, v]) => (d === 'SITE' ? c.site : c.feature) === v);
    for (const row of rows) {
      expect(row.grids).toEqual(query.grids);
      if (row.suppressed) {
        expect(row.aucs).toEqual([]);
        continue;
      }
      // A pooled row is the union of the groups its sites released; a site row is that site's group.
      const behind = data.filter((c) => row.sites.includes(c.site) && matches(c, row.key));
      expect(row.patients).toBe(new Set(behind.map((c) => c.patient)).size);
      expectSingleNodeNumbers(row, behind, query);
    }
    // Every key of the union without SITE has its pooled row, and no row pins fewer than the minimum of patients.
    const pooledKeys = new Set(rows.filter((r) => r.pooled).map((r) => canonicalJson(r.key)));
    const unionKeys = new Set(
      data.map((c) =>
        canonicalJson(
          keyOf(
            c,
            groupBy.filter((d) => d !== 'SITE'),
          ),
        ),
      ),
    );
    expect(pooledKeys).toEqual(unionKeys);
    for (const row of rows) if (!row.suppressed) expect(row.patients).toBeGreaterThanOrEqual(MIN_PATIENTS);
  });

  test('the generated studies cover withheld site groups, small pooled rows and defined clustered intervals', () => {
    const seen = new Set<string | null>();
    for (let seed = 300; seed < 312; seed++)
      for (const groupBy of GROUPINGS)
        for (const row of federate(study(new Gen(seed)), queryOf(groupBy, 2))) seen.add(row.suppression ?? row.difference?.clustered.reason ?? null);
    expect(seen).toContain('SMALL_GROUP');
    expect(seen).toContain(null);
    const rows = GROUPINGS.flatMap((groupBy) => federate(study(new Gen(301)), queryOf(groupBy, 2)));
    expect(rows.filter((r) => r.pooled && r.difference?.clustered.lower != null && r.aucs[0].clustered.lower != null).length).toBeGreaterThan(3);
    expect(rows.filter((r) => !r.pooled && r.aucs[1]?.clustered.lower != null).length).toBeGreaterThan(3);
  });
});

describe('AUC task queries are checked before anything is computed', () => {
  const good = {
    raters: [{ modelSha256: 'ab'.repeat(32) }],
    scope: ALL_SCOPE,
    groupBy: ['FEATURE'],
    threshold: 2,
    grids: [{ lower: 0, upper: 1, bins: 20 }],
  };
  const refused = (raw: unknown, message: RegExp, parse: (r: unknown) => unknown = parseAucQuery) => {
    let error: unknown;
    try {
      parse(raw);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ComputeError);
    expect((error as ComputeError).code).toBe('BAD_QUERY');
    expect((error as ComputeError).message).toMatch(message);
  };

  test('round 1', () => {
    expect(parseAucQuery(good).grids).toEqual(good.grids);
    refused({ ...good, raters: [] }, /query.raters/);
    refused({ ...good, raters: [good.raters[0], good.raters[0]], grids: [good.grids[0], good.grids[0]] }, /two different raters/);
    refused({ ...good, raters: [{ readerSlot: 'THIRD' }] }, /query.raters\[0\]/);
    refused({ ...good, grids: [] }, /one grid per rater/);
    refused({ ...good, grids: [{ lower: 0, upper: 1, bins: 1 }] }, /query.grids\[0\]/);
    refused({ ...good, grids: [{ lower: 0, upper: 1, bins: 20, step: 1 }] }, /query.grids\[0\].step/);
    refused({ ...good, grids: [{ lower: 0, upper: 1, bins: 20_000 }] }, /at most 10000/);
    refused({ ...good, extra: 1 }, /query.extra/);
    refused({ ...good, tables: [] }, /query.tables/);
    refused({ ...good, threshold: 0 }, /query.threshold/);
    refused('nope', /query/);
  });

  test('round 2 tables', () => {
    const table = { auc: 0.5, m: 3, n: 4, v10: new Array(20).fill(0.5), v01: new Array(20).fill(0.5) };
    const parse = (r: unknown) => parsePlacementSumsQuery(r);
    expect(parse({ ...good, tables: [{ key: { FEATURE: 'STENOSIS' }, tables: [table] }] }).tables).toHaveLength(1);
    refused(good, /query.tables/, parse);
    refused({ ...good, tables: [{ key: { SITE: 'NORTH' }, tables: [table] }] }, /must name FEATURE/, parse);
    refused({ ...good, tables: [{ key: { FEATURE: 'STENOSIS' }, tables: [] }] }, /one table per rater/, parse);
    refused({ ...good, tables: [{ key: { FEATURE: 'STENOSIS' }, tables: [{ ...table, v10: [0.5] }] }] }, /tables\[0\]\.tables\[0\]/, parse);
    refused(
      {
        ...good,
        tables: [
          { key: { FEATURE: 'STENOSIS' }, tables: [table] },
          { key: { FEATURE: 'STENOSIS' }, tables: [table] },
        ],
      },
      /listed twice/,
      parse,
    );
  });

  test('a score outside its grid fails the task instead of being clamped', () => {
    const query = parseAucQuery(good);
    expect(() => scoreHistogramGroups([{ key: { FEATURE: 'STENOSIS' }, patient: 'p', positive: true, scores: [1.5] }], query)).toThrow(ComputeError);
  });
});
