import { none, some, type Maybe } from './estimate';

/** Confusion counts of a binary call against the reference. */
export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export const emptyConfusion = (): Confusion => ({ tp: 0, fp: 0, tn: 0, fn: 0 });
export const mergeConfusion = (a: Confusion, b: Confusion): Confusion => ({ tp: a.tp + b.tp, fp: a.fp + b.fp, tn: a.tn + b.tn, fn: a.fn + b.fn });

export function confusionOf(truth: ArrayLike<boolean | number>, predicted: ArrayLike<boolean | number>): Confusion {
  const c = emptyConfusion();
  for (let i = 0; i < truth.length; i++) {
    const t = Boolean(truth[i]);
    const p = Boolean(predicted[i]);
    if (t && p) c.tp++;
    else if (t) c.fn++;
    else if (p) c.fp++;
    else c.tn++;
  }
  return c;
}

export interface BinaryMetrics {
  n: number;
  prevalence: Maybe;
  accuracy: Maybe;
  sensitivity: Maybe;
  specificity: Maybe;
  precision: Maybe;
  npv: Maybe;
  f1: Maybe;
  youden: Maybe;
}

const ratio = (x: number, n: number, reason: Parameters<typeof none>[0]): Maybe => (n > 0 ? some(x / n) : none(reason));

/** Point estimates from counts; a value that needs cases the data lacks is null with the reason. */
export function binaryMetrics(c: Confusion): BinaryMetrics {
  const n = c.tp + c.fp + c.tn + c.fn;
  const sensitivity = ratio(c.tp, c.tp + c.fn, 'NO_POSITIVES');
  const specificity = ratio(c.tn, c.tn + c.fp, 'NO_NEGATIVES');
  const precision = ratio(c.tp, c.tp + c.fp, 'NO_PREDICTED_POSITIVES');
  return {
    n,
    prevalence: ratio(c.tp + c.fn, n, 'NO_CASES'),
    accuracy: ratio(c.tp + c.tn, n, 'NO_CASES'),
    sensitivity,
    specificity,
    precision,
    npv: ratio(c.tn, c.tn + c.fn, 'NO_PREDICTED_NEGATIVES'),
    // F1 is the harmonic mean of precision and recall: undefined without positives (recall is).
    f1: c.tp + c.fn === 0 ? none('NO_POSITIVES') : some((2 * c.tp) / (2 * c.tp + c.fp + c.fn)),
    youden:
      sensitivity.value !== null && specificity.value !== null
        ? some(sensitivity.value + specificity.value - 1)
        : none(sensitivity.reason ?? (specificity.reason as 'NO_NEGATIVES')),
  };
}
