import type { RocPoints } from '../disclosure';

/**
 * The reader-averaged ROC curve of ordinal grades: at each grade threshold (k-1 down to 0) the readers' operating
 * points (FPR, TPR) averaged over the readers (threshold averaging, Fawcett 2006), from (0, 0). It is the curve whose
 * points the readers as a group achieve at a common grade; the MRMC figure of merit stays the mean of the readers'
 * AUCs, not the area under this curve. Readers without both classes have no curve and are left out.
 */
export function readerAveragedRoc(readers: ReadonlyArray<ReadonlyArray<{ grade: number; positive: boolean }>>, grades: number): RocPoints {
  const usable = readers.filter((cases) => cases.some((c) => c.positive) && cases.some((c) => !c.positive));
  const roc: RocPoints = { fpr: [0], tpr: [0], thresholds: [null] };
  if (usable.length === 0) return roc;
  for (let g = grades - 1; g >= 0; g--) {
    let fpr = 0;
    let tpr = 0;
    for (const cases of usable) {
      let positives = 0;
      let negatives = 0;
      let tp = 0;
      let fp = 0;
      for (const c of cases) {
        if (c.positive) {
          positives++;
          if (c.grade >= g) tp++;
        } else {
          negatives++;
          if (c.grade >= g) fp++;
        }
      }
      fpr += fp / negatives;
      tpr += tp / positives;
    }
    roc.fpr.push(fpr / usable.length);
    roc.tpr.push(tpr / usable.length);
    roc.thresholds.push(g);
  }
  return roc;
}
