import { createHash } from 'node:crypto';
import { canonicalJson, canonicalSha256, CanonicalJsonError, type JsonValue } from '../../server/federation/canonical-json';
import { Gen } from './generators';

const fromBits = (hex: string): number => Buffer.from(hex, 'hex').readDoubleBE(0);

/** Rebuilds `value` with every object's keys inserted in a shuffled order. */
function reorder(value: JsonValue, gen: Gen): JsonValue {
  if (Array.isArray(value)) return value.map((v) => reorder(v, gen));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, JsonValue> = {};
  for (const key of gen.shuffle(Object.keys(value))) out[key] = reorder(value[key], gen);
  return out;
}

describe(canonicalJson.name, () => {
  it('sorts keys by UTF-16 code units, recursively, and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x', { z: 0, y: -0 }] })).toBe('{"a":[true,null,"x",{"y":0,"z":0}],"b":1}');
    // RFC 8785 section 3.2.3's key set: U+1F600 (surrogates D83D DE00) sorts before U+FB33, unlike code-point order.
    const keys = ['\u20ac', '\r', '\ufb33', '1', '\ud83d\ude00', '\u0080', '\u00f6'];
    const object = Object.fromEntries(keys.map((k) => [k, 0]));
    expect(canonicalJson(object)).toBe('{"\\r":0,"1":0,"\u0080":0,"\u00f6":0,"\u20ac":0,"\ud83d\ude00":0,"\ufb33":0}');
  });

  it('writes numbers in the ECMAScript shortest form the RFC requires (IEEE 754 bit patterns of its appendix B)', () => {
    const cases: [string, string][] = [
      ['4340000000000000', '9007199254740992'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['0000000000000001', '5e-324'],
      ['8000000000000000', '0'],
      ['44b52d02c7e14af6', '1e+23'],
    ];
    for (const [bits, text] of cases) expect(canonicalJson([fromBits(bits)])).toBe(`[${text}]`);
  });

  it('escapes only quote, backslash and control characters, the short forms where JSON has them', () => {
    expect(canonicalJson('\u0000\b\t\n\f\r"\\/é\u007f\u2028😀')).toBe('"\\u0000\\b\\t\\n\\f\\r\\"\\\\/é\u007f\u2028😀"');
  });

  it('gives one serialisation per value whatever the key order, which parses back to the value (generated values)', () => {
    const gen = new Gen(8785);
    for (let i = 0; i < 400; i++) {
      const value = gen.json(4);
      const text = canonicalJson(value);
      expect(canonicalJson(reorder(value, gen))).toBe(text);
      // Idempotent: the canonical text of what it parses to is itself (-0 becomes 0 on the way, as JCS wants).
      expect(canonicalJson(JSON.parse(text))).toBe(text);
      expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
      expect(canonicalSha256(value)).toBe(createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex'));
    }
  });

  it.each<[string, unknown, string]>([
    ['NaN', { a: [1, NaN] }, '$.a[1]'],
    ['Infinity', { a: -Infinity }, '$.a'],
    ['undefined', { a: { b: undefined } }, '$.a.b'],
    ['a function', [() => 1], '$[0]'],
    ['a bigint', { n: 1n }, '$.n'],
    ['a Date', { at: new Date(0) }, '$.at'],
    ['a Map', new Map(), '$'],
    ['a typed array', { v: new Uint8Array(2) }, '$.v'],
    ['a hole in an array of numbers', { v: [1, , 3] }, '$.v[1]'],
    ['NaN in an array of numbers', { v: [1, 2, NaN] }, '$.v[2]'],
    ['a lone high surrogate', { s: 'a\ud800' }, '$.s'],
    ['a lone low surrogate in a key', { ['\udc00x']: 1 }, '$.\udc00x'],
  ])('refuses %s and names where it is', (_name, value, path) => {
    expect(() => canonicalJson(value)).toThrow(CanonicalJsonError);
    try {
      canonicalJson(value);
    } catch (error) {
      expect((error as CanonicalJsonError).path).toBe(path);
    }
  });

  it('refuses a value that refers to itself but accepts one object reached twice', () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = [cyclic];
    expect(() => canonicalJson(cyclic)).toThrow(/\$\.self\[0\]: the value refers to itself/);
  });
});
