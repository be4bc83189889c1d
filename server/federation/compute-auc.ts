import {
  AucRoundError,
  binOf,
  checkPlacementTable,
  checkScoreGrid,
  CROSS_SUM_FIELDS,
  crossSums,
  PLACEMENT_SUM_FIELDS,
  placementSums,
  placementTable,
  scoreHistograms,
  type BinnedCase,
  type PlacementTable,
  type ScoreGrid,
} from './auc-rounds';
import type { JsonValue } from './canonical-json';
import { ComputeError, parseBinaryCountsQuery } from './compute-query';
import type { AggregateGroup } from './release-policy';
import type { FederatedGroupBy, FederatedRater, FederatedScope } from './task-kinds';

/**
 * The node's side of the federated AUC (auc-rounds.ts), from its analysed cases to the groups it releases.
 *
 * SCORE_HISTOGRAM (round 1) releases per group and rater the per-class histograms on the declared grid.
 * PLACEMENT_SUMS (round 2) carries, for every pooled key (the group key without SITE), the pooled placement table of
 * each rater; the node releases per group `sums` against that pooled table (they add up across sites to the pooled
 * row's sums) and `siteSums` against the group's own table (its own histograms, which it released in round 1), which
 * the hub needs for the group's site row.
 */

/** Round 1: one or two raters (two: a paired comparison, the same cases rated by both), each on its declared grid. */
export interface AucQuery {
  [field: string]: JsonValue;
  raters: FederatedRater[];
  scope: FederatedScope;
  groupBy: FederatedGroupBy[];
  /** The reference is positive when grade >= threshold; a model's score is its probability of grade >= threshold. */
  threshold: number;
  /** One per rater: a model's probabilities on [0, 1], a reader's grades on their own whole-number bins. */
  grids: GridJson[];
}

export type GridJson = ScoreGrid & { [field: string]: JsonValue };

/** Round 2: round 1's query with the pooled placement tables, one entry per pooled key. */
export interface PlacementSumsQuery extends AucQuery {
  tables: { [field: string]: JsonValue; key: { [dimension: string]: string }; tables: PlacementTableJson[] }[];
}

export type PlacementTableJson = PlacementTable & { [field: string]: JsonValue };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const bad = (field: string, what: string): never => {
  throw new ComputeError('BAD_QUERY', `${field}: ${what}`);
};

function parseGrid(raw: unknown, maxScoreBins: number, at: string): GridJson {
  if (!isObject(raw)) return bad(at, 'must be { lower, upper, bins }');
  const extra = Object.keys(raw).find((k) => !['lower', 'upper', 'bins'].includes(k));
  if (extra !== undefined) bad(`${at}.${extra}`, 'unknown field (allowed: lower, upper, bins)');
  try {
    return { ...checkScoreGrid({ lower: raw.lower as number, upper: raw.upper as number, bins: raw.bins as number }, maxScoreBins) };
  } catch (error) {
    if (error instanceof AucRoundError) return bad(at, error.message);
    throw error;
  }
}

/**
 * Reads a SCORE_HISTOGRAM query. The grid's fineness is checked against the node's policy by the release step
 * (GRID_TOO_FINE); here only against the largest grid any policy may allow.
 */
export function parseAucQuery(raw: unknown, maxScoreBins = 10_000, round: 1 | 2 = 1): AucQuery {
  if (!isObject(raw)) return bad('query', 'must be an object');
  // Only round 2 carries the pooled tables.
  const fields = ['raters', 'scope', 'groupBy', 'threshold', 'grids', ...(round === 2 ? ['tables'] : [])];
  const extra = Object.keys(raw).find((k) => !fields.includes(k));
  if (extra !== undefined) bad(`query.${extra}`, `unknown field (allowed: ${fields.join(', ')})`);
  if (!Array.isArray(raw.raters) || raw.raters.length < 1 || raw.raters.length > 2) bad('query.raters', 'names one rater, or two for a paired comparison');
  // The rater, scope, groupBy and threshold rules are BINARY_COUNTS' (the same cases as the node's metrics).
  const raters = (raw.raters as unknown[]).map((rater, i) => {
    try {
      return parseBinaryCountsQuery({ rater, scope: raw.scope, groupBy: raw.groupBy, threshold: raw.threshold });
    } catch (error) {
      if (error instanceof ComputeError) throw new ComputeError('BAD_QUERY', error.message.replace('query.rater', `query.raters[${i}]`));
      throw error;
    }
  });
  if (raters.length === 2 && JSON.stringify(raters[0].rater) === JSON.stringify(raters[1].rater))
    bad('query.raters', 'a paired comparison names two different raters');
  if (!Array.isArray(raw.grids) || raw.grids.length !== raters.length) bad('query.grids', 'one grid per rater');
  const grids = (raw.grids as unknown[]).map((g, i) => parseGrid(g, maxScoreBins, `query.grids[${i}]`));
  return { raters: raters.map((r) => r.rater), scope: raters[0].scope, groupBy: raters[0].groupBy, threshold: raters[0].threshold, grids };
}

