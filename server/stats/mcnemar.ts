/**
 * The paired 2x2 table of two raters' calls on the same cases: rows the model right or wrong, columns the reader.
 * modelOnly and readerOnly are the discordant cells McNemar's test rests on; bothCorrect and neither complete the
 * table, so a reader of the answer can recompute any paired test (or a clustered one) from it.
 */
export interface PairedTable {
  bothCorrect: number;
  modelOnly: number;
  readerOnly: number;
  neither: number;
}

/** Counts the table from each case's correctness for both raters. */
export function pairedTable(cases: Iterable<{ modelRight: boolean; readerRight: boolean }>): PairedTable {
  const table: PairedTable = { bothCorrect: 0, modelOnly: 0, readerOnly: 0, neither: 0 };
  for (const { modelRight, readerRight } of cases) {
    if (modelRight && readerRight) table.bothCorrect++;
    else if (modelRight) table.modelOnly++;
    else if (readerRight) table.readerOnly++;
    else table.neither++;
  }
  return table;
}

/**
 * Exact McNemar test (as statsmodels' mcnemar(exact=True)): b and c are the discordant pairs; the two-sided
 * binomial p-value of min(b, c) under Bin(b + c, 1/2). With no discordant pair the p-value is 1.
 */
export function mcnemarExact(b: number, c: number): number {
  const n = b + c;
  if (n === 0) return 1;
  const k = Math.min(b, c);
  // Sum of C(n, i) / 2^n for i <= k, in log space so n in the thousands stays exact to double precision.
  let logTerm = -n * Math.LN2; // i = 0
  let cdf = Math.exp(logTerm);
  for (let i = 1; i <= k; i++) {
    logTerm += Math.log((n - i + 1) / i);
    cdf += Math.exp(logTerm);
  }
  return Math.min(1, 2 * cdf);
}
