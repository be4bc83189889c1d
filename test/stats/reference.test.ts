import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { contingency, kappa } from '../../server/stats/agreement';
import { aucClustered, aucDelong, pairedDelong, rocCurve } from '../../server/stats/auc';
import { binaryMetrics, confusionOf } from '../../server/stats/binary';
import { mcnemarExact } from '../../server/stats/mcnemar';
import { macroF1, ovrMacroAuc, weightedF1 } from '../../server/stats/multiclass';
import { wilson } from '../../server/stats/proportion';

/**
 * Every metric against reference values from scikit-learn 1.2, statsmodels 0.13 and R pROC 1.18
 * (test/fixtures/stats, made by scripts/make-stats-fixtures.py): 1e-9 for point estimates, 1e-6 for intervals.
 */
const DIR = path.resolve(__dirname, '../fixtures/stats');
const CASES = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as Fixture);

interface Fixture {
  name: string;
  data: {
    patient: string[];
    truth: number[];
    score: number[];
    scoreB: number[];
    pred: number[];
    gradeTruth: number[];
    gradePred: number[];
    probs: number[][];
    readerA: number[];
    readerB: number[];
  };
  reference: Record<string, any>;
}

const POINT = 1e-9;
const INTERVAL = 1e-6;
const close = (actual: number | null, expected: number | null, tolerance: number) => {
  if (expected === null) expect(actual).toBeNull();
  else expect(Math.abs((actual as number) - expected)).toBeLessThanOrEqual(tolerance);
};
const split = <T>(f: Fixture, values: T[]) => ({
  positives: values.filter((_, i) => f.data.truth[i] === 1),
  negatives: values.filter((_, i) => f.data.truth[i] === 0),
});

describe.each(CASES.map((c) => [c.name, c] as const))('reference case %s', (_name, f) => {
  const ref = f.reference;
  const scores = split(f, f.data.score);
  const clusters = split(f, f.data.patient);

  it('confusion counts and binary metrics (scikit-learn)', () => {
    const confusion = confusionOf(f.data.truth, f.data.pred);
    expect(confusion).toEqual(ref.confusion);
    const m = binaryMetrics(confusion);
    for (const key of ['accuracy', 'sensitivity', 'specificity', 'precision', 'npv', 'youden'] as const) close(m[key].value, ref[key], POINT);
    // F1 without positives: scikit-learn reports 0; Facet reports null (NO_POSITIVES), since recall is undefined.
    if (confusion.tp + confusion.fn === 0) expect(m.f1).toEqual({ value: null, reason: 'NO_POSITIVES' });
    else close(m.f1.value, ref.f1, POINT);
  });

  it('Wilson intervals (statsmodels proportion_confint)', () => {
    const c = confusionOf(f.data.truth, f.data.pred);
    const counts = {
      accuracy: [c.tp + c.tn, c.tp + c.tn + c.fp + c.fn],
      sensitivity: [c.tp, c.tp + c.fn],
      specificity: [c.tn, c.tn + c.fp],
      precision: [c.tp, c.tp + c.fp],
      npv: [c.tn, c.tn + c.fn],
    } as const;
    for (const [key, [x, n]] of Object.entries(counts)) {
      const w = wilson(x, n);
      const expected = ref.wilson95[key] as [number, number] | null;
      close(w.lower, expected && Math.max(0, expected[0]), INTERVAL);
      close(w.upper, expected && Math.min(1, expected[1]), INTERVAL);
    }
  });

  it('AUC, ROC curve and DeLong interval (scikit-learn, pROC)', () => {
    const delong = aucDelong(scores.positives, scores.negatives);
    close(delong.value, ref.auc, POINT);
    close(delong.variance, ref.delong?.variance ?? null, POINT);
    close(delong.lower, ref.delong?.ci95[0] ?? null, INTERVAL);
    close(delong.upper, ref.delong?.ci95[1] ?? null, INTERVAL);
    if (ref.roc) {
      const roc = rocCurve(scores.positives, scores.negatives);
      expect(roc.fpr.length).toBe(ref.roc.fpr.length);
      roc.fpr.forEach((v, i) => close(v, ref.roc.fpr[i], POINT));
      roc.tpr.forEach((v, i) => close(v, ref.roc.tpr[i], POINT));
      roc.thresholds.slice(1).forEach((v, i) => close(v, ref.roc.thresholds[i + 1], POINT));
    }
  });

  it('patient-clustered AUC interval (Obuchowski 1997, direct double-sum reference)', () => {
    const o = aucClustered(scores.positives, scores.negatives, clusters.positives, clusters.negatives);
    close(o.variance, ref.obuchowski?.variance ?? null, POINT);
    // The interval uses Obuchowski's variance floored at DeLong's (pROC's), never narrower than the per-case
    // interval; Facet clips intervals to [0, 1] (as pROC does).
    const z = 1.959963984540054;
    const sd = ref.obuchowski ? Math.sqrt(Math.max(ref.obuchowski.variance, ref.delong.variance)) : null;
    close(o.lower, sd === null ? null : Math.max(0, ref.auc - z * sd), INTERVAL);
    close(o.upper, sd === null ? null : Math.min(1, ref.auc + z * sd), INTERVAL);
  });

  it('paired DeLong test of two raters (pROC roc.test paired)', () => {
    const b = split(f, f.data.scoreB);
    const test = pairedDelong(scores.positives, scores.negatives, b.positives, b.negatives);
    if (!ref.pairedDelong) {
      expect(test?.z ?? null).toBeNull();
      return;
    }
    close(test?.difference.value ?? null, ref.pairedDelong.difference, POINT);
    if (ref.pairedDelong.z === null) return;
    close(test?.z ?? null, ref.pairedDelong.z, INTERVAL);
    close(test?.p ?? null, ref.pairedDelong.p, INTERVAL);
  });

  it('exact McNemar test (statsmodels)', () => {
    close(mcnemarExact(ref.mcnemar.b, ref.mcnemar.c), ref.mcnemar.p, POINT);
    const right = (i: number, call: number) => call === f.data.truth[i];
    const b = f.data.pred.filter((p, i) => right(i, p) && !right(i, f.data.scoreB[i] >= 0.5 ? 1 : 0)).length;
    const c = f.data.pred.filter((p, i) => !right(i, p) && right(i, f.data.scoreB[i] >= 0.5 ? 1 : 0)).length;
    expect({ b, c }).toEqual({ b: ref.mcnemar.b, c: ref.mcnemar.c });
  });

  it('Cohen’s kappa, unweighted, linear and quadratic (scikit-learn)', () => {
    const readers = contingency(f.data.readerA, f.data.readerB, 4);
    const vsTruth = contingency(f.data.gradePred, f.data.gradeTruth, 4);
    for (const w of ['unweighted', 'linear', 'quadratic'] as const) {
      close(kappa(readers, w).value, ref.kappa[w], POINT);
      close(kappa(vsTruth, w).value, ref.kappaVsTruth[w], POINT);
    }
  });

  it('multi-class confusion, macro and weighted F1, one-vs-rest macro AUC (scikit-learn)', () => {
    const table = contingency(f.data.gradeTruth, f.data.gradePred, 4);
    expect(table).toEqual(ref.multiclass.confusion);
    close(macroF1(table).value, ref.multiclass.macroF1, POINT);
    close(weightedF1(table).value, ref.multiclass.weightedF1, POINT);
    close(ovrMacroAuc(f.data.gradeTruth, f.data.probs, 4).value, ref.multiclass.ovrMacroAuc, POINT);
  });
});
