import { argsortFloat64 } from './argsort';
import { none, some, undefinedEstimate, type Estimate, type Maybe } from './estimate';
import { normalQuantile, twoSidedP } from './normal';

/**
 * Placements of the fast DeLong algorithm (Sun & Xu 2014): for each positive, the share of negatives it
 * outscores (ties count one half), V10; for each negative, the share of positives that outscore it, V01. AUC is
 * the mean of either. One radix argsort and a linear pass; Sun & Xu use midranks, which give the same numbers
 * (test/stats/reference).
 */
export interface Placements {
  auc: number;
  v10: Float64Array;
  v01: Float64Array;
}

export function placements(positives: ArrayLike<number>, negatives: ArrayLike<number>): Placements | null {
  const m = positives.length;
  const n = negatives.length;
  if (m === 0 || n === 0) return null;
  // One pass over all scores in sorted order (a radix argsort): within a run of equal scores holding p positives
  // and q negatives, each positive places at (negatives below + q/2)/n and each negative at
  // (m - positives below - p/2)/m.
  const scores = new Float64Array(m + n);
  for (let i = 0; i < m; i++) scores[i] = positives[i];
  for (let j = 0; j < n; j++) scores[m + j] = negatives[j];
  if (scores.some(Number.isNaN)) throw new RangeError('Scores must be numbers (NaN found)');
  const order = argsortFloat64(scores);
  const v10 = new Float64Array(m);
  const v01 = new Float64Array(n);
  let negativesBelow = 0;
  let positivesBelow = 0;
  let sum = 0;
  for (let start = 0; start < order.length;) {
    let end = start;
    let p = 0;
    while (end < order.length && scores[order[end]] === scores[order[start]]) {
      if (order[end] < m) p++;
      end++;
    }
    const q = end - start - p;
    const positivePlacement = (negativesBelow + q / 2) / n;
    const negativePlacement = (m - positivesBelow - p / 2) / m;
    for (let k = start; k < end; k++) {
      const index = order[k];
      if (index < m) {
        v10[index] = positivePlacement;
        sum += positivePlacement;
      } else {
        v01[index - m] = negativePlacement;
      }
    }
    negativesBelow += q;
    positivesBelow += p;
    start = end;
  }
  return { auc: sum / m, v10, v01 };
}

const mean = (a: Float64Array): number => a.reduce((s, v) => s + v, 0) / a.length;
function covariance(a: Float64Array, b: Float64Array): number {
  const ma = mean(a);
  const mb = mean(b);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - ma) * (b[i] - mb);
  return s / (a.length - 1);
}

/** Empirical AUC (ties one half) or why there is none. */
export function auc(positives: ArrayLike<number>, negatives: ArrayLike<number>): Maybe {
  if (positives.length === 0) return none('NO_POSITIVES');
  if (negatives.length === 0) return none('NO_NEGATIVES');
  return some((placements(positives, negatives) as Placements).auc);
}

const interval = (value: number, variance: number, level: number, method: string): Estimate => {
  const half = normalQuantile(1 - (1 - level) / 2) * Math.sqrt(variance);
  // Like pROC, clipped to [0, 1].
  return { value, lower: Math.max(0, value - half), upper: Math.min(1, value + half), method, reason: null };
};

/** DeLong (1988) variance of the empirical AUC: S10/m + S01/n with the placements' sample variances. */
export function delongVariance(p: Placements): number | null {
  if (p.v10.length < 2 || p.v01.length < 2) return null;
  return covariance(p.v10, p.v10) / p.v10.length + covariance(p.v01, p.v01) / p.v01.length;
}

export function aucDelong(positives: ArrayLike<number>, negatives: ArrayLike<number>, level = 0.95): Estimate & { variance: number | null } {
  if (positives.length === 0) return { ...undefinedEstimate('delong', 'NO_POSITIVES'), variance: null };
  if (negatives.length === 0) return { ...undefinedEstimate('delong', 'NO_NEGATIVES'), variance: null };
  const p = placements(positives, negatives) as Placements;
  const variance = delongVariance(p);
  if (variance === null) return { value: p.auc, lower: null, upper: null, method: 'delong', reason: 'ONE_CLASS', variance };
  return { ...interval(p.auc, variance, level, 'delong'), variance };
}

