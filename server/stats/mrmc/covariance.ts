import { obuchowskiCovariance, placements, type Placements } from '../auc';
import { MrmcDesignError, type MrmcStudy } from './study';

/**
 * The reader x test AUCs of an MRMC study and the covariance matrix of their case-sampling errors, by the three
 * methods MRMCaov offers (its `DeLong`, `jackknife` and `unbiased`, reproduced to 1e-6 in test/stats/mrmc.test.ts).
 * Groups are ordered test-major (test 1 reader 1, test 1 reader 2, ...), as MRMCaov orders them. Readers of different
 * blocks (sites) read different, independent patients, so their covariance is zero: the matrix is computed block by
 * block and is block-diagonal across sites.
 *
 * With `clustered`, a patient's cases (joints) are one sampling unit: DeLong becomes Obuchowski's (1997) clustered
 * covariance (placements summed per patient) and the jackknife leaves out one patient at a time. MRMCaov has no
 * clustered methods; with one case per patient both reduce to the unclustered jackknife exactly and to DeLong up to
 * Obuchowski's K/(K-1) small-sample factors. The unbiased estimator (Gallas et al. 2007) is defined for independent
 * cases only.
 */
export type CovarianceMethod = 'DELONG' | 'JACKKNIFE' | 'UNBIASED';

/**
 * The reader performance measured: the empirical AUC of the ratings, or the sensitivity (specificity) of binary
 * calls, ratings 0 or 1 (MRMCaov's binary_sens and binary_spec), whose only covariance is the jackknife over the
 * positive (negative) cases or patients.
 */
export type FigureOfMerit = 'AUC' | 'SENSITIVITY' | 'SPECIFICITY';

export interface ReaderTestAucs {
  /** auc[test][reader] */
  auc: number[][];
  /** covariance[g][h] with g = test * readers + reader. */
  covariance: number[][];
}

interface BlockGroup {
  index: number;
  positives: Float64Array;
  negatives: Float64Array;
  placements: Placements;
}

export function readerTestAucs(study: MrmcStudy, method: CovarianceMethod, clustered: boolean, figure: FigureOfMerit = 'AUC'): ReaderTestAucs {
  if (figure !== 'AUC') return readerTestProportions(study, method, clustered, figure);
  if (method === 'UNBIASED' && clustered) {
    throw new MrmcDesignError(
      'UNBIASED_NEEDS_UNCLUSTERED_CASES',
      'the unbiased covariance estimator assumes independent cases; use DeLong or the jackknife with clustering',
    );
  }
  const T = study.tests.length;
  const J = study.readers.length;
  const G = T * J;
  const auc = study.tests.map(() => study.readers.map(() => NaN));
  const covariance = Array.from({ length: G }, () => new Array<number>(G).fill(0));

  for (let b = 0; b < study.blocks.length; b++) {
    const readers = study.readers.map((_, j) => j).filter((j) => study.readerBlock[j] === b);
    if (readers.length === 0) continue;
    const caseIds = study.blockCases[b]!;
    const pos = caseIds.filter((c) => study.cases[c]!.truth);
    const neg = caseIds.filter((c) => !study.cases[c]!.truth);
    const groups: BlockGroup[] = [];
    for (let t = 0; t < T; t++) {
      for (const j of readers) {
        const row = study.ratings[t]![j]!;
        const positives = Float64Array.from(pos, (c) => row[c]!);
        const negatives = Float64Array.from(neg, (c) => row[c]!);
        const p = placements(positives, negatives)!;
        auc[t]![j] = p.auc;
        groups.push({ index: t * J + j, positives, negatives, placements: p });
      }
    }
    const posClusters = pos.map((c) => study.cases[c]!.cluster);
    const negClusters = neg.map((c) => study.cases[c]!.cluster);
    const block =
      method === 'DELONG'
        ? clustered
          ? clusteredDelong(groups, posClusters, negClusters)
          : delong(groups)
        : method === 'JACKKNIFE'
          ? jackknife(groups, clustered ? posClusters : pos.map(String), clustered ? negClusters : neg.map(String))
          : unbiased(groups);
    for (let g = 0; g < groups.length; g++) {
      for (let h = 0; h < groups.length; h++) covariance[groups[g]!.index]![groups[h]!.index] = block[g]![h]!;
    }
  }
  return { auc, covariance };
}

function square(n: number): number[][] {
  return Array.from({ length: n }, () => new Array<number>(n).fill(0));
}

