import { clusteredIntervalVariance, obuchowskiCovariance, pairedDelong, pairedDelongVariance, placements, type Placements } from './auc';
import { binaryMetrics, confusionOf, type Confusion } from './binary';
import { MAX_DROPPED, quantile, seededRandom } from './bootstrap';
import { undefinedEstimate, type Estimate } from './estimate';
import { mcnemarExact, pairedTable, type PairedTable } from './mcnemar';
import { normalQuantile, twoSidedP } from './normal';
import { scoreOf } from './engine';

/** One case both raters graded: the model's grade and probabilities, the reader's grade, the reference. */
export interface PairedCase {
  cluster: number;
  truth: number;
  modelGrade: number;
  modelProbabilities?: readonly number[];
  readerGrade: number;
}

export type ComparedMetric = 'ACCURACY' | 'SENSITIVITY' | 'SPECIFICITY' | 'F1' | 'AUC';

export interface MetricDifference {
  metric: ComparedMetric;
  model: number | null;
  reader: number | null;
  /** Model minus reader. */
  difference: Estimate;
  p: number | null;
  /** The test behind p. */
  test: string;
}

export interface CompareOptions {
  threshold: number;
  level: number;
  clustered: boolean;
  bootstrap: { replicates: number; seed: number };
}

type Statistic = (c: Confusion) => number | null;
const STATISTICS: Record<Exclude<ComparedMetric, 'AUC'>, Statistic> = {
  ACCURACY: (c) => binaryMetrics(c).accuracy.value,
  SENSITIVITY: (c) => binaryMetrics(c).sensitivity.value,
  SPECIFICITY: (c) => binaryMetrics(c).specificity.value,
  F1: (c) => binaryMetrics(c).f1.value,
};

/**
 * Model minus reader on exactly the cases both rated: each difference with a paired interval and a p-value —
 * exact McNemar for accuracy, paired DeLong (or Obuchowski's clustered covariance) for AUC, and the paired
 * cluster bootstrap (patients resampled, both raters together) for the rest and every interval but AUC's.
 */
export function comparePaired(cases: readonly PairedCase[], options: CompareOptions): MetricDifference[] {
  const t = options.threshold;
  const units = new Map<number, number>();
  const unitOf = (c: PairedCase, i: number) => {
    const key = options.clustered ? c.cluster : i;
    if (!units.has(key)) units.set(key, units.size);
    return units.get(key) as number;
  };
  const perUnit: Array<{ model: Confusion; reader: Confusion }> = [];
  cases.forEach((c, i) => {
    const u = unitOf(c, i);
    perUnit[u] ??= { model: confusionOf([], []), reader: confusionOf([], []) };
    const add = (target: Confusion, truth: boolean, call: boolean) => {
      if (truth && call) target.tp++;
      else if (truth) target.fn++;
      else if (call) target.fp++;
      else target.tn++;
    };
    add(perUnit[u].model, c.truth >= t, c.modelGrade >= t);
    add(perUnit[u].reader, c.truth >= t, c.readerGrade >= t);
  });
  const total = (which: 'model' | 'reader', weights?: Uint32Array) => {
    const s = { tp: 0, fp: 0, tn: 0, fn: 0 };
    perUnit.forEach((u, i) => {
      const w = weights ? weights[i] : 1;
      if (!w) return;
      s.tp += w * u[which].tp;
      s.fp += w * u[which].fp;
      s.tn += w * u[which].tn;
      s.fn += w * u[which].fn;
    });
    return s;
  };

  // One set of paired resamples serves every bootstrapped difference.
  const random = seededRandom(options.bootstrap.seed);
  const draws: Uint32Array[] = [];
  for (let r = 0; r < options.bootstrap.replicates; r++) {
    const w = new Uint32Array(perUnit.length);
    for (let i = 0; i < perUnit.length; i++) w[Math.floor(random() * perUnit.length)]++;
    draws.push(w);
  }
  const method = `${options.clustered ? 'paired-cluster' : 'paired-case'}-bootstrap-percentile(B=${options.bootstrap.replicates})`;
  const bootstrapped = (metric: Exclude<ComparedMetric, 'AUC'>): MetricDifference => {
    const f = STATISTICS[metric];
    const model = f(total('model'));
    const reader = f(total('reader'));
    if (model === null || reader === null) {
      return {
        metric,
        model,
        reader,
        difference: undefinedEstimate(method, metric === 'SPECIFICITY' ? 'NO_NEGATIVES' : 'NO_POSITIVES'),
        p: null,
        test: method,
      };
    }
    const differences: number[] = [];
    for (const w of draws) {
      const a = f(total('model', w));
      const b = f(total('reader', w));
      if (a !== null && b !== null) differences.push(a - b);
    }
    differences.sort((x, y) => x - y);
    const alpha = (1 - options.level) / 2;
    const enough = differences.length >= options.bootstrap.replicates * (1 - MAX_DROPPED);
    const below = differences.filter((d) => d <= 0).length;
    const above = differences.filter((d) => d >= 0).length;
    return {
      metric,
      model,
      reader,
      difference: {
        value: model - reader,
        lower: enough ? quantile(differences, alpha) : null,
        upper: enough ? quantile(differences, 1 - alpha) : null,
        method,
        reason: enough ? null : 'FEW_CLUSTERS',
      },
      // Two-sided, with the +1 correction: a bootstrap of B replicates cannot show p below 2/(B+1).
      p: enough ? Math.min(1, (2 * (1 + Math.min(below, above))) / (differences.length + 1)) : null,
      test: method,
    };
  };

  const accuracy = bootstrapped('ACCURACY');
  if (!options.clustered) {
    // Exact McNemar treats discordant cases as independent: right for per-case analysis only. Clustered, the
    // paired cluster bootstrap's p-value stands (joints of one patient are discordant together).
    const table = accuracyTable(cases, t);
    accuracy.p = mcnemarExact(table.modelOnly, table.readerOnly);
    accuracy.test = 'mcnemar-exact';
  }

  return [accuracy, bootstrapped('SENSITIVITY'), bootstrapped('SPECIFICITY'), bootstrapped('F1'), aucDifference(cases, options, unitOf)];
}

