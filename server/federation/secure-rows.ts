import { decodeFixedPoint, DEFAULT_FRACTION_BITS, encodeFixedPoint } from './fixed-point';
import { FederationTaskKind } from './protocol';

/**
 * A pooled row's numbers as one vector for secure summation (secure-sum.ts): the group's patients, then each value
 * field in a fixed order, each in fixed point with the fraction bits its kind needs (0 for counts, which stay exact;
 * 32 for the AUC's placement sums, error at most 2^-33 per site and value). Every site encodes a pooled key the same
 * way, so the masked vectors add up and the hub decodes only the total.
 */

export class RowLayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RowLayoutError';
  }
}

export interface RowField {
  name: string;
  length: number;
  fractionBits: number;
  /** A single number in the group's values rather than an array. */
  scalar?: boolean;
}

export interface RowLayout {
  fields: RowField[];
  /** Values in all: the patients, then every field's. */
  length: number;
}

const layoutOf = (fields: RowField[]): RowLayout => ({ fields, length: 1 + fields.reduce((s, f) => s + f.length, 0) });

/**
 * The layout of a pooled row of `kind`: `lengths` gives each array field's length (bins, replicates, sums); the
 * fields a hub pools (a site row's own `siteSums` travel in plain with the site row, not in the sum).
 */
export function rowLayout(kind: FederationTaskKind, lengths: Record<string, number>): RowLayout {
  const need = (name: string): number => {
    const n = lengths[name];
    if (!Number.isInteger(n) || n < 1) throw new RowLayoutError(`the length of ${name} is needed`);
    return n;
  };
  switch (kind) {
    case FederationTaskKind.BINARY_COUNTS:
      return layoutOf([
        ...['tp', 'fp', 'tn', 'fn'].map((name) => ({ name, length: 1, fractionBits: 0, scalar: true })),
        ...['clusters', 'x', 'n', 'xx', 'xn', 'nn'].map((name) => ({ name, length: need(name), fractionBits: 0 })),
      ]);
    case FederationTaskKind.SCORE_HISTOGRAM:
      return layoutOf(['positives', 'negatives'].map((name) => ({ name, length: need(name), fractionBits: 0 })));
    case FederationTaskKind.PLACEMENT_SUMS:
      return layoutOf([{ name: 'sums', length: need('sums'), fractionBits: DEFAULT_FRACTION_BITS }]);
    case FederationTaskKind.BOOTSTRAP_SUMS:
      return layoutOf(['tp', 'fp', 'tn', 'fn'].map((name) => ({ name, length: need(name), fractionBits: 0 })));
    default:
      throw new RowLayoutError(`${kind} rows are not secure-summed`);
  }
}

/** One site's group as its vector (a key it has no group for: `values` null, all zeros, so the sum is unchanged). */
export function encodeRow(layout: RowLayout, patients: number, values: Record<string, number | number[]> | null, maxTerms: number): BigUint64Array {
  const out = new BigUint64Array(layout.length);
  out.set(encodeFixedPoint([values === null ? 0 : patients], { fractionBits: 0, maxTerms }), 0);
  let at = 1;
  for (const field of layout.fields) {
    const raw = values === null ? new Array<number>(field.length).fill(0) : values[field.name];
    const numbers = Array.isArray(raw) ? raw : [raw];
    if (Array.isArray(raw) === Boolean(field.scalar) || numbers.length !== field.length || numbers.some((v) => typeof v !== 'number')) {
      throw new RowLayoutError(`${field.name}: expected ${field.length} number(s)`);
    }
    out.set(encodeFixedPoint(numbers, { fractionBits: field.fractionBits, maxTerms }), at);
    at += field.length;
  }
  return out;
}

/** The hub's decoding of an unmasked total. */
export function decodeRow(layout: RowLayout, total: BigUint64Array): { patients: number; values: Record<string, number | number[]> } {
  if (total.length !== layout.length) throw new RowLayoutError(`a total of ${total.length} values does not fit a layout of ${layout.length}`);
  const [patients] = decodeFixedPoint(total.subarray(0, 1), { fractionBits: 0, maxTerms: 1 });
  const values: Record<string, number | number[]> = {};
  let at = 1;
  for (const field of layout.fields) {
    const decoded = decodeFixedPoint(total.subarray(at, at + field.length), { fractionBits: field.fractionBits, maxTerms: 1 });
    values[field.name] = field.scalar ? decoded[0] : decoded;
    at += field.length;
  }
  return { patients, values };
}
