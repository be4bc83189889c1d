import type { Estimate } from '../stats/estimate';
import { clusteredIntervalVariance } from '../stats/auc';
import { normalQuantile, twoSidedP } from '../stats/normal';

/**
 * The AUC across sites in two rounds, exact at a declared score grid.
 *
 * Round 1: each node bins its scores on the grid the query declares and sends per-class histograms (dense vectors,
 * so they can be secure-summed); the hub adds them. The pooled histograms alone give the AUC, every case's
 * placement (a positive's share of negatives below it, ties one half; a negative's share of positives above it) and
 * DeLong's variance. Round 2: the task carries the pooled placement table; each node sums its patients' placements
 * into the handful of numbers Obuchowski's clustered variance needs (and, for two raters on the same cases, the
 * cross-terms of the paired DeLong and Obuchowski covariances). Those sums add up across sites because a patient
 * belongs to one site, so the hub's numbers are the single-node numbers on the union of the data with its scores
 * binned the same way (stats/auc.ts on the bin indices: the AUC depends on the order of scores only).
 */

export class AucRoundError extends Error {
  constructor(
    readonly code: 'BAD_GRID' | 'GRID_TOO_FINE' | 'SCORE_OFF_GRID' | 'LENGTH_MISMATCH' | 'BAD_TABLE',
    message: string,
  ) {
    super(message);
    this.name = 'AucRoundError';
  }
}

/** `bins` equal bins over [lower, upper]; a score at `upper` falls in the last bin. */
export interface ScoreGrid {
  lower: number;
  upper: number;
  bins: number;
}

/** The finest grid a node allows when no policy says otherwise: 1000 bins, coarse enough that no bin pins a case in a study of hundreds. */
export const DEFAULT_MAX_SCORE_BINS = 1000;

/** Checks a declared grid against the node's finest allowed one; throws AucRoundError. */
export function checkScoreGrid(grid: ScoreGrid, maxScoreBins = DEFAULT_MAX_SCORE_BINS): ScoreGrid {
  if (!Number.isFinite(grid.lower) || !Number.isFinite(grid.upper) || !(grid.lower < grid.upper)) {
    throw new AucRoundError('BAD_GRID', 'a score grid needs finite lower < upper');
  }
  if (!Number.isInteger(grid.bins) || grid.bins < 2) throw new AucRoundError('BAD_GRID', 'a score grid has a whole number of bins, at least 2');
  if (grid.bins > maxScoreBins) throw new AucRoundError('GRID_TOO_FINE', `this node allows at most ${maxScoreBins} score bins (asked ${grid.bins})`);
  return grid;
}

/** The bin of a score; a score outside [lower, upper] (or NaN) is an error, never clamped silently. */
export function binOf(score: number, grid: ScoreGrid): number {
  if (!(score >= grid.lower && score <= grid.upper)) throw new AucRoundError('SCORE_OFF_GRID', `score ${score} is outside [${grid.lower}, ${grid.upper}]`);
  return Math.min(grid.bins - 1, Math.floor(((score - grid.lower) / (grid.upper - grid.lower)) * grid.bins));
}

/** Round 1: per-class counts per bin. */
export interface ScoreHistograms {
  positives: number[];
  negatives: number[];
}

/** One case of one rater, binned: its patient (any node-local number), its class and its bin. */
export interface BinnedCase {
  cluster: number;
  positive: boolean;
  bin: number;
}

export function scoreHistograms(cases: readonly BinnedCase[], bins: number): ScoreHistograms {
  const h: ScoreHistograms = { positives: new Array<number>(bins).fill(0), negatives: new Array<number>(bins).fill(0) };
  for (const c of cases) {
    if (!Number.isInteger(c.bin) || c.bin < 0 || c.bin >= bins) throw new AucRoundError('SCORE_OFF_GRID', `bin ${c.bin} is not one of the grid's ${bins}`);
    (c.positive ? h.positives : h.negatives)[c.bin]++;
  }
  return h;
}

/** The hub's pooled histograms: the element-wise sum of the sites' (or the unmasked secure sum, which is the same). */
export function addHistograms(list: readonly ScoreHistograms[]): ScoreHistograms {
  if (list.length === 0) throw new AucRoundError('LENGTH_MISMATCH', 'nothing to add');
  const bins = list[0].positives.length;
  const out: ScoreHistograms = { positives: new Array<number>(bins).fill(0), negatives: new Array<number>(bins).fill(0) };
  for (const h of list) {
    if (h.positives.length !== bins || h.negatives.length !== bins) throw new AucRoundError('LENGTH_MISMATCH', 'histograms on different grids');
    for (let b = 0; b < bins; b++) {
      out.positives[b] += h.positives[b];
      out.negatives[b] += h.negatives[b];
    }
  }
  return out;
}

