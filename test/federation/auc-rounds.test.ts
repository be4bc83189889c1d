import { generateKeyPairSync } from 'node:crypto';
import {
  addCrossSums,
  addHistograms,
  addPlacementSums,
  AucRoundError,
  binOf,
  checkPlacementTable,
  checkScoreGrid,
  CROSS_SUM_FIELDS,
  crossSums,
  PLACEMENT_SUM_FIELDS,
  placementSums,
  placementTable,
  pooledAuc,
  pooledAucDifference,
  scoreHistograms,
  type BinnedCase,
  type PlacementTable,
  type ScoreGrid,
} from '../../server/federation/auc-rounds';
import { decodeFixedPoint, encodeFixedPoint } from '../../server/federation/fixed-point';
import { maskContribution, newSelfMaskSeed, unmaskSum, type Participant } from '../../server/federation/secure-sum';
import {
  aucClustered,
  aucDelong,
  clusteredIntervalVariance,
  obuchowskiCovariance,
  pairedDelong,
  pairedDelongVariance,
  placements,
} from '../../server/stats/auc';
import { normalQuantile, twoSidedP } from '../../server/stats/normal';
import { Gen } from './generators';

/** One joint of a generated study: its site, its patient (unique in the union), truth, a model score and a reader grade. */
interface Joint {
  site: number;
  patient: number;
  positive: boolean;
  score: number;
  grade: number;
}

const MODEL_GRID: ScoreGrid = { lower: 0, upper: 1, bins: 20 };
const READER_GRID: ScoreGrid = { lower: 0.5, upper: 5.5, bins: 5 };

/** A study over `sites` sites; some draws give a site with one class only, or a study of one or two patients. */
function study(gen: Gen, sites: number): Joint[] {
  const joints: Joint[] = [];
  let patient = 0;
  const tiny = gen.bool(0.2);
  for (let site = 0; site < (tiny ? 1 : sites); site++) {
    const prevalence = gen.pick([0, 0.2, 0.5, 0.8]);
    for (let p = tiny ? gen.int(1, 2) : gen.int(1, 40); p > 0; p--, patient++) {
      const patientRisk = gen.random();
      for (let j = gen.int(1, 4); j > 0; j--) {
        const positive = gen.random() < (prevalence + patientRisk) / 2;
        const score = Math.min(1, Math.max(0, (positive ? 0.62 : 0.38) + (gen.random() - 0.5) * gen.pick([0.3, 0.8, 1.2])));
        const grade = Math.min(5, Math.max(1, Math.round((positive ? 3.6 : 2.4) + (gen.random() - 0.5) * 3)));
        joints.push({ site, patient, positive, score: gen.bool(0.05) ? gen.pick([0, 1]) : score, grade });
      }
    }
  }
  return joints;
}

const binned = (joints: readonly Joint[], rater: 'score' | 'grade'): BinnedCase[] =>
  joints.map((j) => ({ cluster: j.patient, positive: j.positive, bin: binOf(j[rater], rater === 'score' ? MODEL_GRID : READER_GRID) }));

/** The single-node reference on the union: stats/auc.ts on the bin indices. */
function reference(union: readonly Joint[], rater: 'score' | 'grade') {
  const cases = binned(union, rater);
  const pos = cases.filter((c) => c.positive);
  const neg = cases.filter((c) => !c.positive);
  return {
    pos: pos.map((c) => c.bin),
    neg: neg.map((c) => c.bin),
    posClusters: pos.map((c) => c.cluster),
    negClusters: neg.map((c) => c.cluster),
  };
}

/** The protocol: round 1 at every site, pooling, round 2 at every site against the pooled tables, pooling. */
function federate(joints: readonly Joint[], sites: number) {
  const bySite = Array.from({ length: sites }, (_, s) => joints.filter((j) => j.site === s));
  const histA = addHistograms(bySite.map((js) => scoreHistograms(binned(js, 'score'), MODEL_GRID.bins)));
  const histB = addHistograms(bySite.map((js) => scoreHistograms(binned(js, 'grade'), READER_GRID.bins)));
  const tableA = placementTable(histA);
  const tableB = placementTable(histB);
  if (!tableA || !tableB) return null;
  const sumsA = addPlacementSums(bySite.map((js) => placementSums(binned(js, 'score'), tableA)));
  const sumsB = addPlacementSums(bySite.map((js) => placementSums(binned(js, 'grade'), tableB)));
  const cross = addCrossSums(bySite.map((js) => crossSums(binned(js, 'score'), binned(js, 'grade'), tableA, tableB)));
  return { histA, histB, tableA, tableB, sumsA, sumsB, cross };
}

const close = (actual: number | null, expected: number | null) => {
  if (expected === null) expect(actual).toBeNull();
  else expect(Math.abs((actual as number) - expected)).toBeLessThanOrEqual(1e-9);
};

