import type { Estimate } from '../stats/estimate';
import {
  CROSS_SUM_FIELDS,
  PLACEMENT_SUM_FIELDS,
  placementTable,
  pooledAuc,
  pooledAucDifference,
  type CrossSums,
  type PlacementSums,
  type PlacementTable,
  type ScoreHistograms,
} from './auc-rounds';
import { canonicalJson } from './canonical-json';
import type { AucQuery, PlacementSumsQuery } from './compute-auc';
import type { AggregateGroup, SuppressedGroup } from './release-policy';
import type { PooledTotal } from './secure-sum-transport';

/**
 * The hub's side of the federated AUC: pools round 1 (histograms) into the placement tables round 2 carries, and
 * rounds 1 and 2 into answer rows: per site row (a group as its site released it) and per pooled row (the sum over
 * sites of the groups with that key without SITE), each rater's AUC with its DeLong and patient-clustered
 * (Obuchowski) intervals and, for two raters, the paired difference. Pure, like pool.ts, so `facet verify` can
 * recompute it. Every row names the grid: the numbers are exact at that score resolution.
 */

export interface AucContribution {
  site: string;
  groups: readonly AggregateGroup[];
  suppressed: readonly SuppressedGroup[];
}

const SITE = 'SITE';
const keyId = (key: Record<string, string>): string => canonicalJson(key);
const withoutSite = (key: Record<string, string>) => Object.fromEntries(Object.entries(key).filter(([d]) => d !== SITE));
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A rater's histograms within a round-1 group's values (the raters' histograms one after the other). */
function histogramsOf(values: Record<string, number | number[]>, rater: number, query: AucQuery): ScoreHistograms {
  const start = query.grids.slice(0, rater).reduce((s, g) => s + g.bins, 0);
  const slice = (name: string) => (values[name] as number[]).slice(start, start + query.grids[rater].bins);
  return { positives: slice('positives'), negatives: slice('negatives') };
}

interface Pooled {
  key: Record<string, string>;
  patients: number;
  values: Record<string, number[]>;
  sites: Set<string>;
  withheld: Set<string>;
}

/** Sums the released groups' arrays per key without SITE, and adds the totals of a secure round (no site's numbers in them). */
function pool(contributions: readonly AucContribution[], totals: readonly PooledTotal[] = []): Map<string, Pooled> {
  const pooled = new Map<string, Pooled>();
  const slot = (key: Record<string, string>) => {
    const id = keyId(key);
    let entry = pooled.get(id);
    if (!entry) pooled.set(id, (entry = { key, patients: 0, values: {}, sites: new Set(), withheld: new Set() }));
    return entry;
  };
  for (const c of contributions) {
    for (const g of c.groups) {
      const entry = slot(withoutSite(g.key));
      entry.patients += g.patients;
      entry.sites.add(c.site);
      for (const [name, value] of Object.entries(g.values)) {
        const v = value as number[];
        entry.values[name] = entry.values[name]?.map((x, i) => x + v[i]) ?? [...v];
      }
    }
    for (const g of c.suppressed) slot(withoutSite(g.key)).withheld.add(c.site);
  }
  for (const total of totals) {
    const entry = slot(total.key);
    entry.patients += total.patients;
    for (const site of total.sites) entry.sites.add(site);
    for (const [name, value] of Object.entries(total.values)) {
      const v = value as number[];
      entry.values[name] = entry.values[name]?.map((x, i) => x + v[i]) ?? [...v];
    }
  }
  return pooled;
}

/**
 * Round 2's tables: per pooled key with at least `minPatients` patients, each rater's placement table from the
 * pooled histograms; keys where a rater has one class only have no AUC and are left out.
 */
export function placementTablesOf(
  round1: readonly AucContribution[],
  query: AucQuery,
  minPatients: number,
  round1Totals: readonly PooledTotal[] = [],
): PlacementSumsQuery['tables'] {
  const out: PlacementSumsQuery['tables'] = [];
  for (const entry of [...pool(round1, round1Totals).values()].sort((a, b) => compareText(keyId(a.key), keyId(b.key)))) {
    if (entry.patients < minPatients) continue;
    const tables = query.raters.map((_, r) => placementTable(histogramsOf(entry.values, r, query)));
    if (tables.some((t) => t === null)) continue;
    out.push({ key: entry.key, tables: tables.map((t) => ({ ...(t as PlacementTable) })) });
  }
  return out;
}

export interface AucOfRater {
  auc: number | null;
  delong: Estimate;
  clustered: Estimate;
}

export interface AucRow {
  pooled: boolean;
  node: string | null;
  key: Record<string, string>;
  suppressed: boolean;
  suppression: string | null;
  patients: number | null;
  /** The raters' grids: the numbers are exact at this score resolution. */
  grids: { lower: number; upper: number; bins: number }[];
  /** One per rater of the query. */
  aucs: AucOfRater[];
  /** Two raters: the first's AUC minus the second's, per case (paired DeLong) and patient-clustered (Obuchowski). */
  difference: { delong: Estimate & { p: number | null }; clustered: Estimate & { p: number | null } } | null;
  sites: string[];
  withheld: string[];
}

const strip = ({ value, lower, upper, method, reason }: Estimate): Estimate => ({ value, lower, upper, method, reason });

const NO_SUMS: PlacementSums = { clusters: 0, withPositives: 0, withNegatives: 0, s10: 0, s01: 0, s11: 0 };

function sumsOf(vector: readonly number[], rater: number): PlacementSums {
  const base = rater * PLACEMENT_SUM_FIELDS.length;
  return Object.fromEntries(PLACEMENT_SUM_FIELDS.map((f, i) => [f, vector[base + i]])) as unknown as PlacementSums;
}
function crossOf(vector: readonly number[]): CrossSums {
  const base = 2 * PLACEMENT_SUM_FIELDS.length;
  return Object.fromEntries(CROSS_SUM_FIELDS.map((f, i) => [f, vector[base + i]])) as unknown as CrossSums;
}

/** The AUC numbers of a row from its histograms and its round-2 vector (null: a rater with one class only). */
function statisticsOf(
  histogramValues: Record<string, number | number[]>,
  sumsVector: readonly number[] | null,
  query: AucQuery,
  level: number,
): Pick<AucRow, 'aucs' | 'difference'> {
  const histograms = query.raters.map((_, r) => histogramsOf(histogramValues, r, query));
  const tables = histograms.map((h) => placementTable(h));
  const aucs = histograms.map((h, r): AucOfRater => {
    const table = tables[r];
    const missing = h.positives.every((c) => c === 0) ? 'NO_POSITIVES' : 'NO_NEGATIVES';
    if (table === null) {
      const none = (method: string): Estimate => ({ value: null, lower: null, upper: null, method, reason: missing });
      return { auc: null, delong: none('delong'), clustered: none('obuchowski') };
    }
    // Without round 2 (no site sent sums for this row) the AUC and DeLong stand; the clustered interval does not.
    const p = pooledAuc(h, table, sumsVector === null ? NO_SUMS : sumsOf(sumsVector, r), level);
    return { auc: p.auc, delong: strip(p.delong), clustered: strip(p.clustered) };
  });
  if (query.raters.length !== 2 || tables.some((t) => t === null) || sumsVector === null) return { aucs, difference: null };
  const input = {
    histogramsA: histograms[0],
    histogramsB: histograms[1],
    tableA: tables[0] as PlacementTable,
    tableB: tables[1] as PlacementTable,
    sumsA: sumsOf(sumsVector, 0),
    sumsB: sumsOf(sumsVector, 1),
    cross: crossOf(sumsVector),
  };
  const delong = pooledAucDifference(input, { clustered: false, level });
  const clustered = pooledAucDifference(input, { clustered: true, level });
  return { aucs, difference: { delong: { ...strip(delong.difference), p: delong.p }, clustered: { ...strip(clustered.difference), p: clustered.p } } };
}

/**
 * The answer rows: each site's groups (round 1's histograms with round 2's `siteSums`), then the pooled rows (pooled
 * histograms with the summed `sums`). A pooled row with fewer than `minPatients` patients is suppressed (SMALL_GROUP),
 * as a site's own group would be; one every site withheld is ALL_SITES_WITHHELD.
 */
export function aucAnswerRows(
  round1: readonly AucContribution[],
  round2: readonly AucContribution[],
  query: AucQuery,
  /** `totals`: each round's pooled totals from a secure round, when its site rows were not released. */
  options: { minPatients: number; level?: number; totals?: { round1?: readonly PooledTotal[]; round2?: readonly PooledTotal[] } },
): AucRow[] {
  const level = options.level ?? 0.95;
  const grids = query.grids.map((g) => ({ lower: g.lower, upper: g.upper, bins: g.bins }));
  const siteSums = new Map<string, number[]>();
  for (const c of round2) for (const g of c.groups) siteSums.set(`${c.site} ${keyId(g.key)}`, g.values.siteSums as number[]);
  const rows: AucRow[] = [];
  for (const c of [...round1].sort((a, b) => compareText(a.site, b.site))) {
    const own: AucRow[] = [];
    for (const g of c.groups) {
      own.push({
        pooled: false,
        node: c.site,
        key: { ...g.key },
        suppressed: false,
        suppression: null,
        patients: g.patients,
        grids,
        ...statisticsOf(g.values, siteSums.get(`${c.site} ${keyId(g.key)}`) ?? null, query, level),
        sites: [c.site],
        withheld: [],
      });
    }
    for (const g of c.suppressed) {
      own.push({
        pooled: false,
        node: c.site,
        key: { ...g.key },
        suppressed: true,
        suppression: g.reason,
        patients: null,
        grids,
        aucs: [],
        difference: null,
        sites: [c.site],
        withheld: [],
      });
    }
    rows.push(...own.sort((a, b) => compareText(keyId(a.key), keyId(b.key))));
  }
  const sums = pool(round2, options.totals?.round2);
  for (const entry of [...pool(round1, options.totals?.round1).values()].sort((a, b) => compareText(keyId(a.key), keyId(b.key)))) {
    const released = entry.sites.size > 0;
    const small = released && entry.patients < options.minPatients;
    // Round 2's sums must cover exactly round 1's sites, or the clustered variance would mix two populations.
    const second = sums.get(keyId(entry.key));
    const incomplete = released && !small && second !== undefined && [...second.sites].sort().join() !== [...entry.sites].sort().join();
    const shown = released && !small && !incomplete;
    const row: AucRow = {
      pooled: true,
      node: null,
      key: entry.key,
      suppressed: !shown,
      suppression: !released ? 'ALL_SITES_WITHHELD' : small ? 'SMALL_GROUP' : incomplete ? 'ROUND_TWO_INCOMPLETE' : null,
      patients: shown ? entry.patients : null,
      grids,
      aucs: [],
      difference: null,
      sites: [...entry.sites].sort(compareText),
      withheld: [...entry.withheld].sort(compareText),
    };
    if (shown) Object.assign(row, statisticsOf(entry.values, second?.values.sums ?? null, query, level));
    rows.push(row);
  }
  return rows;
}
