import { contingency, kappa } from './agreement';
import { binaryMetrics, emptyConfusion, mergeConfusion, type BinaryMetrics, type Confusion } from './binary';
import { MAX_DROPPED, quantile, seededRandom } from './bootstrap';
import type { MetricDifference, PairedCase } from './compare';
import { scoreOf, type EngineOptions, type GradedCase, type GroupMetrics } from './engine';
import { none, some, undefinedEstimate, type Estimate, type Maybe, type UndefinedReason } from './estimate';
import { macroF1, ovrMacroAuc, weightedF1 } from './multiclass';

/**
 * Reader-averaged metrics, as multi-reader multi-case (MRMC) studies report "the readers": each reader's metric on
 * the cases that reader graded, then the plain mean over readers (every reader weighs the same, however many cases
 * they read; Obuchowski & Rockette 1995, Dorfman, Berbaum & Metz 1992). Pooling every reading as one rater would
 * instead weight readers by their caseload and, for AUC, mix their grading thresholds into one ROC curve, which
 * understates what each reader achieves.
 *
 * Intervals come from the cluster bootstrap: patients are resampled with replacement (one draw per replicate,
 * shared by every reader, so readers of the same patients stay correlated), every reader's metric is recomputed
 * on the resampled cases and averaged; the percentile interval of those averages. The readers are fixed: the
 * interval speaks of new patients read by these readers, not of new readers (a random-reader analysis needs more
 * than the two readers a site has).
 */

/** A reader's graded case, with the joint x modality x feature cell it belongs to (the unit when not clustered). */
export interface ReaderCase extends GradedCase {
  cell: number;
}

/** A model's and a reader's grade of the same cell, with its cell. */
export interface ReaderPairedCase extends PairedCase {
  cell: number;
}

interface BootstrapOptions {
  threshold: number;
  level: number;
  clustered: boolean;
  bootstrap: { replicates: number; seed: number };
}

/** Resampling units (patients, or cells when not clustered) in order of first appearance, as the engine numbers them. */
function unitIndex<C extends { cluster: number; cell: number }>(readers: ReadonlyArray<readonly C[]>, clustered: boolean): (c: C) => number {
  const index = new Map<number, number>();
  for (const cases of readers) for (const c of cases) if (!index.has(clustered ? c.cluster : c.cell)) index.set(clustered ? c.cluster : c.cell, index.size);
  return (c) => index.get(clustered ? c.cluster : c.cell) as number;
}

/** The replicates' weights: draw i gives, per unit, how often the resample took it (the engine's clusterBootstrap draws). */
function* draws(units: number, options: BootstrapOptions['bootstrap']): Generator<Uint32Array> {
  const random = seededRandom(options.seed);
  const weights = new Uint32Array(units);
  for (let r = 0; r < options.replicates; r++) {
    weights.fill(0);
    for (let i = 0; i < units; i++) weights[Math.floor(random() * units)]++;
    yield weights;
  }
}

/** Percentile interval of the averages, withheld (FEW_CLUSTERS) when over 5% of replicates lacked a reader's statistic. */
function percentile(values: number[], replicates: number, level: number): { lower: number | null; upper: number | null } {
  if (values.length < replicates * (1 - MAX_DROPPED)) return { lower: null, upper: null };
  values.sort((x, y) => x - y);
  const alpha = (1 - level) / 2;
  return { lower: quantile(values, alpha), upper: quantile(values, 1 - alpha) };
}

/** A reader's cases reduced to what every statistic needs, per unit: confusion counts and grade histograms by class. */
interface ReaderUnits {
  units: Uint32Array;
  /** tp, fp, tn, fn per unit (4 per entry). */
  counts: Float64Array;
  /** Reference-positive then reference-negative cases per grade (2k per entry). */
  histograms: Float64Array;
}

/** `unitOf[i]` is the resampling unit of `cases[i]`. */
function reduceReader(cases: readonly GradedCase[], unitOf: ArrayLike<number>, t: number, k: number): ReaderUnits {
  const position = new Map<number, number>();
  for (let i = 0; i < cases.length; i++) if (!position.has(unitOf[i])) position.set(unitOf[i], position.size);
  const counts = new Float64Array(position.size * 4);
  const histograms = new Float64Array(position.size * 2 * k);
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const p = position.get(unitOf[i]) as number;
    const truth = c.truth >= t;
    const called = c.grade >= t;
    counts[p * 4 + (truth ? (called ? 0 : 3) : called ? 1 : 2)]++;
    histograms[p * 2 * k + (truth ? 0 : k) + c.grade]++;
  }
  return { units: Uint32Array.from(position.keys()), counts, histograms };
}

