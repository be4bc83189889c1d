import { addCluster, emptyCount, mergeCounts, type ClusteredCount } from './proportion';

/**
 * Mergeable sufficient statistics: what a node can send instead of patient rows, such that metrics computed
 * from the merged statistics equal the metrics of the pooled data (test/stats/sufficient.test.ts proves it).
 *
 * Round 1: per-class score histograms (exact scores as keys: AUC and DeLong are exact; a federation may round
 * probabilities to 1e-7 first, moving the AUC by less than 1e-6) and clustered counts of each proportion.
 * Round 2: given the merged histogram, each node's per-patient placement sums for Obuchowski's variance.
 */
export interface ScoreHistogram {
  /** score -> number of positive cases with it. */
  positives: Map<number, number>;
  negatives: Map<number, number>;
}

export function histogramOf(scores: ArrayLike<number>, positive: ArrayLike<boolean>): ScoreHistogram {
  const h: ScoreHistogram = { positives: new Map(), negatives: new Map() };
  for (let i = 0; i < scores.length; i++) {
    const bins = positive[i] ? h.positives : h.negatives;
    bins.set(scores[i], (bins.get(scores[i]) ?? 0) + 1);
  }
  return h;
}

export function mergeHistograms(a: ScoreHistogram, b: ScoreHistogram): ScoreHistogram {
  const merge = (x: Map<number, number>, y: Map<number, number>) => {
    const out = new Map(x);
    for (const [s, n] of y) out.set(s, (out.get(s) ?? 0) + n);
    return out;
  };
  return { positives: merge(a.positives, b.positives), negatives: merge(a.negatives, b.negatives) };
}

/** For every score, the placements a positive and a negative with that score have against the other class. */
export interface PlacementTable {
  auc: number;
  m: number;
  n: number;
  /** score -> (negatives below + half the negatives at it) / n. */
  v10: Map<number, number>;
  /** score -> (positives above + half the positives at it) / m. */
  v01: Map<number, number>;
}

export function placementTable(h: ScoreHistogram): PlacementTable | null {
  let m = 0;
  let n = 0;
  for (const c of h.positives.values()) m += c;
  for (const c of h.negatives.values()) n += c;
  if (m === 0 || n === 0) return null;
  const scores = [...new Set([...h.positives.keys(), ...h.negatives.keys()])].sort((a, b) => a - b);
  const v10 = new Map<number, number>();
  const v01 = new Map<number, number>();
  let negativesBelow = 0;
  let positivesBelow = 0;
  let sum = 0;
  for (const s of scores) {
    const p = h.positives.get(s) ?? 0;
    const q = h.negatives.get(s) ?? 0;
    const placement = (negativesBelow + q / 2) / n;
    v10.set(s, placement);
    v01.set(s, (m - positivesBelow - p + p / 2) / m);
    sum += p * placement;
    negativesBelow += q;
    positivesBelow += p;
  }
  return { auc: sum / m, m, n, v10, v01 };
}

/** DeLong's variance from the histogram alone: exactly the variance computed from the pooled cases. */
export function delongVarianceOf(h: ScoreHistogram, table: PlacementTable): number | null {
  if (table.m < 2 || table.n < 2) return null;
  let s10 = 0;
  let s01 = 0;
  for (const [s, c] of h.positives) s10 += c * ((table.v10.get(s) as number) - table.auc) ** 2;
  for (const [s, c] of h.negatives) s01 += c * ((table.v01.get(s) as number) - table.auc) ** 2;
  return s10 / (table.m - 1) / table.m + s01 / (table.n - 1) / table.n;
}

/** Round 2: one node's per-patient placement sums (Obuchowski), against the merged placement table. */
export interface ClusterSums {
  clusters: number;
  /** Clusters with at least one positive, and with at least one negative. */
  withPositives: number;
  withNegatives: number;
  s10: number;
  s01: number;
  s11: number;
}

export function clusterSumsOf(scores: ArrayLike<number>, positive: ArrayLike<boolean>, clusters: ArrayLike<string>, table: PlacementTable): ClusterSums {
  const per = new Map<string, { v10: number; m: number; v01: number; n: number }>();
  for (let i = 0; i < scores.length; i++) {
    const s = per.get(clusters[i]) ?? { v10: 0, m: 0, v01: 0, n: 0 };
    if (positive[i]) {
      s.v10 += table.v10.get(scores[i]) as number;
      s.m++;
    } else {
      s.v01 += table.v01.get(scores[i]) as number;
      s.n++;
    }
    per.set(clusters[i], s);
  }
  const out: ClusterSums = { clusters: per.size, withPositives: 0, withNegatives: 0, s10: 0, s01: 0, s11: 0 };
  for (const s of per.values()) {
    if (s.m > 0) out.withPositives++;
    if (s.n > 0) out.withNegatives++;
    const a = s.v10 - s.m * table.auc;
    const b = s.v01 - s.n * table.auc;
    out.s10 += a * a;
    out.s01 += b * b;
    out.s11 += a * b;
  }
  return out;
}

export const mergeClusterSums = (a: ClusterSums, b: ClusterSums): ClusterSums => ({
  clusters: a.clusters + b.clusters,
  withPositives: a.withPositives + b.withPositives,
  withNegatives: a.withNegatives + b.withNegatives,
  s10: a.s10 + b.s10,
  s01: a.s01 + b.s01,
  s11: a.s11 + b.s11,
});

export function obuchowskiVarianceOf(sums: ClusterSums, table: PlacementTable): number | null {
  if (sums.withPositives < 2 || sums.withNegatives < 2) return null;
  const k10 = sums.withPositives / (sums.withPositives - 1);
  const k01 = sums.withNegatives / (sums.withNegatives - 1);
  const k = sums.clusters / (sums.clusters - 1);
  return (k10 * sums.s10) / table.m ** 2 + (k01 * sums.s01) / table.n ** 2 + (2 * k * sums.s11) / (table.m * table.n);
}

/** The clustered counts of one proportion over a node's patients (see proportion.ts), mergeable by addition. */
export function clusteredCountOf(successes: ArrayLike<boolean>, included: ArrayLike<boolean>, clusters: ArrayLike<string>): ClusteredCount {
  const per = new Map<string, [number, number]>();
  for (let i = 0; i < successes.length; i++) {
    if (!included[i]) continue;
    const c = per.get(clusters[i]) ?? [0, 0];
    c[0] += successes[i] ? 1 : 0;
    c[1]++;
    per.set(clusters[i], c);
  }
  let count = emptyCount();
  for (const [x, n] of per.values()) count = addCluster(count, x, n);
  return count;
}

export { mergeCounts };
