import { readProbabilities, SUM_TOLERANCE } from '../../server/services/prediction-rows';
import { seededRandom } from '../../server/stats/bootstrap';

/** A random probability vector of k grades that sums to 1 (in binary, up to a few ulps). */
function simplex(random: () => number, k: number): number[] {
  const w = Array.from({ length: k }, () => random() + 0.01);
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / total);
}

/** How a generated row is printed: what a CSV writer with `decimals` decimals would print, residue included. */
const print = (p: number[], decimals: number): string[] => p.map((x) => x.toFixed(decimals));

type Residue = { name: string; make: (random: () => number, k: number) => string[] };

/** Classes of rounding residue that must be accepted (within SUM_TOLERANCE), each repaired to a row in [0, 1] summing to 1. */
const RESIDUE: Residue[] = [
  {
    name: 'a tiny negative where the true value is 0 (float32 softmax, -1e-7..-1e-5)',
    make: (random, k) => {
      const p = simplex(random, k);
      const g = Math.floor(random() * k);
      const eps = 10 ** -(5 + random() * 2);
      p[(g + 1) % k] += p[g] + eps;
      p[g] = -eps;
      return p.map((x) => x.toExponential(12));
    },
  },
  {
    name: 'a value just above 1 (1 + 1e-6) and the others tiny negatives',
    make: (random, k) => {
      const eps = 10 ** -(6 + random());
      return Array.from({ length: k }, (_, g) => (g === 0 ? 1 + eps : -eps / (k - 1)).toExponential(12));
    },
  },
  {
    name: 'a sum 1 + delta, |delta| <= k x 5e-6 (5 or 6 printed decimals, each rounded on its own)',
    make: (random, k) => print(simplex(random, k), 5 + Math.floor(random() * 2)),
  },
  {
    name: 'a sum off by up to 0.9 x SUM_TOLERANCE either way',
    make: (random, k) => {
      const p = simplex(random, k);
      const delta = (random() * 2 - 1) * 0.9 * SUM_TOLERANCE;
      return p.map((x) => (x * (1 + delta)).toPrecision(15));
    },
  },
];

type Fault = { name: string; make: (random: () => number, k: number) => string[]; reason: RegExp };

/** Classes of real errors: rejected with a reason that names the column or the sum. */
const FAULTS: Fault[] = [
  {
    name: 'a negative beyond the tolerance',
    make: (random, k) => {
      const p = simplex(random, k);
      const eps = SUM_TOLERANCE * (2 + random() * 1000);
      p[1] += p[0] + eps;
      p[0] = -eps;
      return p.map(String);
    },
    reason: /^p0 = -.* lies outside \[0, 1\] by more than 0.0001$/,
  },
  {
    name: 'a sum off by more than the tolerance',
    make: (random, k) => {
      const factor = 1 + (random() < 0.5 ? -1 : 1) * SUM_TOLERANCE * (3 + random() * 100);
      return simplex(random, k).map((x) => String(x * factor));
    },
    reason: /^p0\.\.p\d sum to [\d.]+, not 1 within 0.0001$/,
  },
  {
    name: 'an empty cell',
    make: (random, k) => simplex(random, k).map((x, g) => (g === k - 1 ? '' : String(x))),
    reason: /^p\d is missing \(F has \d grades: p0\.\.p\d\)$/,
  },
  {
    name: 'text, NaN, Infinity or hex',
    make: (random, k) => simplex(random, k).map((x, g) => (g === 0 ? ['abc', 'NaN', 'Infinity', '0x1', '1/2', '--0.1'][Math.floor(random() * 6)] : String(x))),
    reason: /^p0 is not a number$/,
  },
];

describe('readProbabilities', () => {
  const random = seededRandom(20261201);

  for (const residue of RESIDUE) {
    it(`accepts ${residue.name}: clipped into [0, 1], renormalised, marked adjusted`, () => {
      for (let i = 0; i < 300; i++) {
        const k = 2 + Math.floor(random() * 3);
        const cells = residue.make(random, k);
        const read = readProbabilities(cells, 'F');
        if (!read.ok) throw new Error(`${cells.join(',')} rejected: ${read.reason}`);
        for (const p of read.probabilities) {
          expect(p).toBeGreaterThanOrEqual(0);
          expect(p).toBeLessThanOrEqual(1);
        }
        expect(Math.abs(read.probabilities.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-12);
        const raw = cells.map(Number);
        const rawSum = raw.reduce((a, b) => a + b, 0);
        // Adjusted exactly when the printed row was outside [0, 1] or off 1 by more than float noise.
        expect(read.adjusted).toBe(raw.some((p) => p < 0 || p > 1) || Math.abs(rawSum - 1) > 1e-9);
        // Repair moves no value by more than the residue it removes.
        read.probabilities.forEach((p, g) => expect(Math.abs(p - raw[g])).toBeLessThanOrEqual(2 * SUM_TOLERANCE));
      }
    });
  }

  it('leaves an exact row as printed (no repair, not counted)', () => {
    for (const cells of [
      ['0.1', '0.2', '0.7'],
      ['1', '0'],
      ['0.25', '0.25', '0.25', '0.25'],
      ['0.000000', '1.000000', '0.000000'],
    ]) {
      expect(readProbabilities(cells, 'F')).toEqual({ ok: true, probabilities: cells.map(Number), adjusted: false });
    }
  });

  for (const fault of FAULTS) {
    it(`rejects ${fault.name}, saying which`, () => {
      for (let i = 0; i < 200; i++) {
        const k = 2 + Math.floor(random() * 3);
        const read = readProbabilities(fault.make(random, k), 'F');
        expect(read.ok).toBe(false);
        if (!read.ok) expect(read.reason).toMatch(fault.reason);
      }
    });
  }
});
