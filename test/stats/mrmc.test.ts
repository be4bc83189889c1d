import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type CovarianceMethod, type FigureOfMerit } from '../../server/stats/mrmc/covariance';
import { chiSquareUpperTail, fUpperTail, tQuantile, tUpperTail } from '../../server/stats/mrmc/distributions';
import { analyseMrmc, type MrmcConclusion, type MrmcDifference } from '../../server/stats/mrmc/obuchowski-rockette';
import { buildStudy, MrmcDesignError, type MrmcCase, type MrmcRating } from '../../server/stats/mrmc/study';

/**
 * The Obuchowski-Rockette-Hillis analysis against MRMCaov 0.3.0 (test/fixtures/stats/mrmc, made by
 * scripts/make-mrmc-fixtures.R): its VanDyke data and four generated crossed studies, every number within 1e-6, for
 * the DeLong, jackknife and unbiased covariances and the random-reader, fixed-reader and fixed-case conclusions.
 */
const DIR = path.resolve(__dirname, '../fixtures/stats/mrmc');
const STUDIES = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as Fixture);

type Row = Record<string, number | string | number[]>;
interface Reference {
  readerAucs: Array<{ test: string; reader: string; auc: number }>;
  cov: number[][];
  varianceComponents: Record<string, number>;
  rrrc: { equality: Row; diffs: Row[]; means: Row[] };
  frrc: { equality: Row; diffs: Row[]; means: Row[]; readerDiffs: Row[] };
  rrfc: { equality: Row; diffs: Row[]; means: Row[] };
}
interface Fixture {
  name: string;
  ratings: { test: string[]; reader: string[]; case: string[]; truth: number[]; rating: number[] };
  binaryCut: number[] | Record<string, number>;
  analyses: Record<'DeLong' | 'jackknife' | 'unbiased' | 'sensitivity' | 'specificity', Reference>;
}

const TOLERANCE = 1e-6;
const close = (actual: number | null | undefined, expected: unknown) => {
  expect(typeof actual).toBe('number');
  expect(Math.abs((actual as number) - (expected as number))).toBeLessThanOrEqual(TOLERANCE);
};

/** Hillis's df of a test without reader variance is infinite (R's rounding residue can make it about 1e60 instead). */
const closeDf = (actual: number | null | undefined, expected: unknown) => {
  // jsonlite writes R's Inf as the string "Inf".
  if (expected === 'Inf' || (expected as number) > 1e12) expect(actual as number).toBeGreaterThan(1e12);
  else close(actual, expected);
};

/** The study of a fixture; with `binary`, each rating becomes the call rating >= the fixture's cut (0 or 1). */
function studyOf(f: Fixture, binary = false) {
  const cases = new Map<string, MrmcCase>();
  const ratings: MrmcRating[] = [];
  const r = f.ratings;
  const cut = (test: string) => (Array.isArray(f.binaryCut) ? f.binaryCut[0]! : f.binaryCut[test]!);
  for (let i = 0; i < r.case.length; i++) {
    cases.set(r.case[i]!, { id: r.case[i]!, truth: r.truth[i] === 1, cluster: r.case[i]!, block: 'all' });
    const rating = binary ? Number(r.rating[i]! >= cut(r.test[i]!)) : r.rating[i]!;
    ratings.push({ test: r.test[i]!, reader: r.reader[i]!, caseId: r.case[i]!, rating });
  }
  return buildStudy([...cases.values()], ratings);
}

const METHODS: Array<[keyof Fixture['analyses'], CovarianceMethod, FigureOfMerit]> = [
  ['DeLong', 'DELONG', 'AUC'],
  ['jackknife', 'JACKKNIFE', 'AUC'],
  ['unbiased', 'UNBIASED', 'AUC'],
  ['sensitivity', 'JACKKNIFE', 'SENSITIVITY'],
  ['specificity', 'JACKKNIFE', 'SPECIFICITY'],
];

function expectDifferences(actual: MrmcDifference[], expected: Row[], statistic: 't' | 'z') {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((d, i) => {
    const e = expected[i]!;
    expect(`${d.first} - ${d.second}`).toBe(e.Comparison);
    close(d.estimate, e.Estimate);
    close(d.stdErr, e.StdErr);
    if (statistic === 't') closeDf(d.df, e.df);
    close(d.lower, (e.CI as number[])[0]);
    close(d.upper, (e.CI as number[])[1]);
    close(d.statistic, e[statistic]);
    close(d.p, e['p-value']);
  });
}

function expectMeans(actual: MrmcConclusion['means'], expected: Row[], withDf: boolean) {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((m, i) => {
    const e = expected[i]!;
    close(m.estimate, e.Estimate);
    close(m.stdErr, e.StdErr);
    if (withDf) closeDf(m.df, e.df);
    close(m.lower, (e.CI as number[])[0]);
    close(m.upper, (e.CI as number[])[1]);
  });
}

