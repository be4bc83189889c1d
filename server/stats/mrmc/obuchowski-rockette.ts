import { normalQuantile, twoSidedP } from '../normal';
import { chiSquareUpperTail, fUpperTail, tQuantile, tTwoSidedP } from './distributions';
import { readerTestAucs, type CovarianceMethod, type FigureOfMerit } from './covariance';
import type { MrmcStudy } from './study';

/**
 * The Obuchowski-Rockette (1995) analysis of reader x test AUCs with Hillis's (2007) denominator degrees of freedom,
 * as MRMCaov computes it (Smith & Hillis 2020): the model theta_ij = mu + tau_i + R_j + (tau R)_ij + e_ij with the
 * error covariances Cov1 (same reader, different tests), Cov2 (different readers, same test) and Cov3 (different
 * readers and tests) estimated from the case-sampling covariance matrix. Three conclusions, as MRMCaov reports them:
 * random readers and cases (RRRC: generalises to new readers and new cases), fixed readers (FRRC: these readers,
 * new cases) and fixed cases (RRFC: new readers, these cases).
 *
 * Split-plot (readers nested within sites, each site's readers reading only that site's patients): MRMCaov has no
 * such design. Cases of different sites are independent, so the covariance of two readers of different sites is
 * zero and the covariance matrix is block-diagonal. Taking Cov2 and Cov3 as the means over all pairs of different
 * readers (zeros across sites included) makes MRMCaov's crossed formulas the split-plot ones of the same OR model:
 * with S = sum over sites of J_g (J_g - 1) ordered pairs of readers who share cases, Var(mean difference) =
 * (2/J) [sigma2_TR + Var - Cov1 + (S/J) (Cov2' - Cov3')] for the within-site means Cov2', Cov3', and E[MS(T:R)] =
 * sigma2_TR + Var - Cov1 - S/(J(J-1)) (Cov2' - Cov3'); the all-pairs means are Cov2 = S/(J(J-1)) Cov2', so the
 * Hillis denominator MS(T:R) + J max(Cov2 - Cov3, 0) is unbiased for the split-plot variance too (Obuchowski, Gallas
 * & Hillis 2012 analyse the split-plot design in this OR framework). One site gives back the crossed analysis
 * exactly. The test's size under this design is checked by simulation in test/stats/mrmc-split-plot.test.ts.
 */

export interface MrmcOptions {
  method: CovarianceMethod;
  /** Cases are clustered in patients (joints): resample and sum by patient. */
  clustered: boolean;
  /** Confidence level of every interval, 0.95 by default. */
  level?: number;
  /** AUC (default), or the sensitivity or specificity of 0/1 calls. */
  figure?: FigureOfMerit;
}

export interface VarianceComponents {
  /** sigma2_R and sigma2_TR; null with one reader. */
  reader: number | null;
  testReader: number | null;
  /** Var: the mean case-sampling variance of a reader's AUC. */
  error: number;
  cov1: number;
  cov2: number;
  cov3: number;
  /** Cov_k / Var; null when Var is 0. */
  corr1: number | null;
  corr2: number | null;
  corr3: number | null;
}

/** A pairwise test difference (earlier test minus later), with its interval and test. */
export interface MrmcDifference {
  first: string;
  second: string;
  estimate: number;
  stdErr: number;
  /** Degrees of freedom of the t reference; null where the reference is the normal (fixed readers). */
  df: number | null;
  lower: number | null;
  upper: number | null;
  /** t (or z for fixed readers). */
  statistic: number | null;
  p: number | null;
}

export interface MrmcTestMean {
  test: string;
  estimate: number;
  stdErr: number;
  df: number | null;
  lower: number | null;
  upper: number | null;
}

export interface MrmcConclusion {
  /** The global test of equal tests: F (chi-square for fixed readers), its df and p-value. */
  statistic: number | null;
  df1: number;
  df2: number | null;
  p: number | null;
  denominator: number;
  differences: MrmcDifference[];
  means: MrmcTestMean[];
}

export interface MrmcReaderDifference extends MrmcDifference {
  reader: string;
}

export interface MrmcAnalysis {
  tests: string[];
  readers: string[];
  /** auc[test][reader]: the figure of merit (the AUC, or a sensitivity or specificity) */
  auc: number[][];
  covariance: number[][];
  meanSquares: { test: number; reader: number; testReader: number };
  varianceComponents: VarianceComponents;
  /** Random readers and cases; null with one reader. */
  randomReaders: MrmcConclusion | null;
  fixedReaders: MrmcConclusion & { readerDifferences: MrmcReaderDifference[] };
  /** Random readers, fixed cases; null with one reader. */
  fixedCases: MrmcConclusion | null;
}

const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
/**
 * Sum of squared deviations, shifted by the first value so that equal values give exactly 0 (the model's test repeats
 * one AUC for every reader; a rounding residue of 1e-32 would otherwise turn Hillis's df into 1e60 instead of infinity).
 */