/**
 * What round 2 sends to every node: per bin, the placement of a positive (v10) and of a negative (v01) scoring in
 * it, with the pooled AUC and class sizes. It describes the pooled data only, never one site's.
 */
export interface PlacementTable {
  auc: number;
  m: number;
  n: number;
  v10: number[];
  v01: number[];
}

export function placementTable(h: ScoreHistograms): PlacementTable | null {
  const bins = h.positives.length;
  const m = h.positives.reduce((s, c) => s + c, 0);
  const n = h.negatives.reduce((s, c) => s + c, 0);
  if (m === 0 || n === 0) return null;
  const v10 = new Array<number>(bins).fill(0);
  const v01 = new Array<number>(bins).fill(0);
  let negativesBelow = 0;
  let positivesBelow = 0;
  let sum = 0;
  for (let b = 0; b < bins; b++) {
    const p = h.positives[b];
    const q = h.negatives[b];
    v10[b] = (negativesBelow + q / 2) / n;
    v01[b] = (m - positivesBelow - p / 2) / m;
    sum += p * v10[b];
    negativesBelow += q;
    positivesBelow += p;
  }
  return { auc: sum / m, m, n, v10, v01 };
}

/** Checks a placement table received in a task (a node uses it to compute round 2); throws AucRoundError. */
export function checkPlacementTable(table: PlacementTable, bins: number): PlacementTable {
  const unit = (v: unknown) => typeof v === 'number' && v >= 0 && v <= 1;
  if (!Array.isArray(table.v10) || !Array.isArray(table.v01) || table.v10.length !== bins || table.v01.length !== bins) {
    throw new AucRoundError('BAD_TABLE', `a placement table has ${bins} placements per class`);
  }
  if (!unit(table.auc) || !table.v10.every(unit) || !table.v01.every(unit)) throw new AucRoundError('BAD_TABLE', 'placements and the AUC lie in [0, 1]');
  if (!Number.isSafeInteger(table.m) || !Number.isSafeInteger(table.n) || table.m < 1 || table.n < 1) {
    throw new AucRoundError('BAD_TABLE', 'a placement table counts at least one case per class');
  }
  return table;
}

/** DeLong's variance from the pooled histograms alone: the placements' sample variances over m and n. */
export function delongVarianceOf(h: ScoreHistograms, table: PlacementTable): number | null {
  if (table.m < 2 || table.n < 2) return null;
  let s10 = 0;
  let s01 = 0;
  for (let b = 0; b < h.positives.length; b++) {
    s10 += h.positives[b] * (table.v10[b] - table.auc) ** 2;
    s01 += h.negatives[b] * (table.v01[b] - table.auc) ** 2;
  }
  return s10 / (table.m - 1) / table.m + s01 / (table.n - 1) / table.n;
}

/**
 * Round 2 of one rater at one node: over its patients k, with x10_k = Σ placements of k's positives − m_k·AUC and
 * x01_k likewise for negatives, the sums Σ x10², Σ x01², Σ x10·x01 and the patient counts Obuchowski's small-sample
 * factors need. Nothing per patient leaves.
 */
export interface PlacementSums {
  clusters: number;
  withPositives: number;
  withNegatives: number;
  s10: number;
  s01: number;
  s11: number;
}

/**
 * Round 2 of two raters on the same cases (a model against a reader): per case, the centred placements' products
 * (d10 over positives, d01 over negatives: paired DeLong's covariances), and per patient the cross-products of the
 * two raters' centred sums (c10, c01, and c11 = Σ x10·y01 + y10·x01: Obuchowski's covariance).
 */
export interface CrossSums {
  d10: number;
  d01: number;
  c10: number;
  c01: number;
  c11: number;
}

/** Field order of the round-2 vectors on the wire (and in a secure sum). */
export const PLACEMENT_SUM_FIELDS = ['clusters', 'withPositives', 'withNegatives', 's10', 's01', 's11'] as const;
export const CROSS_SUM_FIELDS = ['d10', 'd01', 'c10', 'c01', 'c11'] as const;

interface PatientSums {
  v10: number;
  m: number;
  v01: number;
  n: number;
}

function perPatient(cases: readonly BinnedCase[], table: PlacementTable): Map<number, PatientSums> {
  const per = new Map<number, PatientSums>();
  for (const c of cases) {
    if (!Number.isInteger(c.bin) || c.bin < 0 || c.bin >= table.v10.length)
      throw new AucRoundError('SCORE_OFF_GRID', `bin ${c.bin} is not on the table's grid`);
    const s = per.get(c.cluster) ?? { v10: 0, m: 0, v01: 0, n: 0 };
    if (c.positive) {
      s.v10 += table.v10[c.bin];
      s.m++;
    } else {
      s.v01 += table.v01[c.bin];
      s.n++;
    }
    per.set(c.cluster, s);
  }
  return per;
}