/** DeLong et al. (1988): S10/m + S01/n from the placements' sample covariances, as MRMCaov's `DeLong()`. */
function delong(groups: BlockGroup[]): number[][] {
  const m = groups[0]!.positives.length;
  const n = groups[0]!.negatives.length;
  if (m < 2 || n < 2) throw new MrmcDesignError('TOO_FEW_UNITS', 'DeLong covariances need at least two positive and two negative cases per site');
  const out = square(groups.length);
  for (let g = 0; g < groups.length; g++) {
    for (let h = 0; h <= g; h++) {
      const a = groups[g]!.placements;
      const b = groups[h]!.placements;
      let s10 = 0;
      for (let i = 0; i < m; i++) s10 += (a.v10[i]! - a.auc) * (b.v10[i]! - b.auc);
      let s01 = 0;
      for (let k = 0; k < n; k++) s01 += (a.v01[k]! - a.auc) * (b.v01[k]! - b.auc);
      out[g]![h] = out[h]![g] = s10 / (m - 1) / m + s01 / (n - 1) / n;
    }
  }
  return out;
}

/** Obuchowski (1997): placements summed per patient, the same estimator the per-rater clustered AUC uses. */
function clusteredDelong(groups: BlockGroup[], posClusters: string[], negClusters: string[]): number[][] {
  const out = square(groups.length);
  for (let g = 0; g < groups.length; g++) {
    for (let h = 0; h <= g; h++) {
      const v = obuchowskiCovariance(groups[g]!.placements, groups[h]!.placements, posClusters, negClusters);
      if (v === null)
        throw new MrmcDesignError(
          'TOO_FEW_UNITS',
          'clustered DeLong covariances need at least two patients with positive and two with negative cases per site',
        );
      out[g]![h] = out[h]![g] = v;
    }
  }
  return out;
}

/**
 * Leave-one-unit-out jackknife: ((K - 1) / K) times the cross-products of the K leave-one-out AUCs about their mean,
 * as MRMCaov's `jackknife()` with units = cases. Each leave-one-out AUC comes from the placements in O(size of the
 * unit): the pairs of the left-out positives and negatives leave the double sum, and the pairs inside the unit,
 * subtracted twice, are added back.
 */
function jackknife(groups: BlockGroup[], posUnits: string[], negUnits: string[]): number[][] {
  const unitIndex = new Map<string, number>();
  const unitOf = (u: string) => {
    let i = unitIndex.get(u);
    if (i === undefined) unitIndex.set(u, (i = unitIndex.size));
    return i;
  };
  const pu = posUnits.map(unitOf);
  const nu = negUnits.map(unitOf);
  const K = unitIndex.size;
  const unitPos: number[][] = Array.from({ length: K }, () => []);
  const unitNeg: number[][] = Array.from({ length: K }, () => []);
  pu.forEach((k, i) => unitPos[k]!.push(i));
  nu.forEach((k, i) => unitNeg[k]!.push(i));
  const m = posUnits.length;
  const n = negUnits.length;
  if (K < 2) throw new MrmcDesignError('TOO_FEW_UNITS', 'the jackknife needs at least two cases (patients) per site');
  const pseudo = groups.map((grp) => {
    const { positives, negatives, placements: p } = grp;
    const total = p.auc * m * n;
    const values = new Float64Array(K);
    for (let k = 0; k < K; k++) {
      const ip = unitPos[k]!;
      const ineg = unitNeg[k]!;
      const mLeft = m - ip.length;
      const nLeft = n - ineg.length;
      if (mLeft === 0 || nLeft === 0) {
        throw new MrmcDesignError(
          'TOO_FEW_UNITS',
          'leaving out one case (patient) leaves a site without positive or negative cases: the jackknife is undefined',
        );
      }
      let removed = 0;
      for (const i of ip) removed += p.v10[i]! * n;
      for (const j of ineg) removed += p.v01[j]! * m;
      for (const i of ip) for (const j of ineg) removed -= psi(positives[i]!, negatives[j]!);
      values[k] = (total - removed) / (mLeft * nLeft);
    }
    return values;
  });
  const means = pseudo.map((v) => v.reduce((s, x) => s + x, 0) / K);
  const out = square(groups.length);
  for (let g = 0; g < groups.length; g++) {
    for (let h = 0; h <= g; h++) {
      let s = 0;
      const a = pseudo[g]!;
      const c = pseudo[h]!;
      for (let k = 0; k < K; k++) s += (a[k]! - means[g]!) * (c[k]! - means[h]!);
      out[g]![h] = out[h]![g] = ((K - 1) / K) * s;
    }
  }
  return out;
}

const psi = (x: number, y: number): number => (x > y ? 1 : x === y ? 0.5 : 0);

/**
 * The unbiased estimator of Gallas, Pennello & Myers (2007) for a fully crossed block, as MRMCaov's
 * `unbiased_balanced`: from the kernel sums of the two AUCs' U-statistics, with the products of kernels that share
 * neither case removed by the factor delta.
 */