describe('AUC in two rounds equals the single-node engine on the union at the declared grid', () => {
  const seeds = Array.from({ length: 60 }, (_, i) => 1000 + i);

  test.each(seeds)('seed %i: AUC, DeLong and clustered intervals of one rater', (seed) => {
    const gen = new Gen(seed);
    const joints = study(gen, gen.int(1, 4));
    const fed = federate(joints, 4);
    const ref = reference(joints, 'score');
    if (fed === null) {
      expect(ref.pos.length === 0 || ref.neg.length === 0).toBe(true);
      return;
    }
    const pooled = pooledAuc(fed.histA, fed.tableA, fed.sumsA);
    const delong = aucDelong(ref.pos, ref.neg);
    const clustered = aucClustered(ref.pos, ref.neg, ref.posClusters, ref.negClusters);
    close(pooled.auc, delong.value);
    for (const field of ['value', 'lower', 'upper', 'variance'] as const) {
      close(pooled.delong[field], delong[field]);
      close(pooled.clustered[field], clustered[field]);
    }
    expect(pooled.delong.reason).toBe(delong.reason);
    expect(pooled.clustered.reason).toBe(clustered.reason);
  });

  test.each(seeds)('seed %i: paired DeLong and paired Obuchowski of a model against a reader', (seed) => {
    const gen = new Gen(seed);
    const joints = study(gen, gen.int(1, 4));
    const fed = federate(joints, 4);
    if (fed === null) return;
    const a = reference(joints, 'score');
    const b = reference(joints, 'grade');
    const pooledDelong = pooledAucDifference({ histogramsA: fed.histA, histogramsB: fed.histB, ...fed }, { clustered: false });
    const pd = pairedDelong(a.pos, a.neg, b.pos, b.neg);
    if (pd === null) expect(pooledDelong.difference.reason).toBe('ONE_CLASS');
    else {
      for (const field of ['value', 'lower', 'upper'] as const) close(pooledDelong.difference[field], pd.difference[field]);
      close(pooledDelong.p, pd.p);
      close(pooledDelong.aucA, pd.aucA);
      close(pooledDelong.aucB, pd.aucB);
    }
    // Clustered, as stats/compare.ts computes it on one node.
    const pa = placements(a.pos, a.neg)!;
    const pb = placements(b.pos, b.neg)!;
    const cov = (x: typeof pa, y: typeof pa) => obuchowskiCovariance(x, y, a.posClusters, a.negClusters);
    const [va, vb, cab] = [cov(pa, pa), cov(pb, pb), cov(pa, pb)];
    const pooledClustered = pooledAucDifference({ histogramsA: fed.histA, histogramsB: fed.histB, ...fed }, { clustered: true });
    if (va === null || vb === null || cab === null) {
      expect(pooledClustered.difference.reason).toBe('ONE_CLUSTER');
      return;
    }
    const variance = clusteredIntervalVariance(va + vb - 2 * cab, pairedDelongVariance(pa, pb));
    const value = pa.auc - pb.auc;
    if (!(variance > 0)) {
      expect(pooledClustered.difference.reason).toBe('ZERO_VARIANCE');
      return;
    }
    const half = normalQuantile(0.975) * Math.sqrt(variance);
    close(pooledClustered.difference.value, value);
    close(pooledClustered.difference.lower, value - half);
    close(pooledClustered.difference.upper, value + half);
    close(pooledClustered.p, twoSidedP(value / Math.sqrt(variance)));
  });

  test('the generated studies cover the undefined cases and the defined ones', () => {
    const reasons = new Set<string | null>();
    for (const seed of seeds) {
      const gen = new Gen(seed);
      const fed = federate(study(gen, gen.int(1, 4)), 4);
      reasons.add(fed === null ? 'NO_TABLE' : pooledAuc(fed.histA, fed.tableA, fed.sumsA).clustered.reason);
    }
    expect(reasons).toContain(null);
    expect(reasons).toContain('NO_TABLE');
    expect(reasons).toContain('ONE_CLUSTER');
  });
});