function sumSquares(xs: readonly number[]): number {
  const x0 = xs[0]!;
  let s = 0;
  let ss = 0;
  for (const x of xs) {
    s += x - x0;
    ss += (x - x0) ** 2;
  }
  return ss - (s * s) / xs.length;
}
const pairs = (T: number): Array<[number, number]> => {
  const out: Array<[number, number]> = [];
  for (let a = 0; a < T; a++) for (let b = a + 1; b < T; b++) out.push([a, b]);
  return out;
};
const positive = (x: number) => Math.max(x, 0);
const clip01 = (x: number) => Math.min(1, Math.max(0, x));

/** An estimate without sampling variance (the model's test, where every "reader" is the same model) is its own interval. */
const degenerate = (estimate: number, stdErr: number) =>
  stdErr === 0 ? { lower: estimate, upper: estimate, statistic: null, p: null } : { lower: null, upper: null, statistic: null, p: null };

function tInterval(estimate: number, stdErr: number, df: number, level: number, clip: boolean) {
  if (!(stdErr > 0) || !(df > 0)) return degenerate(estimate, stdErr);
  const half = (Number.isFinite(df) ? tQuantile((1 + level) / 2, df) : normalQuantile((1 + level) / 2)) * stdErr;
  const statistic = estimate / stdErr;
  return {
    lower: clip ? clip01(estimate - half) : estimate - half,
    upper: clip ? clip01(estimate + half) : estimate + half,
    statistic,
    p: tTwoSidedP(statistic, df),
  };
}

function zInterval(estimate: number, stdErr: number, level: number, clip: boolean) {
  if (!(stdErr > 0)) return degenerate(estimate, stdErr);
  const half = normalQuantile((1 + level) / 2) * stdErr;
  const statistic = estimate / stdErr;
  return {
    lower: clip ? clip01(estimate - half) : estimate - half,
    upper: clip ? clip01(estimate + half) : estimate + half,
    statistic,
    p: twoSidedP(statistic),
  };
}

/** Runs the whole analysis on a study. */
export function analyseMrmc(study: MrmcStudy, options: MrmcOptions): MrmcAnalysis {
  const { auc, covariance } = readerTestAucs(study, options.method, options.clustered, options.figure ?? 'AUC');
  return orAnalysis(study.tests, study.readers, auc, covariance, options.level ?? 0.95);
}

