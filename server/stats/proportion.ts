import { normalQuantile } from './normal';
import { undefinedEstimate, type Estimate, type UndefinedReason } from './estimate';

/**
 * A proportion's sufficient statistics over clusters (patients): the totals and the cluster-level sums of
 * squares the clustered variance needs. Mergeable by addition, so nodes can pool them without patient rows.
 */
export interface ClusteredCount {
  clusters: number;
  x: number;
  n: number;
  /** Sum over clusters of x_i^2, x_i * n_i and n_i^2. */
  xx: number;
  xn: number;
  nn: number;
}

export const emptyCount = (): ClusteredCount => ({ clusters: 0, x: 0, n: 0, xx: 0, xn: 0, nn: 0 });

/** Adds one cluster's x successes of n (a cluster with n = 0 does not count). */
export function addCluster(c: ClusteredCount, x: number, n: number): ClusteredCount {
  if (n === 0) return c;
  return { clusters: c.clusters + 1, x: c.x + x, n: c.n + n, xx: c.xx + x * x, xn: c.xn + x * n, nn: c.nn + n * n };
}

export const mergeCounts = (a: ClusteredCount, b: ClusteredCount): ClusteredCount => ({
  clusters: a.clusters + b.clusters,
  x: a.x + b.x,
  n: a.n + b.n,
  xx: a.xx + b.xx,
  xn: a.xn + b.xn,
  nn: a.nn + b.nn,
});

const zFor = (level: number): number => normalQuantile(1 - (1 - level) / 2);

/** Wilson score interval (as statsmodels' proportion_confint(method="wilson")). */
export function wilson(x: number, n: number, level = 0.95, reason: UndefinedReason = 'NO_CASES'): Estimate {
  if (n <= 0) return undefinedEstimate('wilson', reason);
  const z = zFor(level);
  const p = x / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
  return { value: p, lower: Math.max(0, center - half), upper: Math.min(1, center + half), method: 'wilson', reason: null };
}

/**
 * Wilson interval with the sample size deflated by the design effect of clustering: the ratio estimator's
 * cluster variance, I/(I-1) * sum_i (x_i - p n_i)^2 / n^2, over the binomial variance p(1-p)/n (Rao & Scott
 * 1992). Joints of one patient are correlated, so this is the default; with one patient there is no estimate of
 * that correlation, so no interval (ONE_CLUSTER).
 */
export function clusteredWilson(c: ClusteredCount, level = 0.95, reason: UndefinedReason = 'NO_CASES'): Estimate {
  if (c.n <= 0) return undefinedEstimate('wilson-clustered', reason);
  if (c.clusters < 2) return undefinedEstimate('wilson-clustered', 'ONE_CLUSTER');
  const p = c.x / c.n;
  const squares = Math.max(0, c.xx - 2 * p * c.xn + p * p * c.nn);
  const clusterVariance = (c.clusters / (c.clusters - 1)) * (squares / (c.n * c.n));
  const binomialVariance = (p * (1 - p)) / c.n;
  // At p = 0 or 1 the data cannot show the clustering; assume the worst, one observation per patient (design
  // effect = mean cluster size). Clustering never makes an interval narrower than independence: floor at 1.
  const designEffect = binomialVariance > 0 ? Math.max(1, clusterVariance / binomialVariance) : Math.max(1, c.n / c.clusters);
  const effectiveN = c.n / designEffect;
  const interval = wilson(p * effectiveN, effectiveN, level, reason);
  return { ...interval, value: p, method: 'wilson-clustered' };
}
