/**
 * The value representations of PS3.5 Table 6.2-1: the longest value, the characters allowed, the size of binary
 * values. Used to check what Facet reads into a database column and everything Facet writes into a stored object.
 */

interface TextRule {
  /** Longest value in characters (one byte each in the default repertoire), for each value of a multi-valued element. */
  max: number;
  /** The characters one value may hold. */
  chars: RegExp;
  /** Single-valued by its VR (LT, ST, UT, UR): a backslash is text, not a delimiter. */
  single?: boolean;
}

/** Default character repertoire (ISO 646 G0 printable) and ESC, without backslash: what LO, SH, PN, AE may hold. */
const DEFAULT_TEXT = /^[\x20-\x5b\x5d-\x7e\x1b\x80-\xff]*$/;
/** Long text VRs allow the control characters CR, LF, FF, TAB and ESC, and a backslash (they are single-valued). */
const LONG_TEXT = /^[\x20-\x7e\x09\x0a\x0c\x0d\x1b\x80-\xff]*$/;

const TEXT_RULES: Record<string, TextRule> = {
  AE: { max: 16, chars: /^[\x20-\x5b\x5d-\x7e]*$/ },
  AS: { max: 4, chars: /^(\d{3}[DWMY])?$/ },
  CS: { max: 16, chars: /^[A-Z0-9 _]*$/ },
  DA: { max: 8, chars: /^(\d{8})?$/ },
  DS: { max: 16, chars: /^ *([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)? *$/ },
  DT: { max: 26, chars: /^(\d{4,14}(\.\d{1,6})?([+-]\d{4})?)?$/ },
  IS: { max: 12, chars: /^ *([+-]?\d+)? *$/ },
  LO: { max: 64, chars: DEFAULT_TEXT },
  LT: { max: 10240, chars: LONG_TEXT, single: true },
  PN: { max: 64 * 3 + 2, chars: DEFAULT_TEXT },
  SH: { max: 16, chars: DEFAULT_TEXT },
  ST: { max: 1024, chars: LONG_TEXT, single: true },
  TM: { max: 14, chars: /^(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?$/ },
  UC: { max: 0xfffffffe, chars: DEFAULT_TEXT },
  UI: { max: 64, chars: /^[0-9.]*$/ },
  UR: { max: 0xfffffffe, chars: /^[\x21-\x7e]*$/, single: true },
  UT: { max: 0xfffffffe, chars: LONG_TEXT, single: true },
};

/** Binary VRs: the size of one value (their lengths are multiples of it). */
const BINARY_SIZES: Record<string, number> = { AT: 4, FL: 4, FD: 8, OB: 1, OD: 8, OF: 4, OL: 4, OV: 8, OW: 2, SL: 4, SS: 2, SV: 8, UL: 4, US: 2, UV: 8, UN: 1 };

/** The size of one value of a binary VR (2 for a VR that is not binary, the smallest even length). */
export const binaryValueSize = (vr: string): number => Math.max(2, BINARY_SIZES[vr] ?? 2);

/** The values of a text element, padding removed (PS3.5 6.2 pads with a space, UI with a NUL; a space after a UI is common and read too). */
export function textValues(vr: string, text: string): string[] {
  const unpadded = vr === 'UI' ? text.replace(/[\0 ]$/, '') : text.replace(/ +$/, '');
  return TEXT_RULES[vr]?.single ? [unpadded] : unpadded.split('\\');
}

/**
 * What is wrong with a value of this VR, in words, or null when it is valid: its length (even, a multiple of a
 * binary value's size, at most the VR's maximum per value), its characters, and for UI its form (dot-separated
 * numbers). Text is read as single-byte; PN's maximum is 64 per component group.
 */
export function vrProblem(vr: string, bytes: Buffer): string | null {
  if (bytes.length % 2 === 1) return `has an odd length (${bytes.length})`;
  const size = BINARY_SIZES[vr];
  if (size !== undefined) return bytes.length % size === 0 ? null : `is ${bytes.length} bytes, not a multiple of ${size}`;
  const rule = TEXT_RULES[vr];
  if (!rule) return vr === 'SQ' ? null : `has the unknown VR ${vr}`;
  const text = bytes.toString('latin1');
  if (vr !== 'UI' && text.includes('\0')) return 'holds a NUL character';
  for (const value of textValues(vr, text)) {
    if (vr === 'PN') {
      const long = value.split('=').find((group) => group.length > 64);
      if (long !== undefined) return `has a name component group of ${long.length} characters; PN allows 64`;
    } else if (value.length > rule.max) {
      return `has a value of ${value.length} characters; ${vr} allows ${rule.max}`;
    }
    if (!rule.chars.test(vr === 'DA' || vr === 'TM' || vr === 'DT' || vr === 'AS' ? value.trim() : value))
      return `holds characters or a form ${vr} does not allow`;
    if (vr === 'UI' && value !== '' && !/^\d+(\.\d+)*$/.test(value)) return 'is not a UID (numbers separated by single dots)';
  }
  return null;
}

/** IS (PS3.5 Table 6.2-1): a base-10 integer from -2^31 to 2^31 - 1. */
export const IS_MIN = -(2 ** 31);
export const IS_MAX = 2 ** 31 - 1;