describe.each(STUDIES.map((s) => [s.name, s] as const))('MRMCaov study %s', (_name, f) => {
  const study = studyOf(f);
  const binary = studyOf(f, true);
  describe.each(METHODS)('%s', (refName, method, figure) => {
    const ref = f.analyses[refName];
    const a = analyseMrmc(figure === 'AUC' ? study : binary, { method, clustered: false, figure });

    it('per-reader figures of merit and the covariance matrix', () => {
      for (const { test, reader, auc } of ref.readerAucs) close(a.auc[a.tests.indexOf(test)]![a.readers.indexOf(reader)], auc);
      expect(a.covariance).toHaveLength(ref.cov.length);
      a.covariance.forEach((row, g) => row.forEach((v, h) => close(v, ref.cov[g]![h])));
    });

    it('variance components (reader, treatment x reader, error, Cov1-Cov3)', () => {
      const v = a.varianceComponents;
      for (const key of ['reader', 'testReader', 'error', 'cov1', 'cov2', 'cov3', 'corr1', 'corr2', 'corr3'] as const)
        close(v[key], ref.varianceComponents[key]);
    });

    it('random readers and cases: F, Hillis df, p, differences and per-test means', () => {
      const rr = a.randomReaders!;
      const e = ref.rrrc.equality;
      close(a.meanSquares.test, e['MS(T)']);
      close(a.meanSquares.testReader, e['MS(T:R)']);
      close(rr.denominator, e.Denominator);
      close(rr.statistic, e.F);
      close(rr.df2, e.df2);
      close(rr.p, e['p-value']);
      expectDifferences(rr.differences, ref.rrrc.diffs, 't');
      expectMeans(rr.means, ref.rrrc.means, true);
    });

    it('fixed readers: chi-square test, differences, per-test means and per-reader differences', () => {
      const fr = a.fixedReaders;
      const e = ref.frrc.equality;
      close(fr.denominator, e.Denominator);
      close(fr.statistic, e.X2);
      close(fr.p, e['p-value']);
      expectDifferences(fr.differences, ref.frrc.diffs, 'z');
      expectMeans(fr.means, ref.frrc.means, false);
      // With more than two tests MRMCaov 0.3.0 recycles its per-reader standard errors across the rows of its
      // reader x comparison table (the "short variable" warning it prints), so only two-test studies are compared.
      if (a.tests.length === 2) {
        fr.readerDifferences.forEach((d, i) => {
          const r = ref.frrc.readerDiffs[i]!;
          expect(d.reader).toBe(r.Reader);
          close(d.estimate, r.Estimate);
          close(d.stdErr, r.StdErr);
          close(d.lower, (r.CI as number[])[0]);
          close(d.upper, (r.CI as number[])[1]);
          close(d.p, r['p-value']);
        });
      }
    });

    it('fixed cases: F on MS(T:R), differences and per-test means', () => {
      const fc = a.fixedCases!;
      const e = ref.rrfc.equality;
      close(fc.statistic, e.F);
      close(fc.df2, e.df2);
      close(fc.p, e['p-value']);
      expectDifferences(fc.differences, ref.rrfc.diffs, 't');
      expectMeans(fc.means, ref.rrfc.means, true);
    });
  });
});

describe('MRMCaov VanDyke: the numbers its documentation prints', () => {
  it('reproduces F 4.456319 on 1 and 15.25967 df, p 0.05166569 (jackknife, random readers and cases)', () => {
    const f = STUDIES.find((s) => s.name === 'vandyke')!;
    const a = analyseMrmc(studyOf(f), { method: 'JACKKNIFE', clustered: false });
    expect(a.randomReaders!.statistic).toBeCloseTo(4.456319, 6);
    expect(a.randomReaders!.df2).toBeCloseTo(15.25967, 5);
    expect(a.randomReaders!.p).toBeCloseTo(0.05166569, 8);
    expect(a.randomReaders!.differences[0]!.estimate).toBeCloseTo(-0.04380032, 8);
  });
});

describe('t, F and chi-square distributions against R', () => {
  // R 4.2.2: pt(-2.110999, 15.25967), qt(0.975, 15.25967), pf(4.456319, 1, 15.25967, lower = FALSE),
  // pchisq(5.545789, 1, lower = FALSE), qt(0.975, 2.5), qt(0.5, 7), qt(0.025, 4).
  it.each([
    [() => 1 - tUpperTail(-2.110999, 15.25967), 0.0258328677],
    [() => tQuantile(0.975, 15.25967), 2.12829485],
    [() => fUpperTail(4.456319, 1, 15.25967), 0.05166568396],
    [() => chiSquareUpperTail(5.545789, 1), 0.0185252035],
    [() => tQuantile(0.975, 2.5), 3.574654842],
    [() => tQuantile(0.5, 7), 0],
    [() => tQuantile(0.025, 4), -2.776445105],
  ])('case %#', (fn, expected) => {
    expect(Math.abs(fn() - expected)).toBeLessThan(5e-7 * Math.max(1, Math.abs(expected)));
  });
});