function totals(r: ReaderUnits, k: number, weights?: Uint32Array): { confusion: Confusion; positives: Float64Array; negatives: Float64Array } {
  const confusion = emptyConfusion();
  const positives = new Float64Array(k);
  const negatives = new Float64Array(k);
  for (let p = 0; p < r.units.length; p++) {
    const w = weights ? weights[r.units[p]] : 1;
    if (!w) continue;
    confusion.tp += w * r.counts[p * 4];
    confusion.fp += w * r.counts[p * 4 + 1];
    confusion.tn += w * r.counts[p * 4 + 2];
    confusion.fn += w * r.counts[p * 4 + 3];
    for (let g = 0; g < k; g++) {
      positives[g] += w * r.histograms[p * 2 * k + g];
      negatives[g] += w * r.histograms[p * 2 * k + k + g];
    }
  }
  return { confusion, positives, negatives };
}

/** Empirical AUC of ordinal grades from the class histograms (ties count one half), as placements would give it. */
function histogramAuc(positives: Float64Array, negatives: Float64Array): Maybe {
  let m = 0;
  let n = 0;
  for (let g = 0; g < positives.length; g++) {
    m += positives[g];
    n += negatives[g];
  }
  if (m === 0) return none('NO_POSITIVES');
  if (n === 0) return none('NO_NEGATIVES');
  let below = 0;
  let sum = 0;
  for (let g = 0; g < positives.length; g++) {
    sum += positives[g] * (below + negatives[g] / 2);
    below += negatives[g];
  }
  return some(sum / (m * n));
}

type Scalar = Exclude<keyof BinaryMetrics, 'n'> | 'auc';
const SCALARS: readonly Scalar[] = ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv', 'f1', 'youden', 'auc'];

function scalarsOf(t: ReturnType<typeof totals>): Record<Scalar, Maybe> {
  return { ...binaryMetrics(t.confusion), auc: histogramAuc(t.positives, t.negatives) };
}

/** The mean of the defined values, or the first reader's reason when no reader has one. */
function meanOf(values: readonly Maybe[]): Maybe {
  const defined = values.filter((v): v is { value: number; reason: null } => v.value !== null);
  if (defined.length === 0) return none((values[0]?.reason ?? 'NO_CASES') as UndefinedReason);
  return some(defined.reduce((s, v) => s + v.value, 0) / defined.length);
}

/** Threshold-averaged ROC (Fawcett 2006): each grade's operating point averaged over the readers who have both classes. */
function averagedRoc(readers: ReadonlyArray<ReturnType<typeof totals>>, k: number): GroupMetrics['roc'] {
  const usable = readers.filter((r) => r.positives.some((v) => v > 0) && r.negatives.some((v) => v > 0));
  if (usable.length === 0) return { fpr: [0], tpr: [0], thresholds: [null] };
  const roc: GroupMetrics['roc'] = { fpr: [0], tpr: [0], thresholds: [null] };
  for (let g = k - 1; g >= 0; g--) {
    let fpr = 0;
    let tpr = 0;
    for (const r of usable) {
      const sum = (h: Float64Array, from: number) => h.slice(from).reduce((a, b) => a + b, 0);
      fpr += sum(r.negatives, g) / sum(r.negatives, 0);
      tpr += sum(r.positives, g) / sum(r.positives, 0);
    }
    roc.fpr.push(fpr / usable.length);
    roc.tpr.push(tpr / usable.length);
    roc.thresholds.push(g);
  }
  return roc;
}

/**
 * The reader-averaged metrics of a group: `readers` holds each reader's cases (clusters and cells numbered alike
 * across readers). Every estimate is the mean over the readers for whom it is defined; its interval is the
 * patient-cluster bootstrap of that mean (the cell bootstrap with `clustered: false`).
 */