export function placementSums(cases: readonly BinnedCase[], table: PlacementTable): PlacementSums {
  const out: PlacementSums = { clusters: 0, withPositives: 0, withNegatives: 0, s10: 0, s01: 0, s11: 0 };
  for (const s of perPatient(cases, table).values()) {
    out.clusters++;
    if (s.m > 0) out.withPositives++;
    if (s.n > 0) out.withNegatives++;
    const x10 = s.v10 - s.m * table.auc;
    const x01 = s.v01 - s.n * table.auc;
    out.s10 += x10 * x10;
    out.s01 += x01 * x01;
    out.s11 += x10 * x01;
  }
  return out;
}

/** Two raters' binned cases, case by case (the same case at the same index), against their own pooled tables. */
export function crossSums(a: readonly BinnedCase[], b: readonly BinnedCase[], tableA: PlacementTable, tableB: PlacementTable): CrossSums {
  if (a.length !== b.length) throw new AucRoundError('LENGTH_MISMATCH', 'paired raters rate the same cases');
  const out: CrossSums = { d10: 0, d01: 0, c10: 0, c01: 0, c11: 0 };
  for (let i = 0; i < a.length; i++) {
    if (a[i].cluster !== b[i].cluster || a[i].positive !== b[i].positive) throw new AucRoundError('LENGTH_MISMATCH', `case ${i} differs between the raters`);
    if (a[i].positive) out.d10 += (tableA.v10[a[i].bin] - tableA.auc) * (tableB.v10[b[i].bin] - tableB.auc);
    else out.d01 += (tableA.v01[a[i].bin] - tableA.auc) * (tableB.v01[b[i].bin] - tableB.auc);
  }
  const pa = perPatient(a, tableA);
  const pb = perPatient(b, tableB);
  for (const [k, sa] of pa) {
    const sb = pb.get(k) as PatientSums;
    const x10 = sa.v10 - sa.m * tableA.auc;
    const x01 = sa.v01 - sa.n * tableA.auc;
    const y10 = sb.v10 - sb.m * tableB.auc;
    const y01 = sb.v01 - sb.n * tableB.auc;
    out.c10 += x10 * y10;
    out.c01 += x01 * y01;
    out.c11 += x10 * y01 + y10 * x01;
  }
  return out;
}

export function addPlacementSums(list: readonly PlacementSums[]): PlacementSums {
  const out: PlacementSums = { clusters: 0, withPositives: 0, withNegatives: 0, s10: 0, s01: 0, s11: 0 };
  for (const s of list) for (const f of PLACEMENT_SUM_FIELDS) out[f] += s[f];
  return out;
}

export function addCrossSums(list: readonly CrossSums[]): CrossSums {
  const out: CrossSums = { d10: 0, d01: 0, c10: 0, c01: 0, c11: 0 };
  for (const s of list) for (const f of CROSS_SUM_FIELDS) out[f] += s[f];
  return out;
}

/** Obuchowski's variance from the pooled sums (stats/auc.ts obuchowskiVariance on the union). */
export function obuchowskiVarianceOf(sums: PlacementSums, table: PlacementTable): number | null {
  if (sums.withPositives < 2 || sums.withNegatives < 2) return null;
  const k10 = sums.withPositives / (sums.withPositives - 1);
  const k01 = sums.withNegatives / (sums.withNegatives - 1);
  const k = sums.clusters / (sums.clusters - 1);
  return (k10 * sums.s10) / table.m ** 2 + (k01 * sums.s01) / table.n ** 2 + (2 * k * sums.s11) / (table.m * table.n);
}

const interval = (value: number, variance: number, level: number, method: string): Estimate => {
  const half = normalQuantile(1 - (1 - level) / 2) * Math.sqrt(variance);
  return { value, lower: Math.max(0, value - half), upper: Math.min(1, value + half), method, reason: null };
};

/** The pooled AUC with its DeLong interval (round 1 alone) and its patient-clustered interval (with round 2). */
export interface PooledAuc {
  auc: number;
  delong: Estimate & { variance: number | null };
  clustered: Estimate & { variance: number | null };
}

/** As stats/auc.ts aucDelong and aucClustered on the union: the clustered interval floored at DeLong's variance. */
export function pooledAuc(h: ScoreHistograms, table: PlacementTable, sums: PlacementSums, level = 0.95): PooledAuc {
  const dv = delongVarianceOf(h, table);
  const delong =
    dv === null
      ? { value: table.auc, lower: null, upper: null, method: 'delong', reason: 'ONE_CLASS' as const, variance: null }
      : { ...interval(table.auc, dv, level, 'delong'), variance: dv };
  const ov = obuchowskiVarianceOf(sums, table);
  const clustered =
    ov === null
      ? { value: table.auc, lower: null, upper: null, method: 'obuchowski', reason: 'ONE_CLUSTER' as const, variance: null }
      : { ...interval(table.auc, clusteredIntervalVariance(ov, dv), level, 'obuchowski'), variance: ov };
  return { auc: table.auc, delong, clustered };
}

