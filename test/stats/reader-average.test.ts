import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { seededRandom } from '../../server/stats/bootstrap';
import { computeGroup } from '../../server/stats/engine';
import { compareReaderAveraged, computeReaderAveraged, type ReaderCase, type ReaderPairedCase } from '../../server/stats/reader-average';

/**
 * Reader-averaged metrics and the model-vs-readers comparison against test/fixtures/stats/reader-average, made by
 * scripts/make-stats-fixtures.py: each reader's metrics by scikit-learn (with sample weights on the bootstrap
 * resamples), averaged over readers in Python, the percentile of the averages by numpy.
 */
const DIR = path.resolve(__dirname, '../fixtures/stats/reader-average');

interface FixtureCase {
  patient: string;
  cell: string;
  truth: number;
  grade: number;
  probs: number[];
}

interface Fixture {
  name: string;
  threshold: number;
  grades: number;
  clustered: boolean;
  level: number;
  replicates: number;
  seed: number;
  readers: Array<{ code: string; cases: FixtureCase[] }>;
  reference: {
    firstDraws: number[];
    metrics: Record<string, { value: number; lower: number | null; upper: number | null; readers: number } | null>;
    compare: Record<
      string,
      { model: number; reader: number; difference: number; lower: number | null; upper: number | null; p: number | null; readers: number } | null
    >;
    multiclass: {
      confusion: number[][];
      macroF1: number | null;
      weightedF1: number | null;
      ovrMacroAuc: number | null;
      linearKappa: number | null;
      quadraticKappa: number | null;
    };
  };
}

const FIXTURES = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as Fixture);

const TOLERANCE = 1e-9;
const close = (actual: number | null, expected: number | null) => {
  if (expected === null) expect(actual).toBeNull();
  else expect(Math.abs((actual as number) - expected)).toBeLessThanOrEqual(TOLERANCE);
};

/** Patients and cells numbered by first appearance, readers in file order: as the metrics service numbers them. */
function numbered(f: Fixture) {
  const patients = new Map<string, number>();
  const cells = new Map<string, number>();
  const index = (map: Map<string, number>, key: string) => map.get(key) ?? (map.set(key, map.size).get(key) as number);
  return f.readers.map((r) =>
    r.cases.map((c) => ({ cluster: index(patients, c.patient), cell: index(cells, c.cell), truth: c.truth, grade: c.grade, probabilities: c.probs })),
  );
}

const options = (f: Fixture) => ({
  threshold: f.threshold,
  grades: f.grades,
  level: f.level,
  clustered: f.clustered,
  bootstrap: { replicates: f.replicates, seed: f.seed },
});