describe('the rounds through secure summation', () => {
  const participants = (codes: string[]) =>
    codes.map((code) => {
      const { privateKey, publicKey } = generateKeyPairSync('x25519');
      return { code, privateKey, participant: { code, agreementKey: publicKey } as Participant };
    });

  test('masked round-1 and round-2 vectors reveal no site and sum to the plain pooled numbers within 1e-9', () => {
    const gen = new Gen(77);
    let joints = study(gen, 3);
    while (federate(joints, 3) === null) joints = study(gen, 3);
    const sites = participants(['NORTH', 'SOUTH', 'WEST']);
    const plain = federate(joints, 3)!;
    const secureSum = (roundId: string, vectors: number[][], fractionBits: number): number[] => {
      const format = { fractionBits, maxTerms: sites.length };
      const seeds = new Map<string, Buffer>();
      const masked = new Map<string, BigUint64Array>();
      sites.forEach((s, i) => {
        const values = encodeFixedPoint(vectors[i], format);
        const seed = newSelfMaskSeed();
        seeds.set(s.code, seed);
        const y = maskContribution({
          own: s.code,
          ownAgreementKey: s.privateKey,
          roundId,
          participants: sites.map((p) => p.participant),
          values,
          selfMaskSeed: seed,
        });
        // What the hub receives is not the site's vector.
        expect(Array.from(y)).not.toEqual(Array.from(values));
        masked.set(s.code, y);
      });
      return decodeFixedPoint(
        unmaskSum(
          masked,
          seeds,
          sites.map((s) => s.code),
        ),
        format,
      );
    };
    const bySite = [0, 1, 2].map((s) => joints.filter((j) => j.site === s));
    const round1 = secureSum(
      'auc#1',
      bySite.map((js) => {
        const h = scoreHistograms(binned(js, 'score'), MODEL_GRID.bins);
        return [...h.positives, ...h.negatives];
      }),
      0,
    );
    expect(round1).toEqual([...plain.histA.positives, ...plain.histA.negatives]);
    const round2 = secureSum(
      'auc-placements#1',
      bySite.map((js) => {
        const s = placementSums(binned(js, 'score'), plain.tableA);
        const c = crossSums(binned(js, 'score'), binned(js, 'grade'), plain.tableA, plain.tableB);
        return [...PLACEMENT_SUM_FIELDS.map((f) => s[f]), ...CROSS_SUM_FIELDS.map((f) => c[f])];
      }),
      32,
    );
    const expected = [...PLACEMENT_SUM_FIELDS.map((f) => plain.sumsA[f]), ...CROSS_SUM_FIELDS.map((f) => plain.cross[f])];
    round2.forEach((v, i) => close(v, expected[i]));
  });
});

describe('bad input is refused with a typed error', () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(AucRoundError);
      return (e as AucRoundError).code;
    }
    throw new Error('no error');
  };

  test('grids', () => {
    expect(code(() => checkScoreGrid({ lower: 1, upper: 0, bins: 10 }))).toBe('BAD_GRID');
    expect(code(() => checkScoreGrid({ lower: 0, upper: Number.NaN, bins: 10 }))).toBe('BAD_GRID');
    expect(code(() => checkScoreGrid({ lower: 0, upper: 1, bins: 1 }))).toBe('BAD_GRID');
    expect(code(() => checkScoreGrid({ lower: 0, upper: 1, bins: 2.5 }))).toBe('BAD_GRID');
    expect(code(() => checkScoreGrid({ lower: 0, upper: 1, bins: 101 }, 100))).toBe('GRID_TOO_FINE');
    expect(checkScoreGrid({ lower: 0, upper: 1, bins: 100 }, 100).bins).toBe(100);
  });

  test('scores off the grid are never clamped', () => {
    const gen = new Gen(5);
    for (let i = 0; i < 200; i++) {
      const score = (gen.random() - 0.5) * 4;
      if (score >= 0 && score <= 1) {
        const bin = binOf(score, MODEL_GRID);
        expect(bin).toBeGreaterThanOrEqual(0);
        expect(bin).toBeLessThan(MODEL_GRID.bins);
      } else expect(code(() => binOf(score, MODEL_GRID))).toBe('SCORE_OFF_GRID');
    }
    expect(binOf(1, MODEL_GRID)).toBe(MODEL_GRID.bins - 1);
    expect(code(() => binOf(Number.NaN, MODEL_GRID))).toBe('SCORE_OFF_GRID');
    expect(code(() => scoreHistograms([{ cluster: 0, positive: true, bin: 20 }], 20))).toBe('SCORE_OFF_GRID');
  });

  test('histograms on different grids, unpaired raters and malformed tables', () => {
    const h = scoreHistograms([{ cluster: 0, positive: true, bin: 1 }], 3);
    expect(code(() => addHistograms([h, scoreHistograms([], 4)]))).toBe('LENGTH_MISMATCH');
    expect(code(() => addHistograms([]))).toBe('LENGTH_MISMATCH');
    const table = placementTable(
      scoreHistograms(
        [
          { cluster: 0, positive: true, bin: 2 },
          { cluster: 1, positive: false, bin: 0 },
        ],
        3,
      ),
    ) as PlacementTable;
    expect(checkPlacementTable(table, 3)).toBe(table);
    expect(code(() => checkPlacementTable(table, 4))).toBe('BAD_TABLE');
    expect(code(() => checkPlacementTable({ ...table, auc: 1.5 }, 3))).toBe('BAD_TABLE');
    expect(code(() => checkPlacementTable({ ...table, m: 0 }, 3))).toBe('BAD_TABLE');
    expect(code(() => checkPlacementTable({ ...table, v01: [0, 2, 0] }, 3))).toBe('BAD_TABLE');
    const a: BinnedCase[] = [{ cluster: 0, positive: true, bin: 0 }];
    expect(code(() => crossSums(a, [], table, table))).toBe('LENGTH_MISMATCH');
    expect(code(() => crossSums(a, [{ cluster: 1, positive: true, bin: 0 }], table, table))).toBe('LENGTH_MISMATCH');
    expect(code(() => placementSums([{ cluster: 0, positive: true, bin: 3 }], table))).toBe('SCORE_OFF_GRID');
  });
});
