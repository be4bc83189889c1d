import { argsortFloat64 } from '../../server/stats/argsort';
import { aucDelong, placements } from '../../server/stats/auc';
import { seededRandom } from '../../server/stats/bootstrap';
import { delongVarianceOf, histogramOf, placementTable } from '../../server/stats/sufficient';

describe(argsortFloat64.name, () => {
  it.each([100, 50_000])('sorts %i doubles (negative, zero, ties, extremes) like a comparison sort', (n) => {
    const random = seededRandom(n);
    const values = Float64Array.from({ length: n }, (_, i) =>
      i % 7 === 0 ? Math.round(random() * 10) - 5 : i % 11 === 0 ? -0 : i % 13 === 0 ? 1e300 * (random() - 0.5) : (random() - 0.5) * 1e-3,
    );
    const order = argsortFloat64(values);
    expect(new Set(order).size).toBe(n);
    let sorted = true;
    for (let i = 1; i < n; i++) sorted &&= values[order[i - 1]] <= values[order[i]];
    expect(sorted).toBe(true);
  });
});

describe('placements on the radix path (over 20,000 cases)', () => {
  it('match the histogram computation of AUC and DeLong variance, ties included', () => {
    const random = seededRandom(3);
    const positive = Array.from({ length: 60_000 }, () => random() < 0.3);
    const scores = positive.map((p) => Math.round((0.3 * Number(p) + random()) * 100) / 100);
    const pos = scores.filter((_, i) => positive[i]);
    const neg = scores.filter((_, i) => !positive[i]);
    const h = histogramOf(scores, positive);
    const table = placementTable(h)!;
    expect(placements(pos, neg)!.auc).toBeCloseTo(table.auc, 12);
    expect(aucDelong(pos, neg).variance).toBeCloseTo(delongVarianceOf(h, table) as number, 12);
  });
});