describe(buildStudy.name, () => {
  const cases: MrmcCase[] = [
    { id: 'a', truth: true, cluster: 'p1', block: 's1' },
    { id: 'b', truth: false, cluster: 'p1', block: 's1' },
    { id: 'c', truth: true, cluster: 'p2', block: 's2' },
    { id: 'd', truth: false, cluster: 'p2', block: 's2' },
  ];
  const full = (tests: string[], reader: string, ids: string[]): MrmcRating[] =>
    tests.flatMap((test) => ids.map((caseId, i) => ({ test, reader, caseId, rating: i })));
  const expectProblem = (fn: () => unknown, problem: string) => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(MrmcDesignError);
      expect((e as MrmcDesignError).problem).toBe(problem);
      return;
    }
    throw new Error(`expected ${problem}`);
  };

  it('rejects a single test', () => expectProblem(() => buildStudy(cases, full(['A'], 'r1', ['a', 'b'])), 'FEWER_THAN_TWO_TESTS'));
  it('rejects no ratings', () => expectProblem(() => buildStudy(cases, [], { tests: ['A', 'B'] }), 'NO_READERS'));
  it('rejects a reader reading two sites', () => expectProblem(() => buildStudy(cases, full(['A', 'B'], 'r1', ['a', 'c'])), 'READER_IN_SEVERAL_BLOCKS'));
  it('rejects a reader who skipped a case of their site', () => expectProblem(() => buildStudy(cases, full(['A', 'B'], 'r1', ['a'])), 'INCOMPLETE_READINGS'));
  it('rejects a case read twice', () =>
    expectProblem(() => buildStudy(cases, [...full(['A', 'B'], 'r1', ['a', 'b']), { test: 'A', reader: 'r1', caseId: 'a', rating: 1 }]), 'DUPLICATE_READING'));
  it('rejects an unknown case', () => expectProblem(() => buildStudy(cases, full(['A', 'B'], 'r1', ['zz'])), 'UNKNOWN_CASE'));
  it('rejects a rating that is not a number', () =>
    expectProblem(
      () =>
        buildStudy(
          cases,
          full(['A', 'B'], 'r1', ['a', 'b']).map((r) => ({ ...r, rating: NaN })),
        ),
      'NOT_A_NUMBER',
    ));
  it('rejects a site with one class', () =>
    expectProblem(
      () =>
        buildStudy(
          cases.map((c) => ({ ...c, truth: true })),
          full(['A', 'B'], 'r1', ['a', 'b']),
        ),
      'BLOCK_WITHOUT_BOTH_CLASSES',
    ));
  it('rejects the unbiased covariance with clustered cases', () => {
    const study = buildStudy(cases, [...full(['A', 'B'], 'r1', ['a', 'b']), ...full(['A', 'B'], 'r2', ['c', 'd'])]);
    expectProblem(() => analyseMrmc(study, { method: 'UNBIASED', clustered: true }), 'UNBIASED_NEEDS_UNCLUSTERED_CASES');
  });
  it('rejects DeLong or unbiased covariances for sensitivity, and ratings that are not 0/1 calls', () => {
    const study = buildStudy(cases, [...full(['A', 'B'], 'r1', ['a', 'b']), ...full(['A', 'B'], 'r2', ['c', 'd'])]);
    expectProblem(() => analyseMrmc(study, { method: 'DELONG', clustered: false, figure: 'SENSITIVITY' }), 'METHOD_NEEDS_AUC');
    const graded = buildStudy(
      [...cases, { id: 'e', truth: true, cluster: 'p3', block: 's1' }, { id: 'f', truth: false, cluster: 'p3', block: 's1' }],
      [...full(['A', 'B'], 'r1', ['a', 'b', 'e', 'f']), ...full(['A', 'B'], 'r2', ['c', 'd'])],
    );
    expectProblem(() => analyseMrmc(graded, { method: 'JACKKNIFE', clustered: false, figure: 'SPECIFICITY' }), 'NOT_A_BINARY_CALL');
  });
  it('rejects DeLong with fewer than two positives or negatives in a site', () => {
    const study = buildStudy(cases, [...full(['A', 'B'], 'r1', ['a', 'b']), ...full(['A', 'B'], 'r2', ['c', 'd'])]);
    expectProblem(() => analyseMrmc(study, { method: 'DELONG', clustered: false }), 'TOO_FEW_UNITS');
    expectProblem(() => analyseMrmc(study, { method: 'JACKKNIFE', clustered: true }), 'TOO_FEW_UNITS');
  });
});
