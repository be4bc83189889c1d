import { none, some, type Maybe } from './estimate';

export type KappaWeights = 'unweighted' | 'linear' | 'quadratic';

/** k x k table of `a` (rows) against `b` (columns) over the grades 0..k-1. */
export function contingency(a: ArrayLike<number>, b: ArrayLike<number>, k: number): number[][] {
  const table = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < a.length; i++) table[a[i]][b[i]]++;
  return table;
}

/**
 * Cohen's kappa from a k x k table, unweighted or with linear |i-j| or quadratic (i-j)^2 disagreement weights
 * (as sklearn's cohen_kappa_score with all k grades present). Null when the expected disagreement is zero.
 */
export function kappa(table: number[][], weights: KappaWeights): Maybe {
  const k = table.length;
  const n = table.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  if (n === 0) return none('NO_CASES');
  const rows = table.map((row) => row.reduce((a, b) => a + b, 0));
  const cols = table[0].map((_, j) => table.reduce((s, row) => s + row[j], 0));
  const w = (i: number, j: number) => (weights === 'unweighted' ? (i === j ? 0 : 1) : weights === 'linear' ? Math.abs(i - j) : (i - j) * (i - j));
  let observed = 0;
  let expected = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      observed += w(i, j) * table[i][j];
      expected += (w(i, j) * rows[i] * cols[j]) / n;
    }
  }
  return expected > 0 ? some(1 - observed / expected) : none('ONE_CLASS');
}

export function percentAgreement(table: number[][]): Maybe {
  const n = table.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  return n ? some(table.reduce((s, row, i) => s + row[i], 0) / n) : none('NO_CASES');
}
