import {
  BOOTSTRAP_STATISTICS,
  bootstrapIntervals,
  bootstrapSums,
  parseBootstrapQuery,
  type BootstrapCase,
  type BootstrapSums,
  type Confusion,
} from '../../server/federation/bootstrap-rounds';
import { ComputeError } from '../../server/federation/compute-query';
import { poissonWeights } from '../../server/federation/poisson-bootstrap';
import { quantile } from '../../server/stats/bootstrap';
import { Gen } from './generators';

const SITES = ['NORTH', 'SOUTH', 'WEST'];
const REPLICATES = 200;

interface SiteCase extends BootstrapCase {
  site: string;
}

function study(gen: Gen): SiteCase[] {
  const cases: SiteCase[] = [];
  for (const site of SITES) {
    for (let p = gen.int(0, 30); p > 0; p--) {
      for (let j = gen.int(1, 4); j > 0; j--) {
        const truth = gen.int(0, 3);
        cases.push({ site, patientKey: `${site}:P${p}`, truth, grade: gen.bool(0.7) ? truth : gen.int(0, 3) });
      }
    }
  }
  return cases;
}

const add = (list: readonly BootstrapSums[]): BootstrapSums => {
  const out: BootstrapSums = { tp: [], fp: [], tn: [], fn: [] };
  for (const f of ['tp', 'fp', 'tn', 'fn'] as const) out[f] = list[0][f].map((_, r) => list.reduce((s, x) => s + x[f][r], 0));
  return out;
};

describe('the Poisson cluster bootstrap across sites gives the union’s replicates exactly', () => {
  test.each(Array.from({ length: 12 }, (_, i) => 500 + i))('seed %i', (seed) => {
    const gen = new Gen(seed);
    const keys = new Map(SITES.map((s) => [s, gen.bytes(32)]));
    const cases = study(gen);
    const threshold = gen.int(1, 3);
    const taskSeed = `task-${seed}-abc`;
    const cache = new Map<string, Uint8Array>();
    const weightsOf = (site: string) => (patientKey: string) => {
      const id = `${site} ${patientKey}`;
      if (!cache.has(id)) cache.set(id, poissonWeights(keys.get(site) as Buffer, taskSeed, patientKey, REPLICATES));
      return cache.get(id) as Uint8Array;
    };
    const pooled = add(
      SITES.map((site) =>
        bootstrapSums(
          cases.filter((c) => c.site === site),
          threshold,
          REPLICATES,
          weightsOf(site),
        ),
      ),
    );

    // The union, resampled the plain way: each case repeated as often as its patient's weight in the replicate.
    for (let r = 0; r < REPLICATES; r++) {
      const resample = cases.flatMap((c) => new Array<SiteCase>(weightsOf(c.site)(c.patientKey)[r]).fill(c));
      const count = (positive: boolean, called: boolean) => resample.filter((c) => c.truth >= threshold === positive && c.grade >= threshold === called).length;
      expect([pooled.tp[r], pooled.fp[r], pooled.tn[r], pooled.fn[r]]).toEqual([
        count(true, true),
        count(false, true),
        count(false, false),
        count(true, false),
      ]);
    }

    const point: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
    for (const c of cases) point[c.truth >= threshold ? (c.grade >= threshold ? 'tp' : 'fn') : c.grade >= threshold ? 'fp' : 'tn']++;
    const intervals = bootstrapIntervals(point, pooled);
    for (const [name, { of }] of Object.entries(BOOTSTRAP_STATISTICS)) {
      const estimate = intervals[name];
      expect(estimate.value).toBe(of(point));
      if (estimate.lower === null) continue;
      const values = pooled.tp
        .map((_, r) => of({ tp: pooled.tp[r], fp: pooled.fp[r], tn: pooled.tn[r], fn: pooled.fn[r] }))
        .filter((v): v is number => v !== null)
        .sort((a, b) => a - b);
      // The node's percentile positions, computed the node's way (stats/bootstrap.ts).
      const alpha = (1 - 0.95) / 2;
      expect(estimate.lower).toBe(quantile(values, alpha));
      expect(estimate.upper).toBe(quantile(values, 1 - alpha));
      expect(estimate.method).toBe(`poisson-cluster-bootstrap-percentile(B=${REPLICATES})`);
    }
  });

  test('undefined statistics and too many undefined replicates are reported, not hidden', () => {
    const none = bootstrapIntervals({ tp: 0, fp: 0, tn: 0, fn: 0 }, { tp: [0], fp: [0], tn: [0], fn: [0] });
    expect(none.sensitivity.reason).toBe('NO_POSITIVES');
    expect(none.accuracy.reason).toBe('NO_CASES');
    // One positive patient: most replicates that drop it have no positives.
    const sums = bootstrapSums([{ patientKey: 'a', truth: 1, grade: 1 }], 1, 200, () => poissonWeights(Buffer.alloc(32, 1), 'seed-0001', 'a', 200));
    expect(bootstrapIntervals({ tp: 1, fp: 0, tn: 0, fn: 0 }, sums).sensitivity.reason).toBe('FEW_CLUSTERS');
  });
});

describe('BOOTSTRAP_SUMS queries and weights are checked', () => {
  const good = {
    rater: { readerSlot: 'FIRST' },
    scope: { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true },
    groupBy: ['SITE'],
    threshold: 1,
    seed: 'study-2026-a',
    replicates: 1000,
  };
  const code = (raw: unknown) => {
    try {
      parseBootstrapQuery(raw);
    } catch (e) {
      expect(e).toBeInstanceOf(ComputeError);
      return (e as ComputeError).message;
    }
    return 'accepted';
  };

  test('seed, replicates and the BINARY_COUNTS fields', () => {
    expect(parseBootstrapQuery(good)).toMatchObject({ seed: 'study-2026-a', replicates: 1000, threshold: 1 });
    expect(code({ ...good, seed: 'short' })).toMatch(/query.seed/);
    expect(code({ ...good, seed: 'has space in it' })).toMatch(/query.seed/);
    expect(code({ ...good, replicates: 99 })).toMatch(/query.replicates/);
    expect(code({ ...good, replicates: 100_001 })).toMatch(/query.replicates/);
    expect(code({ ...good, replicates: 500.5 })).toMatch(/query.replicates/);
    expect(code({ ...good, threshold: 11 })).toMatch(/query.threshold/);
    expect(code({ ...good, extra: true })).toMatch(/query.extra/);
    expect(code(null)).toMatch(/query/);
  });

  test('a weight vector of the wrong length fails the computation', () => {
    expect(() => bootstrapSums([{ patientKey: 'a', truth: 1, grade: 1 }], 1, 10, () => new Uint8Array(9))).toThrow(ComputeError);
  });
});
