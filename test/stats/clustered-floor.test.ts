import { aucClustered, aucDelong, delongVariance, obuchowskiVariance, placements } from '../../server/stats/auc';
import { seededRandom } from '../../server/stats/bootstrap';
import { comparePaired, type PairedCase } from '../../server/stats/compare';
import { addCluster, clusteredWilson, emptyCount, wilson } from '../../server/stats/proportion';

/**
 * Data where clustering shrinks the variance: within each patient the joints are anti-correlated (one joint's
 * score high, the other's low, around a patient level), so patient sums vary less than independent joints would.
 * The clustered estimate then falls below the per-case one, and the rule says the interval must not follow it.
 */
function antiCorrelated(random: () => number, patients: number) {
  const positives: number[] = [];
  const negatives: number[] = [];
  const positiveClusters: number[] = [];
  const negativeClusters: number[] = [];
  for (let i = 0; i < patients; i++) {
    const spread = 0.3 + 0.4 * random();
    const p = 0.6 + 0.1 * random();
    const n = 0.4 + 0.1 * random();
    positives.push(p + spread * 0.5, p - spread * 0.5);
    negatives.push(n + spread * 0.5, n - spread * 0.5);
    positiveClusters.push(i, i);
    negativeClusters.push(i, i);
  }
  return { positives, negatives, positiveClusters, negativeClusters };
}

const width = (e: { lower: number | null; upper: number | null }) => (e.upper as number) - (e.lower as number);

describe('clustered intervals are never narrower than the per-case ones', () => {
  const random = seededRandom(31);

  it('Obuchowski AUC interval: floored at DeLong where clustering would shrink the variance (generated data)', () => {
    let shrunk = 0;
    for (let trial = 0; trial < 200; trial++) {
      const d = antiCorrelated(random, 5 + Math.floor(random() * 40));
      const p = placements(d.positives, d.negatives)!;
      const raw = obuchowskiVariance(p, d.positiveClusters, d.negativeClusters)!;
      const perCase = delongVariance(p)!;
      if (raw < perCase) shrunk++;
      const clustered = aucClustered(d.positives, d.negatives, d.positiveClusters, d.negativeClusters);
      const plain = aucDelong(d.positives, d.negatives);
      expect(clustered.variance).toBe(raw); // the estimate itself is Obuchowski's, reported as is
      expect(clustered.lower!).toBeLessThanOrEqual(plain.lower! + 1e-15);
      expect(clustered.upper!).toBeGreaterThanOrEqual(plain.upper! - 1e-15);
      if (raw < perCase) expect(width(clustered)).toBeCloseTo(width(plain), 12);
    }
    // The generator does what it is for: clustering shrinks the variance in (nearly) every trial.
    expect(shrunk).toBeGreaterThan(150);
  });

  it('paired AUC difference: the clustered interval is never narrower than the per-case one (generated data)', () => {
    for (let trial = 0; trial < 60; trial++) {
      const patients = 6 + Math.floor(random() * 30);
      const cases: PairedCase[] = [];
      for (let i = 0; i < patients; i++) {
        const spread = 0.2 + 0.5 * random();
        for (const truth of [0, 1, 0, 1]) {
          const sign = cases.length % 4 < 2 ? 1 : -1;
          const base = truth ? 0.6 : 0.4;
          const probability = Math.min(0.99, Math.max(0.01, base + (sign * spread) / 2 + 0.05 * (random() - 0.5)));
          const readerGrade = random() < (truth ? 0.7 : 0.3) ? 1 : 0;
          cases.push({ cluster: i, truth, modelGrade: probability >= 0.5 ? 1 : 0, modelProbabilities: [1 - probability, probability], readerGrade });
        }
      }
      const options = { threshold: 1, level: 0.95, bootstrap: { replicates: 50, seed: 1 } };
      const clustered = comparePaired(cases, { ...options, clustered: true }).find((d) => d.metric === 'AUC')!;
      const plain = comparePaired(cases, { ...options, clustered: false }).find((d) => d.metric === 'AUC')!;
      if (plain.difference.lower === null) continue;
      expect(width(clustered.difference)).toBeGreaterThanOrEqual(width(plain.difference) - 1e-12);
      expect(clustered.p!).toBeGreaterThanOrEqual(plain.p! - 1e-12);
    }
  });

  it('clustered Wilson interval: the same rule, through a design effect floored at 1 (generated data)', () => {
    for (let trial = 0; trial < 200; trial++) {
      let count = emptyCount();
      // Each patient one success and one failure: the patient proportions vary less than independent joints.
      const patients = 3 + Math.floor(random() * 60);
      for (let i = 0; i < patients; i++) count = addCluster(count, 1 + (random() < 0.1 ? 1 : 0), 2 + (random() < 0.1 ? 1 : 0));
      const clustered = clusteredWilson(count);
      const plain = wilson(count.x, count.n);
      expect(clustered.lower!).toBeLessThanOrEqual(plain.lower! + 1e-15);
      expect(clustered.upper!).toBeGreaterThanOrEqual(plain.upper! - 1e-15);
    }
  });
});