/**
 * Obuchowski (1997) variance of the AUC when cases are clustered (joints in patients): the placements summed per
 * cluster, with the cluster-level covariance of positives and negatives of one patient. `clusterOf` names the
 * cluster of each positive and each negative.
 */
export function obuchowskiVariance(p: Placements, positiveClusters: ArrayLike<string | number>, negativeClusters: ArrayLike<string | number>): number | null {
  return obuchowskiCovariance(p, p, positiveClusters, negativeClusters);
}

/**
 * Obuchowski's covariance of two AUCs on the same clustered cases (two raters' placements, cases in the same
 * order); with a = b it is the variance. The variance of a difference is var(a) + var(b) - 2 cov(a, b).
 */
export function obuchowskiCovariance(
  a: Placements,
  b: Placements,
  positiveClusters: ArrayLike<string | number>,
  negativeClusters: ArrayLike<string | number>,
): number | null {
  // Clusters to dense indices, then per-cluster sums in typed arrays (no per-case objects).
  const index = new Map<string | number, number>();
  const dense = (k: string | number) => {
    let i = index.get(k);
    if (i === undefined) index.set(k, (i = index.size));
    return i;
  };
  const pc = Uint32Array.from({ length: positiveClusters.length }, (_, i) => dense(positiveClusters[i]));
  const nc = Uint32Array.from({ length: negativeClusters.length }, (_, j) => dense(negativeClusters[j]));
  const clusters = index.size;
  const a10 = new Float64Array(clusters);
  const b10 = new Float64Array(clusters);
  const a01 = new Float64Array(clusters);
  const b01 = new Float64Array(clusters);
  const m = new Float64Array(clusters);
  const n = new Float64Array(clusters);
  for (let i = 0; i < pc.length; i++) {
    a10[pc[i]] += a.v10[i];
    b10[pc[i]] += b.v10[i];
    m[pc[i]]++;
  }
  for (let j = 0; j < nc.length; j++) {
    a01[nc[j]] += a.v01[j];
    b01[nc[j]] += b.v01[j];
    n[nc[j]]++;
  }
  // Obuchowski's small-sample factors: I10 (I01) counts the clusters holding at least one positive (negative);
  // with fewer than two of either, the positive (negative) term has no between-cluster variance to estimate.
  let i10 = 0;
  let i01 = 0;
  for (let k = 0; k < clusters; k++) {
    if (m[k] > 0) i10++;
    if (n[k] > 0) i01++;
  }
  if (i10 < 2 || i01 < 2) return null;
  const M = a.v10.length;
  const N = a.v01.length;
  let s10 = 0;
  let s01 = 0;
  let s11 = 0;
  for (let k = 0; k < clusters; k++) {
    const x10 = a10[k] - m[k] * a.auc;
    const y10 = b10[k] - m[k] * b.auc;
    const x01 = a01[k] - n[k] * a.auc;
    const y01 = b01[k] - n[k] * b.auc;
    s10 += x10 * y10;
    s01 += x01 * y01;
    s11 += x10 * y01 + y10 * x01;
  }
  return ((i10 / (i10 - 1)) * s10) / M / M + ((i01 / (i01 - 1)) * s01) / N / N + ((clusters / (clusters - 1)) * s11) / (M * N);
}

/**
 * The variance a clustered interval uses: the clustered variance, floored at the per-case one. Clustering can
 * only add uncertainty the per-case analysis ignores; an estimate below the per-case variance (negative
 * within-patient correlation, or sampling noise with few patients) would give a clustered interval narrower than
 * the unclustered one, which no analysis of correlated joints should claim. The clustered Wilson interval follows
 * the same rule through its design effect, floored at 1 (proportion.ts).
 */
export const clusteredIntervalVariance = (clustered: number, perCase: number | null): number => Math.max(clustered, perCase ?? 0);