/** A paired comparison of two raters' pooled AUCs: the difference a − b, its interval and two-sided p. */
export interface PooledAucDifference {
  aucA: number;
  aucB: number;
  difference: Estimate;
  p: number | null;
}

function difference(
  aucA: number,
  aucB: number,
  variance: number | null,
  level: number,
  method: string,
  missing: 'ONE_CLASS' | 'ONE_CLUSTER',
): PooledAucDifference {
  const value = aucA - aucB;
  if (variance === null) return { aucA, aucB, difference: { value: null, lower: null, upper: null, method, reason: missing }, p: null };
  if (!(variance > 0)) return { aucA, aucB, difference: { value, lower: null, upper: null, method, reason: 'ZERO_VARIANCE' }, p: null };
  const half = normalQuantile(1 - (1 - level) / 2) * Math.sqrt(variance);
  return { aucA, aucB, difference: { value, lower: value - half, upper: value + half, method, reason: null }, p: twoSidedP(value / Math.sqrt(variance)) };
}

/** Paired DeLong's variance of a − b from both raters' pooled histograms and the pooled per-case cross-products. */
export function pairedDelongVarianceOf(ha: ScoreHistograms, hb: ScoreHistograms, ta: PlacementTable, tb: PlacementTable, cross: CrossSums): number | null {
  if (ta.m < 2 || ta.n < 2) return null;
  let a10 = 0;
  let a01 = 0;
  let b10 = 0;
  let b01 = 0;
  for (let i = 0; i < ha.positives.length; i++) {
    a10 += ha.positives[i] * (ta.v10[i] - ta.auc) ** 2;
    a01 += ha.negatives[i] * (ta.v01[i] - ta.auc) ** 2;
  }
  for (let i = 0; i < hb.positives.length; i++) {
    b10 += hb.positives[i] * (tb.v10[i] - tb.auc) ** 2;
    b01 += hb.negatives[i] * (tb.v01[i] - tb.auc) ** 2;
  }
  return (a10 + b10 - 2 * cross.d10) / (ta.m - 1) / ta.m + (a01 + b01 - 2 * cross.d01) / (ta.n - 1) / ta.n;
}

/** Obuchowski's covariance of the two raters' AUCs from the pooled cross sums (stats/auc.ts obuchowskiCovariance). */
export function obuchowskiCovarianceOf(sums: PlacementSums, cross: CrossSums, table: PlacementTable): number | null {
  if (sums.withPositives < 2 || sums.withNegatives < 2) return null;
  const k10 = sums.withPositives / (sums.withPositives - 1);
  const k01 = sums.withNegatives / (sums.withNegatives - 1);
  const k = sums.clusters / (sums.clusters - 1);
  return (k10 * cross.c10) / table.m ** 2 + (k01 * cross.c01) / table.n ** 2 + (k * cross.c11) / (table.m * table.n);
}

/**
 * The paired comparison as the node's `compare` makes it (stats/compare.ts): per case, paired DeLong; clustered,
 * var(a) + var(b) − 2 cov(a, b) by Obuchowski, floored at the paired DeLong variance.
 */
export function pooledAucDifference(
  input: {
    histogramsA: ScoreHistograms;
    histogramsB: ScoreHistograms;
    tableA: PlacementTable;
    tableB: PlacementTable;
    sumsA: PlacementSums;
    sumsB: PlacementSums;
    cross: CrossSums;
  },
  options: { clustered: boolean; level?: number },
): PooledAucDifference {
  const level = options.level ?? 0.95;
  const { tableA, tableB } = input;
  const delong = pairedDelongVarianceOf(input.histogramsA, input.histogramsB, tableA, tableB, input.cross);
  if (!options.clustered) return difference(tableA.auc, tableB.auc, delong, level, 'delong-paired', 'ONE_CLASS');
  const va = obuchowskiVarianceOf(input.sumsA, tableA);
  const vb = obuchowskiVarianceOf(input.sumsB, tableB);
  const cab = obuchowskiCovarianceOf(input.sumsA, input.cross, tableA);
  const variance = va === null || vb === null || cab === null ? null : clusteredIntervalVariance(va + vb - 2 * cab, delong);
  return difference(tableA.auc, tableB.auc, variance, level, 'obuchowski-paired', 'ONE_CLUSTER');
}
