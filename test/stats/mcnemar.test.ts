import { readFileSync } from 'node:fs';
import path from 'node:path';
import { comparePaired, mcnemarTable, type PairedCase } from '../../server/stats/compare';

interface Design {
  name: string;
  threshold: number;
  truth: number[];
  model: number[];
  reader: number[];
  reference: { bothCorrect: number; modelOnly: number; readerOnly: number; neither: number; p: number };
}

/** Paired grades with statsmodels' table and exact McNemar p (scripts/make-mcnemar-fixture.py). */
const FIXTURE: { cases: Design[] } = JSON.parse(readFileSync(path.resolve(__dirname, '../fixtures/stats/mcnemar/paired-tables.json'), 'utf8'));

describe('mcnemarTable', () => {
  it.each(FIXTURE.cases.map((d) => [d.name, d]))('%s: the full paired 2x2 table and the exact p equal statsmodels', (_name, design) => {
    const d = design as Design;
    const cases: PairedCase[] = d.truth.map((truth, i) => ({ cluster: i, truth, modelGrade: d.model[i], readerGrade: d.reader[i] }));
    const { p, ...table } = mcnemarTable(cases, d.threshold);
    const { p: expectedP, ...expected } = d.reference;
    expect(table).toEqual(expected);
    expect(Math.abs(p - expectedP)).toBeLessThanOrEqual(1e-12 + 1e-9 * expectedP);
    // The per-case comparison's accuracy test is the same test on the same table.
    const accuracy = comparePaired(cases, { threshold: d.threshold, level: 0.95, clustered: false, bootstrap: { replicates: 50, seed: 1 } })[0];
    expect(accuracy).toMatchObject({ metric: 'ACCURACY', test: 'mcnemar-exact', p });
    expect(accuracy.model! - accuracy.reader!).toBeCloseTo((table.modelOnly - table.readerOnly) / d.truth.length, 12);
  });
});
