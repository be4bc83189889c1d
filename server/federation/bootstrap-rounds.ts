import { MAX_DROPPED, quantile } from '../stats/bootstrap';
import type { Estimate, UndefinedReason } from '../stats/estimate';
import type { JsonValue } from './canonical-json';
import { ComputeError, parseBinaryCountsQuery } from './compute-query';
import { MAX_REPLICATES } from './poisson-bootstrap';
import type { BinaryCountsQuery } from './task-kinds';

/**
 * The Poisson cluster bootstrap across sites (BOOTSTRAP_SUMS): each node weighs every patient by its Poisson(1)
 * weights (poisson-bootstrap.ts, keyed by the node's secret, so the hub never learns them) and releases per group the
 * weighted confusion counts of every replicate. Counts times whole weights are whole numbers, so the pooled
 * replicates are exactly those of the union weighted the same way, and so are the percentile intervals of every
 * statistic of the confusion counts, F1 and Youden's J included (which have no closed-form clustered interval).
 */

export interface BootstrapQuery extends BinaryCountsQuery {
  /** The task's seed: the same patient gets the same weights in every task with this seed. */
  seed: string;
  replicates: number;
}

const bad = (field: string, what: string): never => {
  throw new ComputeError('BAD_QUERY', `${field}: ${what}`);
};

/** Fewer replicates give a percentile interval too noisy to report. */
export const MIN_REPLICATES = 100;

export function parseBootstrapQuery(raw: unknown): BootstrapQuery {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return bad('query', 'must be an object');
  const { seed, replicates, ...rest } = raw as Record<string, unknown>;
  const base = parseBinaryCountsQuery(rest);
  if (typeof seed !== 'string' || !/^[A-Za-z0-9_-]{8,64}$/.test(seed)) bad('query.seed', 'must be 8 to 64 letters, digits, _ or -');
  if (!Number.isInteger(replicates) || (replicates as number) < MIN_REPLICATES || (replicates as number) > MAX_REPLICATES) {
    bad('query.replicates', `must be a whole number from ${MIN_REPLICATES} to ${MAX_REPLICATES}`);
  }
  return { ...base, seed: seed as string, replicates: replicates as number };
}

/** One graded case: its patient's key within the node (what the weights are keyed by), truth and grade. */
export interface BootstrapCase {
  patientKey: string;
  truth: number;
  grade: number;
}

/** Per replicate, the weighted confusion counts of a group. */
export interface BootstrapSums {
  [field: string]: number[];
  tp: number[];
  fp: number[];
  tn: number[];
  fn: number[];
}

/** A group's replicate sums; `weightsOf` gives a patient's weights (poissonWeights under the node's key and the task's seed). */
export function bootstrapSums(
  cases: readonly BootstrapCase[],
  threshold: number,
  replicates: number,
  weightsOf: (patientKey: string) => Uint8Array,
): BootstrapSums {
  const out: BootstrapSums = { tp: [], fp: [], tn: [], fn: [] };
  for (const field of ['tp', 'fp', 'tn', 'fn'] as const) out[field] = new Array<number>(replicates).fill(0);
  const weights = new Map<string, Uint8Array>();
  for (const c of cases) {
    let w = weights.get(c.patientKey);
    if (!w) weights.set(c.patientKey, (w = weightsOf(c.patientKey)));
    if (w.length !== replicates) throw new ComputeError('COMPUTE_ERROR', 'a patient has the wrong number of bootstrap weights');
    const positive = c.truth >= threshold;
    const called = c.grade >= threshold;
    const into = out[positive ? (called ? 'tp' : 'fn') : called ? 'fp' : 'tn'];
    for (let r = 0; r < replicates; r++) into[r] += w[r];
  }
  return out;
}

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

const ratio = (x: number, n: number): number | null => (n > 0 ? x / n : null);

/** The statistics of confusion counts the bootstrap gives intervals for (as stats/engine.ts defines them). */
export const BOOTSTRAP_STATISTICS: Record<string, { of: (c: Confusion) => number | null; undefinedBecause: UndefinedReason }> = {
  prevalence: { of: (c) => ratio(c.tp + c.fn, c.tp + c.fp + c.tn + c.fn), undefinedBecause: 'NO_CASES' },
  accuracy: { of: (c) => ratio(c.tp + c.tn, c.tp + c.fp + c.tn + c.fn), undefinedBecause: 'NO_CASES' },
  sensitivity: { of: (c) => ratio(c.tp, c.tp + c.fn), undefinedBecause: 'NO_POSITIVES' },
  specificity: { of: (c) => ratio(c.tn, c.tn + c.fp), undefinedBecause: 'NO_NEGATIVES' },
  precision: { of: (c) => ratio(c.tp, c.tp + c.fp), undefinedBecause: 'NO_PREDICTED_POSITIVES' },
  npv: { of: (c) => ratio(c.tn, c.tn + c.fn), undefinedBecause: 'NO_PREDICTED_NEGATIVES' },
  f1: { of: (c) => ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn), undefinedBecause: 'NO_POSITIVES' },
  youden: {
    of: (c) => {
      const se = ratio(c.tp, c.tp + c.fn);
      const sp = ratio(c.tn, c.tn + c.fp);
      return se === null || sp === null ? null : se + sp - 1;
    },
    undefinedBecause: 'NO_POSITIVES',
  },
};

/** The replicate values of one statistic (null: undefined in that replicate). */
export function replicateValues(sums: BootstrapSums, statistic: (c: Confusion) => number | null): Array<number | null> {
  return sums.tp.map((_, r) => statistic({ tp: sums.tp[r], fp: sums.fp[r], tn: sums.tn[r], fn: sums.fn[r] }));
}

/**
 * Percentile intervals (type 7 quantiles, as stats/bootstrap.ts) of each statistic around its point estimate from
 * `point` (the pooled confusion counts); withheld (FEW_CLUSTERS) when more than MAX_DROPPED of the replicates leave it
 * undefined, as on a node.
 */
export function bootstrapIntervals(point: Confusion, sums: BootstrapSums, level = 0.95): Record<string, Estimate & { [field: string]: JsonValue }> {
  const out: Record<string, Estimate & { [field: string]: JsonValue }> = {};
  const replicates = sums.tp.length;
  for (const [name, { of, undefinedBecause }] of Object.entries(BOOTSTRAP_STATISTICS)) {
    const value = of(point);
    const method = `poisson-cluster-bootstrap-percentile(B=${replicates})`;
    if (value === null) {
      out[name] = { value: null, lower: null, upper: null, method, reason: undefinedBecause };
      continue;
    }
    const values = replicateValues(sums, of)
      .filter((v): v is number => v !== null && Number.isFinite(v))
      .sort((a, b) => a - b);
    if (values.length < replicates * (1 - MAX_DROPPED)) {
      out[name] = { value, lower: null, upper: null, method, reason: 'FEW_CLUSTERS' };
      continue;
    }
    const alpha = (1 - level) / 2;
    out[name] = { value, lower: quantile(values, alpha), upper: quantile(values, 1 - alpha), method, reason: null };
  }
  return out;
}
