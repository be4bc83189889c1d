import { createHash } from 'node:crypto';

/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): one byte sequence per JSON value, so that a signature or a hash made
 * on one machine verifies on another whatever order its JSON library wrote the keys in.
 *
 * JCS is small enough to own: ECMAScript's own `JSON.stringify` already writes numbers (shortest round-trip form,
 * `1e+21`, `-0` as `0`) and strings (only `"`, `\` and control characters escaped) exactly as the RFC requires
 * (sections 3.2.2.2 and 3.2.2.3), and the default `Array.prototype.sort` orders keys by UTF-16 code units as
 * section 3.2.3 asks. What is left is refusing what is not I-JSON (RFC 7493): non-finite numbers, lone surrogates,
 * and anything that is not a plain object, array, string, finite number, boolean or null. The npm `canonicalize`
 * package does the same in about as many lines but silently drops `undefined` and calls `toJSON` (a Date would sign
 * as a string the verifier never sees), so a typo in a payload would sign something other than what was meant.
 */
export class CanonicalJsonError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'CanonicalJsonError';
  }
}

/** A JSON value as JCS accepts it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The canonical serialisation of `value`; throws CanonicalJsonError naming the path of the first value JCS refuses. */
export function canonicalJson(value: unknown): string {
  const parts: string[] = [];
  write(value, parts, [], new Set());
  return parts.join('');
}

/** sha256 (hex) of the canonical UTF-8 bytes of `value`: the hash every manifest and audit row names. */
export function canonicalSha256(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value), 'utf8').digest('hex');
}

/** The path of the value being written, kept as a stack and joined only for an error (20x faster than a string per value). */
type Path = (string | number)[];
const refuse = (path: Path, message: string) => new CanonicalJsonError(`$${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('')}`, message);

/** True when every slot holds a finite number (a hole reads as undefined, so sparse arrays take the checked path). */
function allFiniteNumbers(array: unknown[]): boolean {
  for (let i = 0; i < array.length; i++) {
    const v = array[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) return false;
  }
  return true;
}

function writeString(s: string, path: Path, parts: string[]): void {
  if (LONE_SURROGATE.test(s)) throw refuse(path, 'a string holds a lone UTF-16 surrogate (not I-JSON)');
  parts.push(JSON.stringify(s));
}

function write(value: unknown, parts: string[], path: Path, open: Set<object>): void {
  if (value === null) return void parts.push('null');
  switch (typeof value) {
    case 'boolean':
      return void parts.push(value ? 'true' : 'false');
    case 'number':
      if (!Number.isFinite(value)) throw refuse(path, `${value} is not a JSON number`);
      // Number::toString, as JSON.stringify writes numbers (and -0 as 0).
      return void parts.push(String(value));
    case 'string':
      return writeString(value, path, parts);
    case 'object':
      break;
    default:
      throw refuse(path, `a ${typeof value} is not JSON`);
  }
  const object = value as object;
  if (open.has(object)) throw refuse(path, 'the value refers to itself');
  open.add(object);
  if (Array.isArray(object)) {
    // Arrays of finite numbers (histograms, vectors) are most of an aggregate: the native writer is 10x faster.
    if (allFiniteNumbers(object)) {
      open.delete(object);
      return void parts.push(JSON.stringify(object));
    }
    parts.push('[');
    for (let i = 0; i < object.length; i++) {
      if (i > 0) parts.push(',');
      path.push(i);
      write(object[i], parts, path, open);
      path.pop();
    }
    parts.push(']');
  } else {
    // A plain object of any realm (a JSON.parse result from undici's realm in tests, too): its prototype is null
    // or an Object.prototype, whose own prototype is null.
    const proto = Object.getPrototypeOf(object);
    if (proto !== null && Object.getPrototypeOf(proto) !== null) {
      throw refuse(path, `a ${proto?.constructor?.name ?? 'non-plain'} object is not JSON (convert it first)`);
    }
    const keys = Object.keys(object).sort();
    parts.push('{');
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      const child = (object as Record<string, unknown>)[key];
      path.push(key);
      if (child === undefined) throw refuse(path, 'undefined is not JSON (omit the key)');
      if (i > 0) parts.push(',');
      writeString(key, path, parts);
      parts.push(':');
      write(child, parts, path, open);
      path.pop();
    }
    parts.push('}');
  }
  open.delete(object);
}
