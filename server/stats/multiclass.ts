import { auc } from './auc';
import { none, some, type Maybe } from './estimate';

/** Per-class F1 from a k x k table (rows truth, columns prediction); a class no case has and none is called is skipped. */
function classF1(table: number[][]): Array<{ f1: number; support: number } | null> {
  return table.map((row, c) => {
    const tp = row[c];
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = table.reduce((s, r) => s + r[c], 0);
    if (support === 0 && predicted === 0) return null;
    return { f1: (2 * tp) / (support + predicted), support };
  });
}

export function macroF1(table: number[][]): Maybe {
  const classes = classF1(table).filter((c): c is { f1: number; support: number } => c !== null);
  return classes.length ? some(classes.reduce((s, c) => s + c.f1, 0) / classes.length) : none('NO_CASES');
}

export function weightedF1(table: number[][]): Maybe {
  const classes = classF1(table).filter((c): c is { f1: number; support: number } => c !== null);
  const total = classes.reduce((s, c) => s + c.support, 0);
  return total ? some(classes.reduce((s, c) => s + c.f1 * c.support, 0) / total) : none('NO_CASES');
}

/** One-vs-rest AUC of each class from per-grade probabilities, averaged (macro); null unless every class occurs. */
export function ovrMacroAuc(truth: ArrayLike<number>, probabilities: ArrayLike<ArrayLike<number>>, k: number): Maybe {
  for (let i = 0; i < probabilities.length; i++) if (probabilities[i].length !== k) return none('MIXED_FEATURES');
  let sum = 0;
  for (let c = 0; c < k; c++) {
    const pos: number[] = [];
    const neg: number[] = [];
    for (let i = 0; i < truth.length; i++) (truth[i] === c ? pos : neg).push(probabilities[i][c]);
    const a = auc(pos, neg);
    if (a.value === null) return none('ONE_CLASS');
    sum += a.value;
  }
  return some(sum / k);
}