/** The OR-Hillis analysis from the reader x test AUCs and their covariance matrix (test-major groups). */
export function orAnalysis(tests: string[], readers: string[], auc: number[][], covariance: number[][], level: number): MrmcAnalysis {
  const T = tests.length;
  const J = readers.length;
  const g = (t: number, j: number) => t * J + j;

  const testMeans = auc.map((row) => mean(row));
  const readerMeans = readers.map((_, j) => mean(auc.map((row) => row[j]!)));
  const grand = mean(testMeans);
  const msT = (J * sumSquares(testMeans)) / (T - 1);
  const msR = J > 1 ? (T * sumSquares(readerMeans)) / (J - 1) : 0;
  let ssTR = 0;
  for (let t = 0; t < T; t++) for (let j = 0; j < J; j++) ssTR += (auc[t]![j]! - testMeans[t]! - readerMeans[j]! + grand) ** 2;
  const msTR = J > 1 ? ssTR / ((T - 1) * (J - 1)) : 0;

  // Cov1-Cov3 as MRMCaov's vcov_comps: means over the off-diagonal cells of each kind.
  const c1: number[] = [];
  const c2: number[] = [];
  const c3: number[] = [];
  const diag: number[] = [];
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < J; j++) {
      for (let u = 0; u < T; u++) {
        for (let k = 0; k < J; k++) {
          const v = covariance[g(t, j)]![g(u, k)]!;
          if (t === u && j === k) diag.push(v);
          else if (j === k) c1.push(v);
          else if (t === u) c2.push(v);
          else c3.push(v);
        }
      }
    }
  }
  const varError = mean(diag);
  const cov1 = mean(c1);
  const cov2 = J > 1 ? mean(c2) : 0;
  const cov3 = J > 1 ? mean(c3) : 0;
  const corr = (c: number) => (varError > 0 ? c / varError : null);
  const varianceComponents: VarianceComponents = {
    reader: J > 1 ? (msR - msTR) / T - cov1 + cov3 : null,
    testReader: J > 1 ? msTR - varError + cov1 + (cov2 - cov3) : null,
    error: varError,
    cov1,
    cov2,
    cov3,
    corr1: corr(cov1),
    corr2: corr(cov2),
    corr3: corr(cov3),
  };

  // Per-test components: the test's own MS(R), Var and Cov2.
  const perTest = tests.map((_, t) => {
    const row = auc[t]!;
    const ms = J > 1 ? sumSquares(row) / (J - 1) : 0;
    const d: number[] = [];
    const c: number[] = [];
    for (let j = 0; j < J; j++) {
      for (let k = 0; k < J; k++) (j === k ? d : c).push(covariance[g(t, j)]![g(t, k)]!);
    }
    return { ms, var: mean(d), cov2: J > 1 ? mean(c) : 0 };
  });

  const comparisons = pairs(T);
  let randomReaders: MrmcConclusion | null = null;
  let fixedCases: MrmcConclusion | null = null;
  if (J > 1) {
    const denominator = msTR + J * positive(cov2 - cov3);
    const df2 = denominator ** 2 / (msTR ** 2 / ((T - 1) * (J - 1)));
    const F = msT / denominator;
    randomReaders = {
      statistic: denominator > 0 ? F : null,
      df1: T - 1,
      df2: denominator > 0 ? df2 : null,
      p: denominator > 0 ? fUpperTail(F, T - 1, df2) : null,
      denominator,
      differences: comparisons.map(([a, b]) => {
        const estimate = testMeans[a]! - testMeans[b]!;
        const stdErr = Math.sqrt((2 / J) * denominator);
        return { first: tests[a]!, second: tests[b]!, estimate, stdErr, df: df2, ...tInterval(estimate, stdErr, df2, level, false) };
      }),
      means: tests.map((test, t) => {
        const { ms, cov2: c } = perTest[t]!;
        const stdErr = Math.sqrt(ms / J + positive(c));
        const df = (ms + J * positive(c)) ** 2 / (ms ** 2 / (J - 1));
        const { lower, upper } = tInterval(testMeans[t]!, stdErr, df, level, true);
        return { test, estimate: testMeans[t]!, stdErr, df, lower, upper };
      }),
    };

    const dfFixed = (T - 1) * (J - 1);
    const Ffixed = msT / msTR;
    fixedCases = {
      statistic: msTR > 0 ? Ffixed : null,
      df1: T - 1,
      df2: dfFixed,
      p: msTR > 0 ? fUpperTail(Ffixed, T - 1, dfFixed) : null,
      denominator: msTR,
      differences: comparisons.map(([a, b]) => {
        const estimate = testMeans[a]! - testMeans[b]!;
        const stdErr = Math.sqrt((2 / J) * msTR);
        return { first: tests[a]!, second: tests[b]!, estimate, stdErr, df: dfFixed, ...tInterval(estimate, stdErr, dfFixed, level, false) };
      }),
      means: tests.map((test, t) => {
        const stdErr = Math.sqrt(perTest[t]!.ms / J);
        const { lower, upper } = tInterval(testMeans[t]!, stdErr, J - 1, level, true);
        return { test, estimate: testMeans[t]!, stdErr, df: J - 1, lower, upper };
      }),
    };
  }

  // Fixed readers: the case-sampling variance only (normal reference), no max() on the covariances, as MRMCaov.
  const fixedDenominator = varError - cov1 + (J - 1) * (cov2 - cov3);
  const X2 = ((T - 1) * msT) / fixedDenominator;
  const readerDifferences: MrmcReaderDifference[] = [];
  for (let j = 0; j < J; j++) {
    const d: number[] = [];
    const c: number[] = [];
    for (let t = 0; t < T; t++) for (let u = 0; u < T; u++) (t === u ? d : c).push(covariance[g(t, j)]![g(u, j)]!);
    const stdErr = Math.sqrt(2 * (mean(d) - mean(c)));
    for (const [a, b] of comparisons) {
      const estimate = auc[a]![j]! - auc[b]![j]!;
      readerDifferences.push({
        reader: readers[j]!,
        first: tests[a]!,
        second: tests[b]!,
        estimate,
        stdErr,
        df: null,
        ...zInterval(estimate, stdErr, level, false),
      });
    }
  }
  const fixedReaders = {
    statistic: fixedDenominator > 0 ? X2 : null,
    df1: T - 1,
    df2: null,
    p: fixedDenominator > 0 ? chiSquareUpperTail(X2, T - 1) : null,
    denominator: fixedDenominator,
    differences: comparisons.map(([a, b]) => {
      const estimate = testMeans[a]! - testMeans[b]!;
      const stdErr = Math.sqrt((2 / J) * fixedDenominator);
      return { first: tests[a]!, second: tests[b]!, estimate, stdErr, df: null, ...zInterval(estimate, stdErr, level, false) };
    }),
    means: tests.map((test, t) => {
      const { var: v, cov2: c } = perTest[t]!;
      const stdErr = Math.sqrt((v + (J - 1) * positive(c)) / J);
      const { lower, upper } = zInterval(testMeans[t]!, stdErr, level, true);
      return { test, estimate: testMeans[t]!, stdErr, df: null, lower, upper };
    }),
    readerDifferences,
  };

  return {
    tests,
    readers,
    auc,
    covariance,
    meanSquares: { test: msT, reader: msR, testReader: msTR },
    varianceComponents,
    randomReaders,
    fixedReaders,
    fixedCases,
  };
}
