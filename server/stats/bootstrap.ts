import type { Estimate } from './estimate';

/** xoshiro128** (Blackman & Vigna): a small, fast, seedable generator; the same seed gives the same resamples anywhere. */
export function seededRandom(seed: number): () => number {
  // splitmix32 expands the seed into the 128-bit state.
  let s = seed >>> 0;
  const next32 = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = next32();
  let b = next32();
  let c = next32();
  let d = next32();
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result / 4294967296;
  };
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

/**
 * Percentile interval of `statistic` over `replicates` resamples of whole clusters (patients) with replacement:
 * the cluster bootstrap keeps the correlation of one patient's joints. `statistic` gets, for each cluster index,
 * how many times the resample drew it, and returns null where the resample makes it undefined (skipped).
 */
/** Share of bootstrap replicates that may be undefined before the interval is withheld. */
export const MAX_DROPPED = 0.05;

export function clusterBootstrap(
  clusters: number,
  statistic: (weights: Uint32Array) => number | null,
  options: { replicates: number; seed: number; level: number },
): { lower: number | null; upper: number | null; replicates: number } {
  const random = seededRandom(options.seed);
  const values: number[] = [];
  const weights = new Uint32Array(clusters);
  for (let r = 0; r < options.replicates; r++) {
    weights.fill(0);
    for (let i = 0; i < clusters; i++) weights[Math.floor(random() * clusters)]++;
    const v = statistic(weights);
    if (v !== null && Number.isFinite(v)) values.push(v);
  }
  // Dropping replicates where the statistic is undefined conditions the interval on the data having, say,
  // positives: tolerable for a few, biased beyond (then no interval: FEW_CLUSTERS).
  if (values.length < options.replicates * (1 - MAX_DROPPED)) return { lower: null, upper: null, replicates: values.length };
  values.sort((x, y) => x - y);
  const alpha = (1 - options.level) / 2;
  return { lower: quantile(values, alpha), upper: quantile(values, 1 - alpha), replicates: values.length };
}

/** Type 7 quantile (linear interpolation; R's and numpy's default) of sorted values. */
export function quantile(sorted: number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

export const bootstrapEstimate = (value: number, ci: { lower: number | null; upper: number | null; replicates: number }): Estimate => ({
  value,
  lower: ci.lower,
  upper: ci.upper,
  method: `cluster-bootstrap-percentile(B=${ci.replicates})`,
  reason: ci.lower === null ? 'FEW_CLUSTERS' : null,
});
