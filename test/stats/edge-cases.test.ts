import { aucClustered } from '../../server/stats/auc';
import { comparePaired, type PairedCase } from '../../server/stats/compare';
import { computeGroup, type GradedCase } from '../../server/stats/engine';
import { addCluster, clusteredWilson, emptyCount, wilson } from '../../server/stats/proportion';

/** The cases where a clustered interval could claim more than the data holds. */
describe('clustered intervals at the edges', () => {
  it('give no Obuchowski interval when every positive is one patient’s', () => {
    const pos = [0.9, 0.8, 0.7];
    const neg = Array.from({ length: 40 }, (_, i) => i / 40);
    const e = aucClustered(
      pos,
      neg,
      [0, 0, 0],
      neg.map((_, i) => 1 + (i % 20)),
    );
    expect(e).toMatchObject({ lower: null, upper: null, reason: 'ONE_CLUSTER' });
  });

  it('never make a clustered proportion interval narrower than the unclustered one, also at 100%', () => {
    let all = emptyCount();
    for (let p = 0; p < 10; p++) all = addCluster(all, 100, 100);
    const clustered = clusteredWilson(all);
    expect(clustered.lower as number).toBeLessThan(wilson(1000, 1000).lower as number);
    let tight = emptyCount();
    for (const x of [99, 98, 100, 99, 98, 100, 99, 98]) tight = addCluster(tight, x, 100);
    expect(clusteredWilson(tight).lower as number).toBeLessThanOrEqual(wilson(tight.x, tight.n).lower as number);
    expect(clusteredWilson(addCluster(emptyCount(), 3, 4))).toMatchObject({ value: null, reason: 'ONE_CLUSTER' });
  });

  it('withhold bootstrap intervals that rest on too few patients with the needed cases', () => {
    const cases: GradedCase[] = [];
    for (let p = 0; p < 40; p++) for (let j = 0; j < 5; j++) cases.push({ cluster: p, truth: p === 0 ? 1 : 0, grade: (p + j) % 3 === 0 ? 1 : 0 });
    const m = computeGroup(cases, { threshold: 1, grades: 2, level: 0.95, clustered: true, bootstrap: { replicates: 500, seed: 1 } });
    expect(m.youden).toMatchObject({ lower: null, reason: 'FEW_CLUSTERS' });
    expect(m.sensitivity.reason).toBe('ONE_CLUSTER');
  });

  it('never report a bootstrap p-value of 0', () => {
    const cases: PairedCase[] = [];
    for (let p = 0; p < 30; p++) for (let j = 0; j < 4; j++) cases.push({ cluster: p, truth: j % 2, modelGrade: j % 2, readerGrade: 1 - (j % 2) });
    const result = comparePaired(cases, { threshold: 1, level: 0.95, clustered: true, bootstrap: { replicates: 400, seed: 2 } });
    for (const d of result) if (d.p !== null) expect(d.p).toBeGreaterThan(0);
    expect(result.find((d) => d.metric === 'SENSITIVITY')?.p).toBeCloseTo(2 / 401, 12);
  });
});