describe('reader-averaged metrics', () => {
  it('have fixtures, and Python draws the same resamples as Facet (the port of the seeded generator)', () => {
    expect(FIXTURES.map((f) => f.name).sort()).toEqual(['crossed', 'crossed-per-cell', 'negative-site', 'one-reader', 'split-plot']);
    for (const f of FIXTURES) {
      const draw = seededRandom(f.seed);
      expect(f.reference.firstDraws.map(() => draw())).toEqual(f.reference.firstDraws);
    }
  });

  describe.each(FIXTURES.map((f) => [f.name, f] as const))('case %s', (_name, f) => {
    const readers: ReaderCase[][] = numbered(f).map((cases) => cases.map(({ probabilities: _p, ...c }) => c));

    it('every metric is the mean of the readers’ scikit-learn values, its interval the numpy percentile of the bootstrap means', () => {
      const m = computeReaderAveraged(readers, options(f));
      expect(m.readers).toBe(f.readers.length);
      expect(m.cases).toBe(f.readers.reduce((s, r) => s + r.cases.length, 0));
      for (const key of ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv', 'f1', 'youden', 'auc'] as const) {
        const expected = f.reference.metrics[key];
        const actual = m[key];
        if (!expected) {
          expect(actual.value).toBeNull();
          continue;
        }
        close(actual.value, expected.value);
        close(actual.lower, expected.lower);
        close(actual.upper, expected.upper);
        expect(actual.method).toBe(`reader-average-${f.clustered ? 'cluster' : 'case'}-bootstrap-percentile(R=${expected.readers},B=${f.replicates})`);
      }
    });

    it('the k x k view: the readers’ tables summed, their F1s, one-vs-rest AUCs and kappas averaged (scikit-learn)', () => {
      const { multiclass } = computeReaderAveraged(readers, options(f));
      expect(multiclass.confusion).toEqual(f.reference.multiclass.confusion);
      for (const key of ['macroF1', 'weightedF1', 'ovrMacroAuc', 'linearKappa', 'quadraticKappa'] as const)
        close(multiclass[key].value, f.reference.multiclass[key]);
    });

    it('the model minus the reader average on each reader’s cases, with the paired bootstrap interval and p-value', () => {
      const paired: ReaderPairedCase[][] = numbered(f).map((cases) =>
        cases.map((c) => ({
          cluster: c.cluster,
          cell: c.cell,
          truth: c.truth,
          readerGrade: c.grade,
          modelGrade: c.probabilities.indexOf(Math.max(...c.probabilities)),
          modelProbabilities: c.probabilities,
        })),
      );
      const differences = compareReaderAveraged(paired, options(f));
      expect(differences.map((d) => d.metric)).toEqual(['ACCURACY', 'SENSITIVITY', 'SPECIFICITY', 'F1', 'AUC']);
      for (const d of differences) {
        const expected = f.reference.compare[d.metric];
        if (!expected) {
          expect(d.difference.value).toBeNull();
          continue;
        }
        close(d.model, expected.model);
        close(d.reader, expected.reader);
        close(d.difference.value, expected.difference);
        close(d.difference.lower, expected.lower);
        close(d.difference.upper, expected.upper);
        close(d.p, expected.p);
        expect(d.test).toBe(`reader-average-paired-${f.clustered ? 'cluster' : 'case'}-bootstrap-percentile(R=${expected.readers},B=${f.replicates})`);
      }
    });
  });

  it('with one reader, is that reader’s metrics: the same point estimates and the same F1 and Youden bootstrap as the single-rater engine', () => {
    const f = FIXTURES.find((x) => x.name === 'one-reader') as Fixture;
    const [cases] = numbered(f).map((list) => list.map(({ probabilities: _p, ...c }) => c));
    const averaged = computeReaderAveraged([cases], options(f));
    const single = computeGroup(cases, options(f));
    for (const key of ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv', 'f1', 'youden', 'auc'] as const) {
      expect(averaged[key].value).toBeCloseTo(single[key].value as number, 12);
    }
    expect([averaged.f1.lower, averaged.f1.upper]).toEqual([single.f1.lower, single.f1.upper]);
    expect([averaged.youden.lower, averaged.youden.upper]).toEqual([single.youden.lower, single.youden.upper]);
    expect(averaged.confusion).toEqual(single.confusion);
    expect(averaged.multiclass.confusion).toEqual(single.multiclass.confusion);
  });

  it('weighs every reader the same, whatever their caseload (not the pooled readings)', () => {
    // Reader A: 10 cases, all right; reader B: 2 positives, one missed. Pooled sensitivity 5/6; reader average (1 + 0.5)/2.
    const a: ReaderCase[] = Array.from({ length: 10 }, (_, i) => ({ cluster: i, cell: i, truth: i % 2, grade: i % 2 }));
    const b: ReaderCase[] = [
      { cluster: 20, cell: 20, truth: 1, grade: 1 },
      { cluster: 21, cell: 21, truth: 1, grade: 0 },
      { cluster: 22, cell: 22, truth: 0, grade: 0 },
    ];
    const m = computeReaderAveraged([a, b], { threshold: 1, grades: 2, level: 0.95, clustered: true, bootstrap: { replicates: 200, seed: 1 } });
    expect(m.sensitivity.value).toBeCloseTo(0.75, 15);
    expect(m.confusion).toEqual({ tp: 6, fn: 1, tn: 6, fp: 0 });
  });

  it('says why an average is undefined when no reader has the cases it needs', () => {
    const negatives: ReaderCase[] = [0, 1, 2].map((i) => ({ cluster: i, cell: i, truth: 0, grade: i % 2 }));
    const m = computeReaderAveraged([negatives, negatives], { threshold: 1, grades: 2, level: 0.95, clustered: true, bootstrap: { replicates: 200, seed: 1 } });
    expect(m.sensitivity).toMatchObject({ value: null, reason: 'NO_POSITIVES' });
    expect(m.auc).toMatchObject({ value: null, reason: 'NO_POSITIVES' });
    expect(m.specificity.value).toBeCloseTo(2 / 3, 15);
  });
});
