import { none, some, undefinedEstimate, type Estimate, type Maybe } from './estimate';
import { normalQuantile, twoSidedP } from './normal';
import { midranks } from './ranks';

/**
 * Placements of Sun & Xu's fast DeLong algorithm (2014): for each positive, the share of negatives it outscores
 * (ties count one half), V10; for each negative, the share of positives that outscore it, V01. AUC is the mean of
 * either. O(n log n) through midranks of the pooled, positive and negative scores.
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
  const pooled = new Float64Array(m + n);
  for (let i = 0; i < m; i++) pooled[i] = positives[i];
  for (let j = 0; j < n; j++) pooled[m + j] = negatives[j];
  const z = midranks(pooled);
  const x = midranks(positives);
  const y = midranks(negatives);
  const v10 = new Float64Array(m);
  const v01 = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < m; i++) {
    v10[i] = (z[i] - x[i]) / n;
    sum += v10[i];
  }
  for (let j = 0; j < n; j++) v01[j] = 1 - (z[m + j] - y[j]) / m;
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
export function obuchowskiVariance(p: Placements, positiveClusters: ArrayLike<string>, negativeClusters: ArrayLike<string>): number | null {
  return obuchowskiCovariance(p, p, positiveClusters, negativeClusters);
}

/**
 * Obuchowski's covariance of two AUCs on the same clustered cases (two raters' placements, cases in the same
 * order); with a = b it is the variance. The variance of a difference is var(a) + var(b) - 2 cov(a, b).
 */
export function obuchowskiCovariance(a: Placements, b: Placements, positiveClusters: ArrayLike<string>, negativeClusters: ArrayLike<string>): number | null {
  const sums = new Map<string, { a10: number; b10: number; m: number; a01: number; b01: number; n: number }>();
  const at = (k: string) => {
    let s = sums.get(k);
    if (!s) sums.set(k, (s = { a10: 0, b10: 0, m: 0, a01: 0, b01: 0, n: 0 }));
    return s;
  };
  for (let i = 0; i < a.v10.length; i++) {
    const s = at(positiveClusters[i]);
    s.a10 += a.v10[i];
    s.b10 += b.v10[i];
    s.m++;
  }
  for (let j = 0; j < a.v01.length; j++) {
    const s = at(negativeClusters[j]);
    s.a01 += a.v01[j];
    s.b01 += b.v01[j];
    s.n++;
  }
  const clusters = sums.size;
  if (clusters < 2) return null;
  const M = a.v10.length;
  const N = a.v01.length;
  let s10 = 0;
  let s01 = 0;
  let s11 = 0;
  for (const s of sums.values()) {
    const a10 = s.a10 - s.m * a.auc;
    const b10 = s.b10 - s.m * b.auc;
    const a01 = s.a01 - s.n * a.auc;
    const b01 = s.b01 - s.n * b.auc;
    s10 += a10 * b10;
    s01 += a01 * b01;
    s11 += a10 * b01 + b10 * a01;
  }
  const k = clusters / (clusters - 1);
  return (k * s10) / M / M + (k * s01) / N / N + (k * s11) / (M * N);
}

export function aucClustered(
  positives: ArrayLike<number>,
  negatives: ArrayLike<number>,
  positiveClusters: ArrayLike<string>,
  negativeClusters: ArrayLike<string>,
  level = 0.95,
): Estimate & { variance: number | null } {
  if (positives.length === 0) return { ...undefinedEstimate('obuchowski', 'NO_POSITIVES'), variance: null };
  if (negatives.length === 0) return { ...undefinedEstimate('obuchowski', 'NO_NEGATIVES'), variance: null };
  const p = placements(positives, negatives) as Placements;
  const variance = obuchowskiVariance(p, positiveClusters, negativeClusters);
  if (variance === null) return { value: p.auc, lower: null, upper: null, method: 'obuchowski', reason: 'ONE_CLUSTER', variance };
  return { ...interval(p.auc, variance, level, 'obuchowski'), variance };
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
  if (!a || !b || a.v10.length < 2 || a.v01.length < 2) return null;
  const variance =
    (covariance(a.v10, a.v10) + covariance(b.v10, b.v10) - 2 * covariance(a.v10, b.v10)) / a.v10.length +
    (covariance(a.v01, a.v01) + covariance(b.v01, b.v01) - 2 * covariance(a.v01, b.v01)) / a.v01.length;
  const difference = a.auc - b.auc;
  if (!(variance > 0)) {
    return { aucA: a.auc, aucB: b.auc, difference: { value: difference, lower: null, upper: null, method: 'delong-paired', reason: 'ZERO_VARIANCE' }, z: null, p: null };
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
