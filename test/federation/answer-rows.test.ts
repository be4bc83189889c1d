import { agreementValues, parseAgreementQuery } from '../../server/federation/agreement-rounds';
import { federatedAnswerRows, type AnswerPart, type FederatedAnswerRow } from '../../server/federation/answer-rows';
import { bootstrapIntervals, bootstrapSums, type BootstrapSums } from '../../server/federation/bootstrap-rounds';
import { binaryCountsValues } from '../../server/federation/compute-binary';
import { ComputeError } from '../../server/federation/compute-query';
import type { AggregateGroup } from '../../server/federation/release-policy';
import { Gen } from './generators';

/**
 * The hub's one pooling function (answer-rows.ts) on generated federations: pooled rows below the hub's minimum are
 * withheld with SMALL_GROUP however the sites released; the bootstrap's pooled replicates are the union's replicate
 * by replicate, and a pooled row gets intervals only from replicates of exactly the sites of its counts; agreement
 * tables pool to the union's; malformed parts are refused with what is wrong.
 */

const SITES = ['NORTH', 'SOUTH', 'WEST'];
const FEATURES = ['OSTEOPHYTES', 'EROSION'];
const ok = (outcome: ReturnType<typeof federatedAnswerRows>): FederatedAnswerRow[] => {
  if (!outcome.ok) throw new Error(outcome.problem);
  return outcome.rows;
};
const part = (kind: string, query: Record<string, unknown>, aggregates: Record<string, AggregateGroup[]>): AnswerPart => ({
  kind,
  query: query as never,
  sites: Object.keys(aggregates),
  results: Object.entries(aggregates).map(([site, groups]) => ({ site, state: 'SUCCEEDED', payload: { aggregate: { groups } as never } })),
});

interface Case {
  site: string;
  patient: string;
  feature: string;
  truth: number;
  grade: number;
  second: number;
}

function study(gen: Gen): Case[] {
  const cases: Case[] = [];
  for (const site of SITES) {
    for (let p = gen.int(1, 9); p > 0; p--) {
      for (const feature of FEATURES) {
        for (let j = gen.int(1, 3); j > 0; j--) {
          const truth = gen.int(0, 2);
          cases.push({ site, patient: `${site}-${p}`, feature, truth, grade: gen.bool(0.7) ? truth : gen.int(0, 2), second: gen.int(0, 2) });
        }
      }
    }
  }
  return cases;
}

/** Every site's BINARY_COUNTS groups by SITE and FEATURE. */
function binaryGroups(cases: readonly Case[], threshold: number): Record<string, AggregateGroup[]> {
  const out: Record<string, AggregateGroup[]> = {};
  for (const site of SITES) {
    out[site] = FEATURES.flatMap((feature) => {
      const of = cases.filter((c) => c.site === site && c.feature === feature);
      if (of.length === 0) return [];
      const clusters = [...new Set(of.map((c) => c.patient))];
      const values = binaryCountsValues(
        of.map((c) => ({ cluster: clusters.indexOf(c.patient), truth: c.truth, grade: c.grade })),
        threshold,
      );
      return [{ key: { FEATURE: feature, SITE: site }, patients: clusters.length, values }];
    });
  }
  return out;
}

/** A patient's Poisson-like weights from the generator: any fixed weights show the sums add up. */
const weightsOf = (replicates: number) => {
  const cache = new Map<string, Uint8Array>();
  return (patient: string) => {
    if (!cache.has(patient)) {
      const gen = new Gen([...patient].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7));
      cache.set(
        patient,
        Uint8Array.from({ length: replicates }, () => gen.pick([0, 0, 1, 1, 1, 2, 3])),
      );
    }
    return cache.get(patient) as Uint8Array;
  };
};

