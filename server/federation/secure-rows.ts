import { decodeFixedPoint, DEFAULT_FRACTION_BITS, encodeFixedPoint } from './fixed-point';
import { FederationTaskKind } from './protocol';

/**
 * A pooled row's numbers as one vector for secure summation (secure-sum.ts): the group's patients, then each value
 * field in a fixed order, each in fixed point with the fraction bits its kind needs (0 for counts, which stay exact;
 * 32 for the AUC's placement sums, error at most 2^-33 per site and value). Every site encodes a pooled key the same
 * way, so the masked vectors add up and the hub decodes only the total.
 *
 * Which kinds are secure-summed, and how, is one registration each in SECURE_ROW_KINDS: a task kind whose pooled rows
 * are sums of its groups' values names its pooled fields there (a site row's own extras, such as the AUC's `siteSums`,
 * are not pooled and are left out). Everything else (the node's masking, the hub's rounds, `facet verify`) is generic.
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

/** A pooled field of a kind: its name, whether it is one number or an array, and its fraction bits. */
export interface PooledField {
  name: string;
  scalar?: boolean;
  fractionBits: number;
}

const counts = (names: readonly string[], scalar = false): PooledField[] => names.map((name) => ({ name, scalar, fractionBits: 0 }));

/**
 * The kinds whose pooled rows go through secure summation, each with its pooled fields in vector order. A new kind
 * that pools by summing its groups is secure-summed by adding its line here.
 */
export const SECURE_ROW_KINDS: Partial<Record<FederationTaskKind, readonly PooledField[]>> = {
  [FederationTaskKind.STUDY_FLOW]: counts(['enrolled', 'excluded', 'eligible', 'joints', 'assessable', 'notAssessable', 'analysed'], true),
  [FederationTaskKind.BINARY_COUNTS]: [...counts(['tp', 'fp', 'tn', 'fn'], true), ...counts(['clusters', 'x', 'n', 'xx', 'xn', 'nn'])],
  [FederationTaskKind.SCORE_HISTOGRAM]: counts(['positives', 'negatives']),
  [FederationTaskKind.PLACEMENT_SUMS]: [{ name: 'sums', fractionBits: DEFAULT_FRACTION_BITS }],
  [FederationTaskKind.BOOTSTRAP_SUMS]: counts(['tp', 'fp', 'tn', 'fn']),
  [FederationTaskKind.AGREEMENT_TABLE]: counts(['table', 'discordant']),
};

export const isSecureRowKind = (kind: string): kind is FederationTaskKind => Object.prototype.hasOwnProperty.call(SECURE_ROW_KINDS, kind);

const layoutOf = (fields: RowField[]): RowLayout => ({ fields, length: 1 + fields.reduce((s, f) => s + f.length, 0) });

/**
 * The layout of a pooled row of `kind`: `lengths` gives each array field's length (bins, replicates, sums); the
 * fields a hub pools (a site row's own `siteSums` travel in plain with the site row, not in the sum).
 */
export function rowLayout(kind: FederationTaskKind, lengths: Record<string, number>): RowLayout {
  const fields = SECURE_ROW_KINDS[kind];
  if (!fields) throw new RowLayoutError(`${kind} rows are not secure-summed`);
  return layoutOf(
    fields.map((f) => {
      if (f.scalar) return { name: f.name, length: 1, fractionBits: f.fractionBits, scalar: true };
      const n = lengths[f.name];
      if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new RowLayoutError(`the length of ${f.name} is needed`);
      return { name: f.name, length: n, fractionBits: f.fractionBits };
    }),
  );
}

/** The array lengths of a group's pooled fields, as a round declares them (scalars have none). */
export function pooledLengths(kind: FederationTaskKind, values: Record<string, number | number[]>): Record<string, number> {
  const fields = SECURE_ROW_KINDS[kind];
  if (!fields) throw new RowLayoutError(`${kind} rows are not secure-summed`);
  const out: Record<string, number> = {};
  for (const f of fields) {
    if (f.scalar) continue;
    const value = values[f.name];
    if (!Array.isArray(value)) throw new RowLayoutError(`${f.name}: expected an array`);
    out[f.name] = value.length;
  }
  return out;
}

/** One site's group as its vector (a key it has no group for: `values` null, all zeros, so the sum is unchanged). */
export function encodeRow(layout: RowLayout, patients: number, values: Record<string, number | number[]> | null, maxTerms: number): BigUint64Array {
  const out = new BigUint64Array(layout.length);
  out.set(encodeFixedPoint([values === null ? 0 : patients], { fractionBits: 0, maxTerms }), 0);
  let at = 1;
  for (const field of layout.fields) {
    const zeros = field.scalar ? 0 : new Array<number>(field.length).fill(0);
    const raw = values === null ? zeros : values[field.name];
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

/** A round's vector: every pooled key's row, one after the other in the round's key order. */
export function encodeRound(
  layout: RowLayout,
  keys: readonly string[],
  groups: ReadonlyMap<string, { patients: number; values: Record<string, number | number[]> }>,
  maxTerms: number,
): BigUint64Array {
  const out = new BigUint64Array(layout.length * keys.length);
  keys.forEach((key, i) => {
    const group = groups.get(key);
    out.set(encodeRow(layout, group?.patients ?? 0, group?.values ?? null, maxTerms), i * layout.length);
  });
  return out;
}

/** The rows of a round's unmasked total, by key. */
export function decodeRound(
  layout: RowLayout,
  keys: readonly string[],
  total: BigUint64Array,
): Map<string, { patients: number; values: Record<string, number | number[]> }> {
  if (total.length !== layout.length * keys.length) throw new RowLayoutError(`a total of ${total.length} values does not fit ${keys.length} rows`);
  return new Map(keys.map((key, i) => [key, decodeRow(layout, total.subarray(i * layout.length, (i + 1) * layout.length))]));
}
