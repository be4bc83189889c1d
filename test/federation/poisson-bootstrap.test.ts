import { BootstrapWeightError, poissonWeights } from '../../server/federation/poisson-bootstrap';
import { quantile } from '../../server/stats/bootstrap';
import { Gen } from './generators';

const KEY = Buffer.alloc(32, 7);

describe(poissonWeights.name, () => {
  it('is a function of the node key, the seed and the patient only', () => {
    const w = poissonWeights(KEY, 'seed-1', 'NORTH/P001', 50);
    expect(poissonWeights(KEY, 'seed-1', 'NORTH/P001', 50)).toEqual(w);
    expect(poissonWeights(KEY, 'seed-1', 'NORTH/P001', 80).subarray(0, 50)).toEqual(w);
    expect(poissonWeights(KEY, 'seed-2', 'NORTH/P001', 50)).not.toEqual(w);
    expect(poissonWeights(KEY, 'seed-1', 'NORTH/P002', 50)).not.toEqual(w);
    expect(poissonWeights(Buffer.alloc(32, 8), 'seed-1', 'NORTH/P001', 50)).not.toEqual(w);
  });

  it('draws Poisson(1) weights (chi-square goodness of fit, mean and variance 1)', () => {
    const counts = new Array(6).fill(0);
    let sum = 0;
    let squares = 0;
    const total = 400 * 250;
    for (let p = 0; p < 400; p++) {
      for (const w of poissonWeights(KEY, 'fit', `SITE/P${p}`, 250)) {
        counts[Math.min(w, 5)]++;
        sum += w;
        squares += w * w;
      }
    }
    const pmf = [0, 1, 2, 3, 4].map((k) => Math.exp(-1) / [1, 1, 2, 6, 24][k]);
    const expected = [...pmf, 1 - pmf.reduce((a, b) => a + b, 0)].map((p) => p * total);
    const chiSquare = counts.reduce((s, c, k) => s + (c - expected[k]) ** 2 / expected[k], 0);
    // 5 degrees of freedom: the 99.9% point is 20.5.
    expect(chiSquare).toBeLessThan(20.5);
    const mean = sum / total;
    expect(Math.abs(mean - 1)).toBeLessThan(0.015);
    expect(Math.abs(squares / total - mean * mean - 1)).toBeLessThan(0.03);
  });

  it("gives per-replicate sums at each site that add up to the union's, and so the same interval (generated cohorts)", () => {
    const gen = new Gen(2006);
    for (let trial = 0; trial < 5; trial++) {
      const B = 300;
      // Patients with x of n joints positive, spread over three sites.
      const patients = Array.from({ length: gen.int(20, 60) }, (_, i) => {
        const n = gen.int(1, 10);
        return { key: `${gen.pick(['NORTH', 'HARBOUR', 'VALLEY'])}/P${i}`, x: gen.int(0, n), n };
      });
      const sums = (group: typeof patients) => {
        const x = new Array(B).fill(0);
        const n = new Array(B).fill(0);
        for (const p of group) {
          poissonWeights(KEY, `trial-${trial}`, p.key, B).forEach((w, r) => {
            x[r] += w * p.x;
            n[r] += w * p.n;
          });
        }
        return { x, n };
      };
      const union = sums(patients);
      const perSite = ['NORTH', 'HARBOUR', 'VALLEY'].map((s) => sums(patients.filter((p) => p.key.startsWith(`${s}/`))));
      const pooled = { x: union.x.map((_, r) => perSite.reduce((t, s) => t + s.x[r], 0)), n: union.n.map((_, r) => perSite.reduce((t, s) => t + s.n[r], 0)) };
      expect(pooled).toEqual(union);
      const interval = (s: { x: number[]; n: number[] }) => {
        const ratios = s.x
          .map((x, r) => x / s.n[r])
          .filter(Number.isFinite)
          .sort((a, b) => a - b);
        return [quantile(ratios, 0.025), quantile(ratios, 0.975)];
      };
      expect(interval(pooled)).toEqual(interval(union));
    }
  });

  it.each<[string, Buffer, number]>([
    ['a short key', Buffer.alloc(16), 10],
    ['zero replicates', KEY, 0],
    ['a fractional count', KEY, 2.5],
    ['too many replicates', KEY, 100_001],
  ])('refuses %s', (_what, key, replicates) => {
    expect(() => poissonWeights(key, 's', 'p', replicates)).toThrow(BootstrapWeightError);
  });
});