/**
 * The AUC with its patient-clustered interval: Obuchowski's variance (`variance`), floored at DeLong's per-case
 * variance for the interval (clusteredIntervalVariance), so it is never narrower than the DeLong interval.
 */
export function aucClustered(
  positives: ArrayLike<number>,
  negatives: ArrayLike<number>,
  positiveClusters: ArrayLike<string | number>,
  negativeClusters: ArrayLike<string | number>,
  level = 0.95,
): Estimate & { variance: number | null } {
  if (positives.length === 0) return { ...undefinedEstimate('obuchowski', 'NO_POSITIVES'), variance: null };
  if (negatives.length === 0) return { ...undefinedEstimate('obuchowski', 'NO_NEGATIVES'), variance: null };
  const p = placements(positives, negatives) as Placements;
  const variance = obuchowskiVariance(p, positiveClusters, negativeClusters);
  if (variance === null) return { value: p.auc, lower: null, upper: null, method: 'obuchowski', reason: 'ONE_CLUSTER', variance };
  return { ...interval(p.auc, clusteredIntervalVariance(variance, delongVariance(p)), level, 'obuchowski'), variance };
}

/** ROC points at every distinct score, highest first, from (0, 0); as sklearn's roc_curve(drop_intermediate=False). */
export function rocCurve(positives: ArrayLike<number>, negatives: ArrayLike<number>): { fpr: number[]; tpr: number[]; thresholds: Array<number | null> } {
  const all = [...Array.from(positives, (s) => ({ s, pos: 1 })), ...Array.from(negatives, (s) => ({ s, pos: 0 }))].sort((a, b) => b.s - a.s);
  const fpr = [0];
  const tpr = [0];
  const thresholds: Array<number | null> = [null];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < all.length; i++) {
    if (all[i].pos) tp++;
    else fp++;
    if (i + 1 < all.length && all[i + 1].s === all[i].s) continue;
    fpr.push(negatives.length ? fp / negatives.length : 0);
    tpr.push(positives.length ? tp / positives.length : 0);
    thresholds.push(all[i].s);
  }
  return { fpr, tpr, thresholds };
}

/** DeLong's variance of the difference of two raters' AUCs on the same cases (placements in the same case order). */
export function pairedDelongVariance(a: Placements, b: Placements): number | null {
  if (a.v10.length < 2 || a.v01.length < 2) return null;
  return (
    (covariance(a.v10, a.v10) + covariance(b.v10, b.v10) - 2 * covariance(a.v10, b.v10)) / a.v10.length +
    (covariance(a.v01, a.v01) + covariance(b.v01, b.v01) - 2 * covariance(a.v01, b.v01)) / a.v01.length
  );
}

/**
 * Paired DeLong test of two raters' AUCs on the same cases (DeLong 1988; as pROC's roc.test(paired = TRUE)):
 * the difference, its z statistic and two-sided p-value, and a CI of the difference.
 */
export function pairedDelong(
  positivesA: ArrayLike<number>,
  negativesA: ArrayLike<number>,
  positivesB: ArrayLike<number>,
  negativesB: ArrayLike<number>,
  level = 0.95,
): { aucA: number; aucB: number; difference: Estimate; z: number | null; p: number | null } | null {
  const a = placements(positivesA, negativesA);
  const b = placements(positivesB, negativesB);
  if (!a || !b) return null;
  const variance = pairedDelongVariance(a, b);
  if (variance === null) return null;
  const difference = a.auc - b.auc;
  if (!(variance > 0)) {
    return {
      aucA: a.auc,
      aucB: b.auc,
      difference: { value: difference, lower: null, upper: null, method: 'delong-paired', reason: 'ZERO_VARIANCE' },
      z: null,
      p: null,
    };
  }
  const z = difference / Math.sqrt(variance);
  const half = normalQuantile(1 - (1 - level) / 2) * Math.sqrt(variance);
  return {
    aucA: a.auc,
    aucB: b.auc,
    difference: { value: difference, lower: difference - half, upper: difference + half, method: 'delong-paired', reason: null },
    z,
    p: twoSidedP(z),
  };
}
