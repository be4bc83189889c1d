/**
 * The probabilities of one predictions row: what is accepted as rounding residue (and how it is repaired) and
 * what is an error. Pure, so every class of residue and error can be tested without a database.
 */

/**
 * How far a probability may stray outside [0, 1], and a row's sum from 1, and still count as rounding residue:
 * files print probabilities with 4 to 6 decimals, and a model's softmax in float32 carries about 1e-7, so 1e-4
 * holds every honest rounding and no real mistake (a forgotten grade moves the sum by at least a few percent).
 */
export const SUM_TOLERANCE = 1e-4;

/**
 * Below this a row's sum is taken as 1 as it stands: decimals printed exactly (0.1 + 0.2 + 0.7) miss 1 by a few
 * ulps in binary, which is no residue to repair.
 */
const EXACT = 1e-9;

/** A plain decimal number (no hex, no Infinity, no NaN), as a CSV of probabilities prints them. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export type ProbabilityRow =
  /** `adjusted`: a value was clipped into [0, 1] or the row renormalised to sum 1. */
  { ok: true; probabilities: number[]; adjusted: boolean } | { ok: false; reason: string };

/**
 * Reads p0..p(k-1) of a row. Values within SUM_TOLERANCE outside [0, 1] are clipped into it and a row whose sum
 * is within SUM_TOLERANCE of 1 is divided by its sum, so what is stored always lies in [0, 1] and sums to 1;
 * anything further off is an error that names the column.
 */
export function readProbabilities(cells: readonly string[], feature: string): ProbabilityRow {
  const values: number[] = [];
  for (let g = 0; g < cells.length; g++) {
    const cell = cells[g].trim();
    if (cell === '') return { ok: false, reason: `p${g} is missing (${feature} has ${cells.length} grades: p0..p${cells.length - 1})` };
    if (!DECIMAL.test(cell)) return { ok: false, reason: `p${g} is not a number` };
    const p = Number(cell);
    if (p < -SUM_TOLERANCE || p > 1 + SUM_TOLERANCE) return { ok: false, reason: `p${g} = ${cell} lies outside [0, 1] by more than ${SUM_TOLERANCE}` };
    values.push(p);
  }
  const sum = values.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > SUM_TOLERANCE) {
    return { ok: false, reason: `p0..p${cells.length - 1} sum to ${Number(sum.toPrecision(8))}, not 1 within ${SUM_TOLERANCE}` };
  }
  const clipped = values.map((p) => Math.min(1, Math.max(0, p)));
  const wasClipped = clipped.some((p, g) => p !== values[g]);
  const clippedSum = clipped.reduce((a, b) => a + b, 0);
  if (!wasClipped && Math.abs(clippedSum - 1) <= EXACT) return { ok: true, probabilities: values, adjusted: false };
  return { ok: true, probabilities: clipped.map((p) => p / clippedSum), adjusted: true };
}

/** Two stored probability vectors are the same prediction when they are equal value for value (float8 keeps a double exactly). */
export const sameProbabilities = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((p, g) => p === b[g]);