export function computeReaderAveraged(readers: ReadonlyArray<readonly ReaderCase[]>, options: EngineOptions): GroupMetrics & { readers: number } {
  const t = options.threshold;
  const k = options.grades;
  const unitOf = unitIndex(readers, options.clustered);
  const units = new Set(readers.flatMap((cases) => cases.map(unitOf))).size;
  const reduced = readers.map((cases) => reduceReader(cases, cases.map(unitOf), t, k));
  const observed = reduced.map((r) => totals(r, k));
  const points = observed.map(scalarsOf);

  // Which readers each statistic averages over: those for whom the data define it.
  const averaged = Object.fromEntries(SCALARS.map((s) => [s, points.flatMap((p, i) => (p[s].value !== null ? [i] : []))])) as Record<Scalar, number[]>;
  const replicateValues = Object.fromEntries(SCALARS.map((s) => [s, [] as number[]])) as Record<Scalar, number[]>;
  for (const weights of draws(units, options.bootstrap)) {
    const perReader = new Map<number, Record<Scalar, Maybe>>();
    const of = (i: number) => perReader.get(i) ?? (perReader.set(i, scalarsOf(totals(reduced[i], k, weights))).get(i) as Record<Scalar, Maybe>);
    for (const s of SCALARS) {
      if (averaged[s].length === 0) continue;
      let sum = 0;
      let defined = true;
      for (const i of averaged[s]) {
        const v = of(i)[s].value;
        if (v === null || !Number.isFinite(v)) {
          defined = false;
          break;
        }
        sum += v;
      }
      if (defined) replicateValues[s].push(sum / averaged[s].length);
    }
  }
  const method = (r: number) => `reader-average-${options.clustered ? 'cluster' : 'case'}-bootstrap-percentile(R=${r},B=${options.bootstrap.replicates})`;
  const estimate = (s: Scalar): Estimate => {
    const mean = meanOf(points.map((p) => p[s]));
    if (mean.value === null) return undefinedEstimate(method(0), mean.reason);
    const ci = percentile(replicateValues[s], options.bootstrap.replicates, options.level);
    return { value: mean.value, ...ci, method: method(averaged[s].length), reason: ci.lower === null ? 'FEW_CLUSTERS' : null };
  };

  const clusters = new Set(readers.flatMap((cases) => cases.map((c) => c.cluster))).size;
  const multiclass = (): GroupMetrics['multiclass'] => {
    if (options.multiclass === false) {
      const mixed = none('MIXED_FEATURES');
      return { confusion: [], macroF1: mixed, weightedF1: mixed, ovrMacroAuc: mixed, linearKappa: mixed, quadraticKappa: mixed };
    }
    const tables = readers.map((cases) =>
      contingency(
        cases.map((c) => c.truth),
        cases.map((c) => c.grade),
        k,
      ),
    );
    const oneHot = (c: GradedCase) => Array.from({ length: k }, (_, g) => (c.grade === g ? 1 : 0));
    return {
      // The readings of all readers together; the measures below are each reader's, averaged.
      confusion: tables.reduce((sum, table) => sum.map((row, i) => row.map((v, j) => v + table[i][j]))),
      macroF1: meanOf(tables.map(macroF1)),
      weightedF1: meanOf(tables.map(weightedF1)),
      ovrMacroAuc: meanOf(
        readers.map((cases) =>
          ovrMacroAuc(
            cases.map((c) => c.truth),
            cases.map(oneHot),
            k,
          ),
        ),
      ),
      linearKappa: meanOf(tables.map((table) => kappa(table, 'linear'))),
      quadraticKappa: meanOf(tables.map((table) => kappa(table, 'quadratic'))),
    };
  };

  return {
    readers: readers.length,
    cases: readers.reduce((s, cases) => s + cases.length, 0),
    clusters,
    confusion: observed.map((o) => o.confusion).reduce(mergeConfusion, emptyConfusion()),
    prevalence: estimate('prevalence'),
    accuracy: estimate('accuracy'),
    sensitivity: estimate('sensitivity'),
    specificity: estimate('specificity'),
    precision: estimate('precision'),
    npv: estimate('npv'),
    f1: estimate('f1'),
    youden: estimate('youden'),
    auc: estimate('auc'),
    roc: averagedRoc(observed, k),
    multiclass: multiclass(),
  };
}

type Compared = MetricDifference['metric'];
const COMPARED: readonly Compared[] = ['ACCURACY', 'SENSITIVITY', 'SPECIFICITY', 'F1', 'AUC'];
const SCALAR_OF: Record<Compared, Scalar> = { ACCURACY: 'accuracy', SENSITIVITY: 'sensitivity', SPECIFICITY: 'specificity', F1: 'f1', AUC: 'auc' };

/** A model's AUC on one reader's cases, weighted per unit, from cases sorted once by the model's score. */
class WeightedModelAuc {
  private readonly order: Uint32Array;
  constructor(
    private readonly scores: Float64Array,
    private readonly positive: Uint8Array,
    private readonly units: Uint32Array,
  ) {
    this.order = Uint32Array.from(scores.keys()).sort((a, b) => scores[a] - scores[b]);
  }

  auc(weights?: Uint32Array): Maybe {
    let m = 0;
    let n = 0;
    let sum = 0;
    let below = 0;
    for (let start = 0; start < this.order.length;) {
      let end = start;
      let p = 0;
      let q = 0;
      while (end < this.order.length && this.scores[this.order[end]] === this.scores[this.order[start]]) {
        const i = this.order[end];
        const w = weights ? weights[this.units[i]] : 1;
        if (this.positive[i]) p += w;
        else q += w;
        end++;
      }
      sum += p * (below + q / 2);
      below += q;
      m += p;
      n += q;
      start = end;
    }
    if (m === 0) return none('NO_POSITIVES');
    if (n === 0) return none('NO_NEGATIVES');
    return some(sum / (m * n));
  }
}