export function parsePlacementSumsQuery(raw: unknown, maxScoreBins = 10_000): PlacementSumsQuery {
  const query = parseAucQuery(raw, maxScoreBins, 2);
  const tables = (raw as Record<string, unknown>).tables;
  if (!Array.isArray(tables)) return bad('query.tables', 'must list the pooled placement tables');
  const pooledDimensions = query.groupBy.filter((d) => d !== 'SITE');
  const seen = new Set<string>();
  const parsed = tables.map((entry: unknown, i) => {
    if (!isObject(entry) || !isObject(entry.key) || !Array.isArray(entry.tables)) return bad(`query.tables[${i}]`, 'must be { key, tables }');
    const key = entry.key as Record<string, unknown>;
    const dims = Object.keys(key).sort();
    if (dims.join() !== [...pooledDimensions].sort().join() || Object.values(key).some((v) => typeof v !== 'string')) {
      bad(`query.tables[${i}].key`, `must name ${pooledDimensions.join(', ') || 'no dimension'}`);
    }
    const id = JSON.stringify(dims.map((d) => [d, key[d]]));
    if (seen.has(id)) bad(`query.tables[${i}].key`, 'listed twice');
    seen.add(id);
    if (entry.tables.length !== query.raters.length) bad(`query.tables[${i}].tables`, 'one table per rater');
    const checked = (entry.tables as unknown[]).map((t, r) => {
      try {
        if (!isObject(t)) throw new AucRoundError('BAD_TABLE', 'must be an object');
        return { ...checkPlacementTable(t as unknown as PlacementTable, query.grids[r].bins) } as PlacementTableJson;
      } catch (error) {
        if (error instanceof AucRoundError) return bad(`query.tables[${i}].tables[${r}]`, error.message);
        throw error;
      }
    });
    return { key: key as Record<string, string>, tables: checked };
  });
  return { ...query, tables: parsed };
}

/** One analysed case as the AUC rounds need it: its group key, its patient (node-local) and each rater's score. */
export interface AucCase {
  key: Record<string, string>;
  patient: string;
  positive: boolean;
  /** One score per rater of the query, in its order. */
  scores: number[];
}

interface Grouped {
  key: Record<string, string>;
  cases: BinnedCase[][];
  patients: number;
}

/** Cases per group key, binned per rater; patients to dense indices per group. A score off the grid fails the task. */
function grouped(cases: readonly AucCase[], grids: readonly ScoreGrid[]): Grouped[] {
  const raters = grids.length;
  const groups = new Map<string, Grouped & { clusters: Map<string, number> }>();
  for (const c of cases) {
    const id = JSON.stringify(Object.entries(c.key).sort());
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { key: c.key, cases: Array.from({ length: raters }, () => []), patients: 0, clusters: new Map() }));
    let cluster = g.clusters.get(c.patient);
    if (cluster === undefined) g.clusters.set(c.patient, (cluster = g.clusters.size));
    for (let r = 0; r < raters; r++) {
      let bin: number;
      try {
        bin = binOf(c.scores[r], grids[r]);
      } catch (error) {
        if (error instanceof AucRoundError)
          throw new ComputeError('COMPUTE_ERROR', `a score of rater ${r} is outside its grid [${grids[r].lower}, ${grids[r].upper}]`);
        throw error;
      }
      g.cases[r].push({ cluster, positive: c.positive, bin });
    }
  }
  return [...groups.values()].map(({ key, cases: binned, clusters }) => ({ key, cases: binned, patients: clusters.size }));
}

/** The length of a round-1 histogram vector: the raters' bins together. */
export const histogramLength = (query: AucQuery): number => query.grids.reduce((s, g) => s + g.bins, 0);

/** Round 1 values of a group: `positives` and `negatives`, each the raters' histograms one after the other. */
export function scoreHistogramGroups(cases: readonly AucCase[], query: AucQuery): AggregateGroup[] {
  return grouped(cases, query.grids).map((g) => {
    const histograms = g.cases.map((c, r) => scoreHistograms(c, query.grids[r].bins));
    return {
      key: g.key,
      patients: g.patients,
      values: { positives: histograms.flatMap((h) => h.positives), negatives: histograms.flatMap((h) => h.negatives) },
    };
  });
}

/** The round-2 vector of a group against one table per rater: each rater's placement sums, then (paired) the cross sums. */
function sumsVector(cases: BinnedCase[][], tables: readonly PlacementTable[]): number[] {
  const out = cases.flatMap((c, r) => {
    const s = placementSums(c, tables[r]);
    return PLACEMENT_SUM_FIELDS.map((f) => s[f]);
  });
  if (cases.length === 2) {
    const cross = crossSums(cases[0], cases[1], tables[0], tables[1]);
    out.push(...CROSS_SUM_FIELDS.map((f) => cross[f]));
  }
  return out;
}

/** The length of a round-2 vector for `raters` raters. */
export const sumsLength = (raters: number): number => raters * PLACEMENT_SUM_FIELDS.length + (raters === 2 ? CROSS_SUM_FIELDS.length : 0);

/**
 * Round 2 values of a group: `sums` against the pooled table of its key without SITE, and `siteSums` against its own
 * table. A group whose pooled key has no table (the hub had no AUC for it: one class only) is left out; so is a group
 * whose own table is undefined, as its site row has no AUC either (its `siteSums` are zeros then).
 */
export function placementSumsGroups(cases: readonly AucCase[], query: PlacementSumsQuery): AggregateGroup[] {
  const pooledTables = new Map(query.tables.map((t) => [JSON.stringify(Object.entries(t.key).sort()), t.tables]));
  const out: AggregateGroup[] = [];
  for (const g of grouped(cases, query.grids)) {
    const pooledKey = Object.fromEntries(Object.entries(g.key).filter(([d]) => d !== 'SITE'));
    const pooled = pooledTables.get(JSON.stringify(Object.entries(pooledKey).sort()));
    if (!pooled) continue;
    const own = g.cases.map((c, r) => placementTable(scoreHistograms(c, query.grids[r].bins)));
    const siteSums = own.every((t) => t !== null) ? sumsVector(g.cases, own as PlacementTable[]) : new Array<number>(sumsLength(g.cases.length)).fill(0);
    out.push({ key: g.key, patients: g.patients, values: { sums: sumsVector(g.cases, pooled), siteSums } });
  }
  return out;
}