function unbiased(groups: BlockGroup[]): number[][] {
  const m = groups[0]!.positives.length;
  const n = groups[0]!.negatives.length;
  if (m < 2 || n < 2) throw new MrmcDesignError('TOO_FEW_UNITS', 'the unbiased covariance needs at least two positive and two negative cases per site');
  // Kernels as 2 * psi in bytes: m * n bytes per group.
  const kernels = groups.map(({ positives, negatives }) => {
    const k = new Uint8Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) k[i * n + j] = 2 * psi(positives[i]!, negatives[j]!);
    return k;
  });
  const rowSums = groups.map((g) => Float64Array.from(g.placements.v10, (v) => v * n));
  const colSums = groups.map((g) => Float64Array.from(g.placements.v01, (v) => v * m));
  const totals = groups.map((g) => g.placements.auc * m * n);
  const delta = (n * m) ** 2 / (n * (n - 1) * m * (m - 1));
  const out = square(groups.length);
  for (let g = 0; g < groups.length; g++) {
    for (let h = 0; h <= g; h++) {
      let rows = 0;
      for (let i = 0; i < m; i++) rows += rowSums[g]![i]! * rowSums[h]![i]!;
      let cols = 0;
      for (let j = 0; j < n; j++) cols += colSums[g]![j]! * colSums[h]![j]!;
      const a = kernels[g]!;
      const c = kernels[h]!;
      let both = 0;
      for (let x = 0; x < a.length; x++) both += a[x]! * c[x]!;
      both /= 4;
      out[g]![h] = out[h]![g] = ((1 - delta) * totals[g]! * totals[h]! + delta * (rows + cols - both)) / (n * m) ** 2;
    }
  }
  return out;
}

/** Sensitivity or specificity of binary calls per reader and test, with the leave-one-unit-out jackknife covariance. */
function readerTestProportions(study: MrmcStudy, method: CovarianceMethod, clustered: boolean, figure: 'SENSITIVITY' | 'SPECIFICITY'): ReaderTestAucs {
  if (method !== 'JACKKNIFE') {
    throw new MrmcDesignError('METHOD_NEEDS_AUC', `${method} covariances are defined for the AUC only; sensitivity and specificity use the jackknife`);
  }
  const T = study.tests.length;
  const J = study.readers.length;
  const G = T * J;
  const value = study.tests.map(() => study.readers.map(() => NaN));
  const covariance = Array.from({ length: G }, () => new Array<number>(G).fill(0));
  const positive = figure === 'SENSITIVITY';
  for (let b = 0; b < study.blocks.length; b++) {
    const readers = study.readers.map((_, j) => j).filter((j) => study.readerBlock[j] === b);
    if (readers.length === 0) continue;
    // The cases the proportion is over, and their units (cases, or patients when clustered).
    const cases = study.blockCases[b]!.filter((c) => study.cases[c]!.truth === positive);
    const unitIndex = new Map<string, number>();
    const unitOf = cases.map((c) => {
      const u = clustered ? study.cases[c]!.cluster : String(c);
      let i = unitIndex.get(u);
      if (i === undefined) unitIndex.set(u, (i = unitIndex.size));
      return i;
    });
    const K = unitIndex.size;
    if (K < 2) throw new MrmcDesignError('TOO_FEW_UNITS', `the jackknife needs at least two ${positive ? 'positive' : 'negative'} cases (patients) per site`);
    const unitSize = new Float64Array(K);
    for (const k of unitOf) unitSize[k]!++;
    const groups: Array<{ index: number; pseudo: Float64Array }> = [];
    for (let t = 0; t < T; t++) {
      for (const j of readers) {
        const row = study.ratings[t]![j]!;
        const unitHits = new Float64Array(K);
        let hits = 0;
        cases.forEach((c, i) => {
          const r = row[c]!;
          if (r !== 0 && r !== 1) throw new MrmcDesignError('NOT_A_BINARY_CALL', `sensitivity and specificity need calls of 0 or 1; got ${r}`);
          // A correct call: positive for a positive case, negative for a negative one.
          const correct = positive ? r : 1 - r;
          hits += correct;
          unitHits[unitOf[i]!]! += correct;
        });
        value[t]![j] = hits / cases.length;
        const pseudo = new Float64Array(K);
        for (let k = 0; k < K; k++) pseudo[k] = (hits - unitHits[k]!) / (cases.length - unitSize[k]!);
        groups.push({ index: t * J + j, pseudo });
      }
    }
    const means = groups.map((g) => g.pseudo.reduce((s, x) => s + x, 0) / K);
    for (let g = 0; g < groups.length; g++) {
      for (let h = 0; h <= g; h++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += (groups[g]!.pseudo[k]! - means[g]!) * (groups[h]!.pseudo[k]! - means[h]!);
        covariance[groups[g]!.index]![groups[h]!.index] = covariance[groups[h]!.index]![groups[g]!.index] = ((K - 1) / K) * s;
      }
    }
  }
  return { auc: value, covariance };
}