/** The paired table of correct calls at threshold t (positive when grade >= t), model against reader, per case. */
export function accuracyTable(cases: readonly PairedCase[], t: number): PairedTable {
  return pairedTable(cases.map((c) => ({ modelRight: c.modelGrade >= t === c.truth >= t, readerRight: c.readerGrade >= t === c.truth >= t })));
}

/**
 * The table with its exact McNemar p-value. The p treats cases as independent: it is the accuracy test of a
 * per-case analysis; clustered, the accuracy difference's p comes from the paired cluster bootstrap instead.
 */
export function mcnemarTable(cases: readonly PairedCase[], t: number): PairedTable & { p: number } {
  const table = accuracyTable(cases, t);
  return { ...table, p: mcnemarExact(table.modelOnly, table.readerOnly) };
}

const modelScore = (c: PairedCase, t: number): number =>
  scoreOf({ cluster: c.cluster, truth: c.truth, grade: c.modelGrade, probabilities: c.modelProbabilities }, t);

function aucDifference(cases: readonly PairedCase[], options: CompareOptions, unitOf: (c: PairedCase, i: number) => number): MetricDifference {
  const t = options.threshold;
  const method = options.clustered ? 'obuchowski-paired' : 'delong-paired';
  const pos = cases.map((c, i) => ({ c, i })).filter(({ c }) => c.truth >= t);
  const neg = cases.map((c, i) => ({ c, i })).filter(({ c }) => c.truth < t);
  const model = placements(
    pos.map(({ c }) => modelScore(c, t)),
    neg.map(({ c }) => modelScore(c, t)),
  );
  const reader = placements(
    pos.map(({ c }) => c.readerGrade),
    neg.map(({ c }) => c.readerGrade),
  );
  if (!model || !reader)
    return {
      metric: 'AUC',
      model: null,
      reader: null,
      difference: undefinedEstimate(method, pos.length ? 'NO_NEGATIVES' : 'NO_POSITIVES'),
      p: null,
      test: method,
    };
  if (!options.clustered) {
    const paired = pairedDelong(
      pos.map(({ c }) => modelScore(c, t)),
      neg.map(({ c }) => modelScore(c, t)),
      pos.map(({ c }) => c.readerGrade),
      neg.map(({ c }) => c.readerGrade),
      options.level,
    );
    if (!paired) return { metric: 'AUC', model: model.auc, reader: reader.auc, difference: undefinedEstimate(method, 'ONE_CLASS'), p: null, test: method };
    return { metric: 'AUC', model: paired.aucA, reader: paired.aucB, difference: paired.difference, p: paired.p, test: method };
  }
  const posUnits = pos.map(({ c, i }) => unitOf(c, i));
  const negUnits = neg.map(({ c, i }) => unitOf(c, i));
  const cov = (a: Placements, b: Placements) => obuchowskiCovariance(a, b, posUnits, negUnits);
  const vm = cov(model, model);
  const vr = cov(reader, reader);
  const cmr = cov(model, reader);
  const difference = model.auc - reader.auc;
  if (vm === null || vr === null || cmr === null) {
    return { metric: 'AUC', model: model.auc, reader: reader.auc, difference: undefinedEstimate(method, 'ONE_CLUSTER'), p: null, test: method };
  }
  // Floored at the per-case (paired DeLong) variance: a clustered interval is never narrower than the unclustered one.
  const variance = clusteredIntervalVariance(vm + vr - 2 * cmr, pairedDelongVariance(model, reader));
  if (!(variance > 0)) {
    return {
      metric: 'AUC',
      model: model.auc,
      reader: reader.auc,
      difference: { value: difference, lower: null, upper: null, method, reason: 'ZERO_VARIANCE' },
      p: null,
      test: method,
    };
  }
  const half = normalQuantile(1 - (1 - options.level) / 2) * Math.sqrt(variance);
  return {
    metric: 'AUC',
    model: model.auc,
    reader: reader.auc,
    difference: { value: difference, lower: difference - half, upper: difference + half, method, reason: null },
    p: twoSidedP(difference / Math.sqrt(variance)),
    test: method,
  };
}
