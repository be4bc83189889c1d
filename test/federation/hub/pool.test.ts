import { computeGroup } from '../../../server/stats/engine';
import { wilson } from '../../../server/stats/proportion';
import { canonicalSha256 } from '../../../server/federation/canonical-json';
import { aggregateVocabulary } from '../../../server/federation/release-policy';
import { AggregateError, answerRowsOf, parseReleasedAggregate, poolContributions, rowsSha256 } from '../../../server/federation/pool';
import { FederationTaskKind } from '../../../server/federation/protocol';
import { Gen } from '../generators';
import { binaryCountsAggregate, binaryCountsValues, FEATURES, generateSiteCases, studyFlowAggregate, type SiteCase } from './cases';

const SITES = ['NORTH', 'SOUTH', 'HARBOUR', 'EAST'];
const vocabulary = aggregateVocabulary();
const ENGINE = { threshold: 1, grades: 4, level: 0.95, bootstrap: { replicates: 20, seed: 1 } };

/** Generated sites (disjoint patients), their aggregates as released, and the union of their cases. */
function federation(seed: number, minPatients = 1) {
  const gen = new Gen(seed);
  const sites = SITES.slice(0, gen.int(2, SITES.length));
  let next = 0;
  const bySite = sites.map((site) => {
    const patients = gen.int(3, 40);
    const cases = generateSiteCases(gen, patients, next);
    next += patients;
    return { site, cases, aggregate: binaryCountsAggregate(site, cases, minPatients) };
  });
  return { bySite, union: bySite.flatMap((s) => s.cases) };
}

const close = (a: number | null, b: number | null) => (a === null || b === null ? expect(a).toBe(b) : expect(Math.abs(a - b)).toBeLessThan(1e-9));

