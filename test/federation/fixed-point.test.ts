import { addModulo, decodeFixedPoint, encodeFixedPoint, FixedPointError, termLimit } from '../../server/federation/fixed-point';
import { Gen } from './generators';

describe('fixed point modulo 2^64', () => {
  it('encodes and decodes reals of either sign within half a unit in the last place (generated values)', () => {
    const gen = new Gen(64);
    for (let round = 0; round < 200; round++) {
      const format = { fractionBits: gen.pick([0, 8, 20, 32, 40]), maxTerms: gen.int(1, 9) };
      const magnitude = 2 ** gen.int(-10, 52 - format.fractionBits - 4);
      const values = Array.from({ length: gen.int(1, 40) }, () => (gen.random() - 0.5) * 2 * magnitude);
      const decoded = decodeFixedPoint(encodeFixedPoint(values, format), format);
      values.forEach((x, i) => expect(Math.abs(decoded[i] - x)).toBeLessThanOrEqual(2 ** -(format.fractionBits + 1)));
    }
  });

  it('sums encodings of several sites to the encoding of the sum, negative totals included (generated)', () => {
    const gen = new Gen(65);
    for (let round = 0; round < 200; round++) {
      const sites = gen.int(2, 7);
      const format = { fractionBits: 32, maxTerms: sites };
      const length = gen.int(1, 20);
      const perSite = Array.from({ length: sites }, () => Array.from({ length }, () => (gen.random() - 0.6) * 1e6));
      const total = decodeFixedPoint(addModulo(perSite.map((v) => encodeFixedPoint(v, format))), format);
      for (let i = 0; i < length; i++) {
        const plain = perSite.reduce((s, v) => s + v[i], 0);
        // Each site rounds once (2^-33) and the float reference adds its own rounding (~1e6 * 2^-52 per addition).
        expect(Math.abs(total[i] - plain)).toBeLessThanOrEqual(sites * 2 ** -33 + sites * 1e6 * 2 ** -52);
      }
    }
  });

  it('keeps counts exact at fractionBits 0 up to the term limit, where maxTerms of them still fit in 64 bits', () => {
    const format = { fractionBits: 0, maxTerms: 7 };
    const limit = Number(termLimit(format));
    // The largest safe integer within the limit: the sum of 7 of them must come back exactly.
    const big = Math.min(limit, Number.MAX_SAFE_INTEGER);
    const sum = addModulo(Array.from({ length: 7 }, () => encodeFixedPoint([big, -big, 3], format)));
    expect(Array.from(sum, (u) => BigInt.asIntN(64, u))).toEqual([7n * BigInt(big), -7n * BigInt(big), 21n]);
  });

  it('refuses a value too large for maxTerms of it to add up in 64 bits (OUT_OF_RANGE, with its index)', () => {
    const format = { fractionBits: 0, maxTerms: 4096 };
    // (2^63 - 1) / 2^12 rounds down to 2^51 - 1: a contribution of 2^51 cannot be added 4096 times.
    expect(termLimit(format)).toBe(2n ** 51n - 1n);
    expect(() => encodeFixedPoint([1, 2 ** 51 - 1], format)).not.toThrow();
    expect(() => encodeFixedPoint([1, 2 ** 51], format)).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE', index: 1 }));
    expect(() => encodeFixedPoint([-(2 ** 51)], format)).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE', index: 0 }));
    expect(() => encodeFixedPoint([0.5, 2 ** 40], { fractionBits: 11, maxTerms: 4096 })).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE', index: 1 }));
    // Beyond 2^53 at this scale a double has lost units: refused rather than silently rounded.
    expect(() => encodeFixedPoint([2 ** 14], { fractionBits: 40, maxTerms: 1 })).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE' }));
  });

  it.each([NaN, Infinity, -Infinity])('refuses %p (NOT_FINITE)', (x) => {
    expect(() => encodeFixedPoint([0, x], { fractionBits: 0, maxTerms: 1 })).toThrow(expect.objectContaining({ code: 'NOT_FINITE', index: 1 }));
  });

  it.each([
    { fractionBits: -1, maxTerms: 1 },
    { fractionBits: 53, maxTerms: 1 },
    { fractionBits: 1.5, maxTerms: 1 },
    { fractionBits: 0, maxTerms: 0 },
  ])('refuses the format %p (BAD_FORMAT)', (format) => {
    expect(() => encodeFixedPoint([1], format)).toThrow(FixedPointError);
    expect(() => decodeFixedPoint(new BigUint64Array(1), format)).toThrow(expect.objectContaining({ code: 'BAD_FORMAT' }));
  });

  it('refuses to add vectors of different lengths, or none', () => {
    expect(() => addModulo([new BigUint64Array(2), new BigUint64Array(3)])).toThrow(expect.objectContaining({ code: 'BAD_FORMAT' }));
    expect(() => addModulo([])).toThrow(FixedPointError);
  });
});