describe('pooled rows at the hub', () => {
  test.each(Array.from({ length: 25 }, (_, i) => 3100 + i))('seed %i: the minimum on pooled rows, bootstrap replicates of the union', (seed) => {
    const gen = new Gen(seed);
    const cases = study(gen);
    const threshold = 1;
    const min = gen.int(3, 20);
    const replicates = 100;
    const weights = weightsOf(replicates);
    const query = { rater: { readerSlot: 'FIRST' }, scope: {}, groupBy: ['FEATURE', 'SITE'], threshold };
    const boot: Record<string, AggregateGroup[]> = {};
    // One site may withhold its replicates: pooled rows with it then have no bootstrap intervals.
    const silent = gen.bool(0.3) ? gen.pick(SITES) : null;
    for (const site of SITES) {
      if (site === silent) continue;
      boot[site] = FEATURES.flatMap((feature) => {
        const of = cases.filter((c) => c.site === site && c.feature === feature);
        if (of.length === 0) return [];
        const values = bootstrapSums(
          of.map((c) => ({ patientKey: c.patient, truth: c.truth, grade: c.grade })),
          threshold,
          replicates,
          weights,
        );
        return [{ key: { FEATURE: feature, SITE: site }, patients: new Set(of.map((c) => c.patient)).size, values }];
      });
    }
    const rows = ok(
      federatedAnswerRows(
        'BINARY_COUNTS',
        [part('BINARY_COUNTS', query, binaryGroups(cases, threshold)), part('BOOTSTRAP_SUMS', { ...query, seed: 'abcdefgh', replicates }, boot)],
        { minGroupPatients: min },
      ),
    ) as Array<Record<string, any>>;
    for (const feature of FEATURES) {
      const of = cases.filter((c) => c.feature === feature);
      const patients = new Set(of.map((c) => c.patient)).size;
      const pooled = rows.find((r) => r.pooled && r.key.FEATURE === feature)!;
      if (patients < min) {
        expect(pooled).toMatchObject({ suppressed: true, suppression: 'SMALL_GROUP', patients: null, values: null, metrics: null, bootstrap: null });
        continue;
      }
      expect(pooled.patients).toBe(patients);
      if (silent !== null && of.some((c) => c.site === silent)) {
        expect(pooled.bootstrap).toBeNull();
        continue;
      }
      const union = bootstrapSums(
        of.map((c) => ({ patientKey: c.patient, truth: c.truth, grade: c.grade })),
        threshold,
        replicates,
        weights,
      );
      const { tp, fp, tn, fn } = pooled.values;
      expect(pooled.bootstrap).toEqual(bootstrapIntervals({ tp, fp, tn, fn }, union as BootstrapSums));
    }
    // Site rows are the sites' own, never held to the hub's minimum (each site applied its own).
    expect(rows.filter((r) => !r.pooled).every((r) => !r.suppressed)).toBe(true);
  });

  test.each(Array.from({ length: 15 }, (_, i) => 3200 + i))('seed %i: agreement tables pool to the union’s kappa and McNemar', (seed) => {
    const gen = new Gen(seed);
    const cases = study(gen);
    const groups: Record<string, AggregateGroup[]> = {};
    for (const site of SITES) {
      groups[site] = FEATURES.flatMap((feature) => {
        const of = cases.filter((c) => c.site === site && c.feature === feature);
        if (of.length === 0) return [];
        const values = agreementValues(
          of.map((c) => ({ first: c.grade, second: c.second, truth: c.truth })),
          3,
          1,
        );
        return [{ key: { FEATURE: feature, SITE: site }, patients: new Set(of.map((c) => c.patient)).size, values }];
      });
    }
    const rows = ok(federatedAnswerRows('AGREEMENT', [part('AGREEMENT', {}, groups)], { minGroupPatients: 1 })) as Array<Record<string, any>>;
    for (const feature of FEATURES) {
      const of = cases.filter((c) => c.feature === feature);
      const union = agreementValues(
        of.map((c) => ({ first: c.grade, second: c.second, truth: c.truth })),
        3,
        1,
      );
      const pooled = rows.find((r) => r.pooled && r.key.FEATURE === feature)!;
      expect(pooled.values).toEqual(union);
      expect(pooled.agreement.paired).toEqual({
        bothCorrect: union.discordant[0],
        modelOnly: union.discordant[1],
        readerOnly: union.discordant[2],
        neither: union.discordant[3],
      });
    }
  });

  test('malformed parts are refused with what is wrong, never pooled', () => {
    const table = { key: { FEATURE: 'EROSION', SITE: 'NORTH' }, patients: 6, values: { table: [1, 2, 3], discordant: [1, 1, 1, 0] } };
    expect(federatedAnswerRows('AGREEMENT', [part('AGREEMENT', {}, { NORTH: [table] })], { minGroupPatients: 1 })).toMatchObject({
      ok: false,
      problem: expect.stringContaining('k x k'),
    });
    const negative = { ...table, values: { table: [1, -2, 3, 4], discordant: [1, 1, 1, 0] } };
    expect(federatedAnswerRows('AGREEMENT', [part('AGREEMENT', {}, { NORTH: [negative] })], { minGroupPatients: 1 })).toMatchObject({
      ok: false,
      problem: expect.stringContaining('must be a count'),
    });
    const query = { rater: { readerSlot: 'FIRST' }, scope: {}, groupBy: ['SITE'], threshold: 1 };
    const counts = binaryGroups(study(new Gen(1)), 1);
    const shortReplicates = { NORTH: [{ key: { FEATURE: 'EROSION', SITE: 'NORTH' }, patients: 6, values: { tp: [1], fp: [1], tn: [1], fn: [1] } }] };
    expect(
      federatedAnswerRows('BINARY_COUNTS', [part('BINARY_COUNTS', query, counts), part('BOOTSTRAP_SUMS', { ...query, replicates: 100 }, shortReplicates)], {
        minGroupPatients: 1,
      }),
    ).toMatchObject({ ok: false, problem: expect.stringContaining('length') });
    expect(federatedAnswerRows('PLACEMENT_SUMS', [part('PLACEMENT_SUMS', {}, {})], { minGroupPatients: 1 })).toMatchObject({ ok: false });
  });

  test('an AGREEMENT query names two different raters and groups by FEATURE', () => {
    const scope = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };
    const base = { scope, groupBy: ['FEATURE'], threshold: 1 };
    expect(parseAgreementQuery({ ...base, raters: [{ readerSlot: 'FIRST' }, { readerSlot: 'SECOND' }] }).raters).toHaveLength(2);
    for (const [raw, problem] of [
      [{ ...base, raters: [{ readerSlot: 'FIRST' }] }, 'exactly two'],
      [{ ...base, raters: [{ readerSlot: 'FIRST' }, { readerSlot: 'FIRST' }] }, 'different'],
      [{ ...base, groupBy: ['SITE'], raters: [{ readerSlot: 'FIRST' }, { readerSlot: 'SECOND' }] }, 'FEATURE'],
      [{ ...base, grids: [], raters: [{ readerSlot: 'FIRST' }, { readerSlot: 'SECOND' }] }, 'unknown field'],
      [{ ...base, raters: [{ readerSlot: 'THIRD' }, { readerSlot: 'SECOND' }] }, 'raters[0]'],
    ] as const) {
      expect(() => parseAgreementQuery(raw)).toThrow(ComputeError);
      expect(() => parseAgreementQuery(raw)).toThrow(problem);
    }
  });
});