/**
 * The model against the reader average on the same cases: for each reader, the model's metric and the reader's on
 * exactly the cases that reader graded; both averaged over the readers; the difference of the averages with the
 * paired bootstrap (patients resampled, the model and every reader together), its percentile interval and the
 * two-sided bootstrap p-value.
 */
export function compareReaderAveraged(readers: ReadonlyArray<readonly ReaderPairedCase[]>, options: BootstrapOptions): MetricDifference[] {
  const t = options.threshold;
  const k = Math.max(2, ...readers.flatMap((cases) => cases.map((c) => Math.max(c.truth, c.readerGrade, c.modelGrade) + 1)));
  const unitOf = unitIndex(readers, options.clustered);
  const units = new Set(readers.flatMap((cases) => cases.map(unitOf))).size;
  const asReader = (c: ReaderPairedCase): GradedCase => ({ cluster: c.cluster, truth: c.truth, grade: c.readerGrade });
  const asModel = (c: ReaderPairedCase): GradedCase => ({ cluster: c.cluster, truth: c.truth, grade: c.modelGrade });
  const rated = readers.map((cases) => ({
    reader: reduceReader(cases.map(asReader), cases.map(unitOf), t, k),
    model: reduceReader(cases.map(asModel), cases.map(unitOf), t, k),
    modelAuc: new WeightedModelAuc(
      Float64Array.from(cases, (c) => scoreOf({ cluster: c.cluster, truth: c.truth, grade: c.modelGrade, probabilities: c.modelProbabilities }, t)),
      Uint8Array.from(cases, (c) => (c.truth >= t ? 1 : 0)),
      Uint32Array.from(cases, unitOf),
    ),
  }));
  const both = (i: number, weights?: Uint32Array) => {
    const reader = scalarsOf(totals(rated[i].reader, k, weights));
    const model = { ...binaryMetrics(totals(rated[i].model, k, weights).confusion), auc: rated[i].modelAuc.auc(weights) };
    return { reader, model };
  };
  const observed = rated.map((_, i) => both(i));
  const method = (r: number) =>
    `reader-average-paired-${options.clustered ? 'cluster' : 'case'}-bootstrap-percentile(R=${r},B=${options.bootstrap.replicates})`;
  const averaged = Object.fromEntries(
    COMPARED.map((m) => [m, observed.flatMap((o, i) => (o.reader[SCALAR_OF[m]].value !== null && o.model[SCALAR_OF[m]].value !== null ? [i] : []))]),
  ) as Record<Compared, number[]>;
  const differences = Object.fromEntries(COMPARED.map((m) => [m, [] as number[]])) as Record<Compared, number[]>;
  for (const weights of draws(units, options.bootstrap)) {
    const cache = new Map<number, ReturnType<typeof both>>();
    const of = (i: number) => cache.get(i) ?? (cache.set(i, both(i, weights)).get(i) as ReturnType<typeof both>);
    for (const m of COMPARED) {
      if (averaged[m].length === 0) continue;
      let sum = 0;
      let defined = true;
      for (const i of averaged[m]) {
        const { reader, model } = of(i);
        const a = model[SCALAR_OF[m]].value;
        const b = reader[SCALAR_OF[m]].value;
        if (a === null || b === null) {
          defined = false;
          break;
        }
        sum += a - b;
      }
      if (defined) differences[m].push(sum / averaged[m].length);
    }
  }
  return COMPARED.map((metric) => {
    const used = averaged[metric];
    const test = method(used.length);
    if (used.length === 0) {
      const reason = observed[0]?.reader[SCALAR_OF[metric]].reason ?? observed[0]?.model[SCALAR_OF[metric]].reason ?? 'NO_CASES';
      return { metric, model: null, reader: null, difference: undefinedEstimate(test, reason), p: null, test };
    }
    const mean = (f: (i: number) => number) => used.reduce((s, i) => s + f(i), 0) / used.length;
    const model = mean((i) => observed[i].model[SCALAR_OF[metric]].value as number);
    const reader = mean((i) => observed[i].reader[SCALAR_OF[metric]].value as number);
    const values = differences[metric];
    const enough = values.length >= options.bootstrap.replicates * (1 - MAX_DROPPED);
    const below = values.filter((d) => d <= 0).length;
    const above = values.filter((d) => d >= 0).length;
    const ci = percentile(values, options.bootstrap.replicates, options.level);
    return {
      metric,
      model,
      reader,
      difference: { value: model - reader, ...ci, method: test, reason: enough ? null : 'FEW_CLUSTERS' },
      // Two-sided, with the +1 correction, as the single-reader paired bootstrap.
      p: enough ? Math.min(1, (2 * (1 + Math.min(below, above))) / (values.length + 1)) : null,
      test,
    };
  });
}
