import { contingency, kappa } from './agreement';
import { aucClustered, aucDelong, rocCurve } from './auc';
import { binaryMetrics, confusionOf, type Confusion } from './binary';
import { bootstrapEstimate, clusterBootstrap } from './bootstrap';
import { none, undefinedEstimate, type Estimate, type Maybe } from './estimate';
import { macroF1, ovrMacroAuc, weightedF1 } from './multiclass';
import { addCluster, clusteredWilson, emptyCount, wilson, type ClusteredCount } from './proportion';

/** One graded case (a joint x modality x feature) as the engine sees it: no ids but its cluster's index. */
export interface GradedCase {
  /** Index of the case's cluster (patient), 0..clusters-1. */
  cluster: number;
  /** The reference grade. */
  truth: number;
  /** The rater's grade: a reader's grade, or a model's argmax. */
  grade: number;
  /** Per-grade probabilities of a model; absent for a reader (whose score is the grade itself). */
  probabilities?: readonly number[];
}

export interface EngineOptions {
  /** Positive when grade >= threshold. */
  threshold: number;
  /** Number of grades of the feature (k). */
  grades: number;
  level: number;
  /** Patient-clustered intervals (the default) or per-case ones. */
  clustered: boolean;
  bootstrap: { replicates: number; seed: number };
  /** False when the group mixes features of different scales: no k x k view then (MIXED_FEATURES). */
  multiclass?: boolean;
}

export interface GroupMetrics {
  cases: number;
  clusters: number;
  confusion: Confusion;
  prevalence: Estimate;
  accuracy: Estimate;
  sensitivity: Estimate;
  specificity: Estimate;
  precision: Estimate;
  npv: Estimate;
  f1: Estimate;
  youden: Estimate;
  auc: Estimate;
  roc: { fpr: number[]; tpr: number[]; thresholds: Array<number | null> };
  multiclass: { confusion: number[][]; macroF1: Maybe; weightedF1: Maybe; ovrMacroAuc: Maybe; linearKappa: Maybe; quadraticKappa: Maybe };
}

/** The score for ROC/AUC at threshold t: P(grade >= t) for a model, the ordinal grade for a reader. */
export function scoreOf(c: GradedCase, threshold: number): number {
  if (!c.probabilities) return c.grade;
  let p = 0;
  for (let g = threshold; g < c.probabilities.length; g++) p += c.probabilities[g];
  return p;
}