describe('pool', () => {
  it('pools BINARY_COUNTS to the single-node numbers on the union of the data, within 1e-9 (generated federations)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const { bySite, union } = federation(seed);
      const rows = poolContributions(
        FederationTaskKind.BINARY_COUNTS,
        bySite.map((s) => ({ site: s.site, aggregate: parseReleasedAggregate(FederationTaskKind.BINARY_COUNTS, s.aggregate, vocabulary) })),
      );
      for (const feature of FEATURES) {
        const cases: SiteCase[] = union.filter((c) => c.feature === feature);
        const pooled = rows.find((r) => r.pooled && r.key.FEATURE === feature);
        if (cases.length === 0) {
          expect(pooled?.values ?? null).toBeNull();
          continue;
        }
        const clustered = computeGroup(cases, { ...ENGINE, clustered: true });
        const independent = computeGroup(cases, { ...ENGINE, clustered: false });
        const m = pooled!.metrics!;
        expect(pooled!.values).toMatchObject(clustered.confusion);
        expect(pooled!.values).toEqual(binaryCountsValues(cases));
        for (const name of ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv'] as const) {
          for (const field of ['value', 'lower', 'upper'] as const) {
            close(m[name].clustered[field], clustered[name][field]);
            close(m[name].wilson[field], independent[name][field]);
          }
          expect(m[name].clustered.method).toBe('wilson-clustered');
          expect(m[name].clustered.reason).toBe(clustered[name].reason);
        }
        close(m.f1.value, clustered.f1.value);
        close(m.youden.value, clustered.youden.value);
      }
    }
  });

  it('keeps each site row as released, shows suppressed groups as suppressed and names them in the pooled row', () => {
    for (let seed = 100; seed < 130; seed++) {
      const { bySite } = federation(seed, 5);
      const contributions = bySite.map((s) => ({ site: s.site, aggregate: parseReleasedAggregate(FederationTaskKind.BINARY_COUNTS, s.aggregate, vocabulary) }));
      const rows = poolContributions(FederationTaskKind.BINARY_COUNTS, contributions);
      for (const { site, aggregate } of bySite) {
        for (const group of aggregate.groups) {
          const row = rows.find((r) => !r.pooled && r.node === site && r.key.FEATURE === group.key.FEATURE)!;
          if ('suppressed' in group) {
            expect(row).toMatchObject({ suppressed: true, suppression: 'SMALL_GROUP', values: null, metrics: null, patients: null });
            expect(rows.find((r) => r.pooled && r.key.FEATURE === group.key.FEATURE)!.withheld).toContain(site);
          } else expect(row).toMatchObject({ suppressed: false, patients: group.patients, values: group.values });
        }
      }
      for (const pooled of rows.filter((r) => r.pooled)) {
        const released = bySite.filter((s) => s.aggregate.groups.some((g) => g.key.FEATURE === pooled.key.FEATURE && !('suppressed' in g)));
        expect(pooled.sites).toEqual(released.map((s) => s.site).sort());
        expect(pooled.suppressed).toBe(released.length === 0);
      }
      // The same contributions in another order pool to the same rows and hash.
      expect(rowsSha256(poolContributions(FederationTaskKind.BINARY_COUNTS, [...contributions].reverse()))).toBe(rowsSha256(rows));
    }
  });

  it('sums STUDY_FLOW counts over sites', () => {
    const gen = new Gen(7);
    const aggregates = SITES.map((site) => ({ site, aggregate: studyFlowAggregate(gen, site) }));
    const rows = poolContributions(
      FederationTaskKind.STUDY_FLOW,
      aggregates.map((a) => ({ site: a.site, aggregate: parseReleasedAggregate(FederationTaskKind.STUDY_FLOW, a.aggregate, vocabulary) })),
    );
    const pooled = rows.find((r) => r.pooled)!;
    for (const field of ['enrolled', 'excluded', 'eligible', 'joints', 'assessable', 'notAssessable', 'analysed']) {
      expect(pooled.values![field]).toBe(aggregates.reduce((sum, a) => sum + (a.aggregate.groups[0].values[field] as number), 0));
    }
    expect(rows.filter((r) => !r.pooled).map((r) => r.node)).toEqual([...SITES].sort());
  });

  it.each([
    ['not { groups }', { rows: [] }],
    ['a pseudonym in a key', { groups: [{ key: { SITE: 'NORTH', FEATURE: 'PAT-000123' }, patients: 5, values: {} }] }],
    ['a missing value', { groups: [{ key: { SITE: 'NORTH' }, patients: 5, values: { enrolled: 1 } }] }],
    [
      'a negative count',
      {
        groups: [
          { key: { SITE: 'NORTH' }, patients: 5, values: { enrolled: -1, excluded: 0, eligible: 0, joints: 0, assessable: 0, notAssessable: 0, analysed: 0 } },
        ],
      },
    ],
    [
      'a fractional count',
      {
        groups: [
          { key: { SITE: 'NORTH' }, patients: 5, values: { enrolled: 1.5, excluded: 0, eligible: 0, joints: 0, assessable: 0, notAssessable: 0, analysed: 0 } },
        ],
      },
    ],
    [
      'an additional value that is an array',
      {
        groups: [
          {
            key: { SITE: 'NORTH' },
            patients: 5,
            values: { enrolled: 1, excluded: 0, eligible: 0, joints: 0, assessable: 0, notAssessable: 0, analysed: 0, tp: [1] },
          },
        ],
      },
    ],
    [
      'a negative additional value',
      {
        groups: [
          {
            key: { SITE: 'NORTH' },
            patients: 5,
            values: { enrolled: 1, excluded: 0, eligible: 0, joints: 0, assessable: 0, notAssessable: 0, analysed: 0, FRACTURE: -1 },
          },
        ],
      },
    ],
    ['a suppressed group with numbers', { groups: [{ key: { SITE: 'NORTH' }, suppressed: true, reason: 'SMALL_GROUP', patients: 3 }] }],
    ['a suppressed group with free text as reason', { groups: [{ key: { SITE: 'NORTH' }, suppressed: true, reason: 'too small, only Mrs Smith' }] }],
    [
      'two groups with one key',
      {
        groups: [
          { key: { SITE: 'NORTH' }, suppressed: true, reason: 'SMALL_GROUP' },
          { key: { SITE: 'NORTH' }, suppressed: true, reason: 'SMALL_GROUP' },
        ],
      },
    ],
  ])('refuses an aggregate with %s', (_label, aggregate) => {
    expect(() => parseReleasedAggregate(FederationTaskKind.STUDY_FLOW, aggregate, vocabulary)).toThrow(AggregateError);
    expect(answerRowsOf(FederationTaskKind.STUDY_FLOW, [{ site: 'NORTH', state: 'SUCCEEDED', payload: { aggregate } }]).ok).toBe(false);
  });

  it("sums a node's additional counts (exclusions by reason) like the kind's own", () => {
    const group = (site: string, fracture: number) => ({
      key: { SITE: site },
      patients: 9,
      values: { enrolled: 9, excluded: fracture, eligible: 9 - fracture, joints: 90, assessable: 80, notAssessable: 10, analysed: 80, FRACTURE: fracture },
    });
    const rows = poolContributions(
      FederationTaskKind.STUDY_FLOW,
      [group('NORTH', 2), group('SOUTH', 3)].map((g) => ({
        site: g.key.SITE,
        aggregate: parseReleasedAggregate(FederationTaskKind.STUDY_FLOW, { groups: [g] }, vocabulary),
      })),
    );
    expect(rows.find((r) => r.pooled)!.values).toMatchObject({ excluded: 5, FRACTURE: 5, enrolled: 18 });
  });

  it('refuses BINARY_COUNTS arrays of another length than the proportions (a per-case list cannot pass)', () => {
    const values = binaryCountsValues(generateSiteCases(new Gen(3), 10, 0));
    const aggregate = { groups: [{ key: { SITE: 'NORTH' }, patients: 10, values: { ...values, x: [...values.x, 1] } }] };
    expect(() => parseReleasedAggregate(FederationTaskKind.BINARY_COUNTS, aggregate, vocabulary)).toThrow(/declared lengths/);
  });

  it('hashes rows canonically', () => {
    const rows = poolContributions(FederationTaskKind.STUDY_FLOW, []);
    expect(rows).toEqual([]);
    expect(rowsSha256(rows)).toBe(canonicalSha256([]));
    expect(wilson(0, 0).reason).toBe('NO_CASES');
  });
});