/** Computes one group's diagnostic-accuracy metrics, each with its interval and the interval's method. */
export function computeGroup(cases: readonly GradedCase[], options: EngineOptions): GroupMetrics {
  const t = options.threshold;
  // Re-index clusters densely: the bootstrap and the clustered counts work on 0..clusters-1.
  const clusterIndex = new Map<number, number>();
  for (const c of cases) if (!clusterIndex.has(c.cluster)) clusterIndex.set(c.cluster, clusterIndex.size);
  const clusters = clusterIndex.size;
  /** The resampling unit of case i: its patient (clustered) or the case itself. */
  const unitOf = (i: number) => (options.clustered ? (clusterIndex.get(cases[i].cluster) as number) : i);

  const truth = cases.map((c) => c.truth >= t);
  const called = cases.map((c) => c.grade >= t);
  const confusion = confusionOf(truth, called);
  const metrics = binaryMetrics(confusion);

  // Per-cluster counts for the clustered proportions.
  const perCluster = new Map<number, Confusion>();
  cases.forEach((c, i) => {
    const k = clusterIndex.get(c.cluster) as number;
    const s = perCluster.get(k) ?? { tp: 0, fp: 0, tn: 0, fn: 0 };
    if (truth[i] && called[i]) s.tp++;
    else if (truth[i]) s.fn++;
    else if (called[i]) s.fp++;
    else s.tn++;
    perCluster.set(k, s);
  });
  const proportion = (x: (s: Confusion) => number, n: (s: Confusion) => number, reason: Parameters<typeof wilson>[3]): Estimate => {
    if (!options.clustered) {
      let xs = 0;
      let ns = 0;
      for (const s of perCluster.values()) {
        xs += x(s);
        ns += n(s);
      }
      return wilson(xs, ns, options.level, reason);
    }
    let count: ClusteredCount = emptyCount();
    for (const s of perCluster.values()) count = addCluster(count, x(s), n(s));
    return clusteredWilson(count, options.level, reason);
  };

  const bootstrapped = (value: Maybe, statistic: (c: Confusion) => number | null): Estimate => {
    if (value.value === null) return undefinedEstimate('cluster-bootstrap-percentile', value.reason);
    const units = options.clustered ? [...perCluster.values()] : cases.map((_, i) => confusionOf([truth[i]], [called[i]]));
    const ci = clusterBootstrap(
      units.length,
      (weights) => {
        const sum = { tp: 0, fp: 0, tn: 0, fn: 0 };
        for (let i = 0; i < units.length; i++) {
          if (!weights[i]) continue;
          sum.tp += weights[i] * units[i].tp;
          sum.fp += weights[i] * units[i].fp;
          sum.tn += weights[i] * units[i].tn;
          sum.fn += weights[i] * units[i].fn;
        }
        return statistic(sum);
      },
      { ...options.bootstrap, level: options.level },
    );
    const estimate = bootstrapEstimate(value.value, ci);
    return options.clustered ? estimate : { ...estimate, method: estimate.method.replace('cluster-', 'case-') };
  };

  const positives: number[] = [];
  const negatives: number[] = [];
  const positiveClusters: number[] = [];
  const negativeClusters: number[] = [];
  cases.forEach((c, i) => {
    const score = scoreOf(c, t);
    if (truth[i]) {
      positives.push(score);
      positiveClusters.push(unitOf(i));
    } else {
      negatives.push(score);
      negativeClusters.push(unitOf(i));
    }
  });
  const aucEstimate: Estimate = options.clustered
    ? stripVariance(aucClustered(positives, negatives, positiveClusters, negativeClusters, options.level))
    : stripVariance(aucDelong(positives, negatives, options.level));

  const k = options.grades;
  const table =
    options.multiclass === false
      ? []
      : contingency(
          cases.map((c) => c.truth),
          cases.map((c) => c.grade),
          k,
        );
  const hasProbabilities = cases.length > 0 && cases.every((c) => c.probabilities);
  const oneHot = (c: GradedCase) => Array.from({ length: k }, (_, g) => (c.grade === g ? 1 : 0));

  return {
    cases: cases.length,
    clusters,
    confusion,
    prevalence: proportion(
      (s) => s.tp + s.fn,
      (s) => s.tp + s.fn + s.tn + s.fp,
      'NO_CASES',
    ),
    accuracy: proportion(
      (s) => s.tp + s.tn,
      (s) => s.tp + s.fn + s.tn + s.fp,
      'NO_CASES',
    ),
    sensitivity: proportion(
      (s) => s.tp,
      (s) => s.tp + s.fn,
      'NO_POSITIVES',
    ),
    specificity: proportion(
      (s) => s.tn,
      (s) => s.tn + s.fp,
      'NO_NEGATIVES',
    ),
    precision: proportion(
      (s) => s.tp,
      (s) => s.tp + s.fp,
      'NO_PREDICTED_POSITIVES',
    ),
    npv: proportion(
      (s) => s.tn,
      (s) => s.tn + s.fn,
      'NO_PREDICTED_NEGATIVES',
    ),
    f1: bootstrapped(metrics.f1, (s) => (s.tp + s.fn ? (2 * s.tp) / (2 * s.tp + s.fp + s.fn) : null)),
    youden: bootstrapped(metrics.youden, (s) => (s.tp + s.fn && s.tn + s.fp ? s.tp / (s.tp + s.fn) + s.tn / (s.tn + s.fp) - 1 : null)),
    auc: aucEstimate,
    roc: rocCurve(positives, negatives),
    multiclass:
      options.multiclass === false
        ? {
            confusion: [],
            macroF1: none('MIXED_FEATURES'),
            weightedF1: none('MIXED_FEATURES'),
            ovrMacroAuc: none('MIXED_FEATURES'),
            linearKappa: none('MIXED_FEATURES'),
            quadraticKappa: none('MIXED_FEATURES'),
          }
        : {
            confusion: table,
            macroF1: macroF1(table),
            weightedF1: weightedF1(table),
            ovrMacroAuc: ovrMacroAuc(
              cases.map((c) => c.truth),
              cases.map((c) => (hasProbabilities ? (c.probabilities as number[]) : oneHot(c))),
              k,
            ),
            linearKappa: kappa(table, 'linear'),
            quadraticKappa: kappa(table, 'quadratic'),
          },
  };
}

function stripVariance(e: Estimate & { variance: number | null }): Estimate {
  const { variance: _variance, ...estimate } = e;
  return estimate;
}
