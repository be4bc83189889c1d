import { randomUUID } from 'node:crypto';
import { Level, MetricsGroupBy, Modality } from '../../server/domain';
import { canonicalSha256 } from '../../server/federation/canonical-json';
import { FederationTaskKind } from '../../server/federation/protocol';
import {
  aggregateVocabulary,
  checkAggregateShape,
  decideRelease,
  DEFAULT_RELEASE_POLICY,
  parseReleasePolicy,
  PolicyError,
  type AggregateGroup,
  type GroupRule,
  type ReleasePolicy,
  type ReleaseRequest,
} from '../../server/federation/release-policy';
import { Gen } from './generators';

const SITES = ['NORTH', 'HARBOUR', 'VALLEY'];
const vocabulary = aggregateVocabulary(SITES);
const policy: ReleasePolicy = { ...DEFAULT_RELEASE_POLICY, taskKinds: Object.values(FederationTaskKind), manualApproval: false };
const histogram: ReleaseRequest = { kind: FederationTaskKind.SCORE_HISTOGRAM, scoreBins: 20, arrayLengths: [20] };
const FEATURES = ['JOINT_SPACE_NARROWING', 'OSTEOPHYTES', 'HYPERTROPHY'];

function group(gen: Gen, patients = gen.int(0, 30)): AggregateGroup {
  return {
    key: {
      [MetricsGroupBy.FEATURE]: gen.pick(FEATURES),
      [MetricsGroupBy.MODALITY]: gen.pick(Object.values(Modality)),
      [MetricsGroupBy.LEVEL]: gen.pick(Object.values(Level)),
    },
    patients,
    values: {
      positives: Array.from({ length: 20 }, () => gen.int(0, 9)),
      negatives: Array.from({ length: 20 }, () => gen.int(0, 9)),
      n: gen.int(0, 200),
      s11: (gen.random() - 0.5) * 3,
    },
  };
}

/** Ways a node's own bug could put patient-level data into an aggregate; each must be refused. */
const leaks: [string, (gen: Gen) => string][] = [
  ['a pseudonym', (gen) => `${gen.pick(SITES)}-P${String(gen.int(1, 999)).padStart(3, '0')}`],
  ['a hospital id', (gen) => `${gen.pick(SITES)}-MRN-${gen.int(1000, 9999)}`],
  ['a UUID', () => randomUUID()],
  ['a keyed hash', (gen) => gen.bytes(16).toString('hex')],
  ['a DICOM UID', (gen) => `1.2.826.0.1.3680043.${gen.int(1, 99999)}.${gen.int(1, 99)}`],
  ['a date', (gen) => `2024-0${gen.int(1, 9)}-1${gen.int(0, 9)}`],
  ['an e-mail address', () => 'reader@north.example'],
  ['free text', () => 'patient had surgery'],
];
const placements: [string, (payload: any, leak: string, gen: Gen) => void][] = [
  ['as a key value', (p, leak, gen) => (gen.pick(p.groups as AggregateGroup[]).key.SITE = leak)],
  ['as a dimension', (p, leak, gen) => (gen.pick(p.groups as AggregateGroup[]).key[leak] = 'XR')],
  ['as a value name', (p, leak, gen) => (gen.pick(p.groups as AggregateGroup[]).values[leak] = 1)],
  ['as an extra group field', (p, leak, gen) => (gen.pick(p.groups as any[]).patientId = leak)],
  ['as a top-level field', (p, leak) => (p.note = leak)],
];

describe('release policy', () => {
  it('releases generated aggregates with groups of 1..4 patients suppressed and the rest unchanged, hashed for the audit', () => {
    const gen = new Gen(5);
    for (let i = 0; i < 200; i++) {
      const groups = Array.from({ length: gen.int(1, 12) }, () => group(gen));
      if (groups.every((g) => g.patients > 0 && g.patients < 5)) groups.push(group(gen, 5));
      const decision = decideRelease({ policy, request: histogram, aggregate: { groups }, vocabulary, releasesInPeriod: 0 });
      if (decision.decision === 'REFUSE') throw new Error(decision.detail);
      expect(decision.decision).toBe('RELEASE');
      decision.aggregate.groups.forEach((released, j) => {
        const small = groups[j].patients > 0 && groups[j].patients < 5;
        expect(released).toEqual(small ? { key: groups[j].key, suppressed: true, reason: 'SMALL_GROUP' } : groups[j]);
      });
      expect(decision.suppressed).toBe(groups.filter((g) => g.patients > 0 && g.patients < 5).length);
      expect(decision.sha256).toBe(canonicalSha256(decision.aggregate));
    }
  });

  it('holds a release for approval when the policy says so, showing exactly what would leave, until approved', () => {
    const gen = new Gen(6);
    const aggregate = { groups: [group(gen, 12), group(gen, 2)] };
    const held = decideRelease({ policy: { ...policy, manualApproval: true }, request: histogram, aggregate, vocabulary, releasesInPeriod: 0 });
    const released = decideRelease({
      policy: { ...policy, manualApproval: true },
      request: { ...histogram, approved: true },
      aggregate,
      vocabulary,
      releasesInPeriod: 0,
    });
    expect(held.decision).toBe('HOLD_FOR_APPROVAL');
    expect(released.decision).toBe('RELEASE');
    expect(held).toEqual({ ...released, decision: 'HOLD_FOR_APPROVAL' });
  });

  it.each<[string, Partial<ReleasePolicy>, Partial<ReleaseRequest>, number, string]>([
    ['a kind the node does not answer', { taskKinds: [FederationTaskKind.STUDY_FLOW] }, {}, 0, 'TASK_KIND_NOT_ALLOWED'],
    ['a grid finer than the policy allows', { maxScoreBins: 10 }, {}, 0, 'GRID_TOO_FINE'],
    ['an exhausted budget', { budget: { releases: 3, periodDays: 7 } }, {}, 3, 'BUDGET_EXHAUSTED'],
  ])('refuses %s, with its reason', (_what, policyChange, requestChange, used, reason) => {
    const gen = new Gen(7);
    const decision = decideRelease({
      policy: { ...policy, ...policyChange },
      request: { ...histogram, ...requestChange },
      aggregate: { groups: [group(gen, 10)] },
      vocabulary,
      releasesInPeriod: used,
    });
    expect(decision).toMatchObject({ decision: 'REFUSE', reason });
  });

  it('refuses when every group is too small, and when a plugged-in group rule says so', () => {
    const gen = new Gen(8);
    expect(decideRelease({ policy, request: histogram, aggregate: { groups: [group(gen, 1), group(gen, 4)] }, vocabulary, releasesInPeriod: 0 })).toMatchObject(
      {
        reason: 'ALL_GROUPS_SUPPRESSED',
      },
    );
    // A differencing rule (the node's statistics API will provide one) can refuse the whole release.
    const differencing: GroupRule = (g) => (g.patients === 11 ? { action: 'REFUSE', reason: 'DIFFERENCE_OF_EARLIER_RELEASE' } : { action: 'KEEP' });
    const aggregate = { groups: [group(gen, 12), group(gen, 11)] };
    expect(decideRelease({ policy, request: histogram, aggregate, vocabulary, releasesInPeriod: 0, rule: differencing })).toEqual({
      decision: 'REFUSE',
      reason: 'GROUP_RULE',
      detail: 'DIFFERENCE_OF_EARLIER_RELEASE',
    });
  });

  it('lets zero-patient groups through: an empty cell says nothing about anyone', () => {
    const gen = new Gen(9);
    const empty = group(gen, 0);
    const decision = decideRelease({ policy, request: histogram, aggregate: { groups: [group(gen, 8), empty] }, vocabulary, releasesInPeriod: 0 });
    expect(decision).toMatchObject({ decision: 'RELEASE', suppressed: 0 });
  });

  describe('shape check (last line of defence)', () => {
    it.each(leaks.flatMap(([what, make]) => placements.map(([where, place]) => [what, where, make, place] as const)))(
      'refuses %s %s, without repeating it',
      (_what, _where, make, place) => {
        const gen = new Gen(10);
        for (let i = 0; i < 10; i++) {
          const payload = { groups: Array.from({ length: gen.int(1, 4) }, () => group(gen, 10)) };
          const leak = make(gen);
          place(payload, leak, gen);
          const decision = decideRelease({ policy, request: histogram, aggregate: payload, vocabulary, releasesInPeriod: 0 });
          expect(decision).toMatchObject({ decision: 'REFUSE', reason: 'NOT_AN_AGGREGATE' });
          expect(JSON.stringify(decision)).not.toContain(leak);
        }
      },
    );

    it('refuses per-case arrays: any length but the declared ones, arrays of records, nested objects (generated)', () => {
      const gen = new Gen(11);
      const cases: ((g: AggregateGroup) => void)[] = [
        // The scores of every case, sent as if they were a histogram.
        (g) => (g.values.positives = Array.from({ length: g.patients * 3 + 21 }, () => gen.random())),
        (g) => ((g.values as any).cases = [{ score: 0.4, grade: 1 }]),
        (g) => ((g.values as any).n = { value: 3 }),
        (g) => ((g.values as any).n = '12'),
        (g) => (g.values.n = NaN),
        (g) => (g.values.negatives = [...(g.values.negatives as number[]).slice(0, 19), Infinity]),
        (g) => ((g as any).patients = -1),
        (g) => ((g as any).patients = 2.5),
        (g) => ((g as any).key = ['XR']),
      ];
      for (let i = 0; i < 60; i++) {
        const payload = { groups: Array.from({ length: gen.int(1, 5) }, () => group(gen, gen.int(5, 40))) };
        gen.pick(cases)(gen.pick(payload.groups));
        expect(decideRelease({ policy, request: histogram, aggregate: payload, vocabulary, releasesInPeriod: 0 })).toMatchObject({
          reason: 'NOT_AN_AGGREGATE',
        });
      }
    });

    it('refuses what is not { groups } and what is too large to be an aggregate', () => {
      expect(checkAggregateShape([], { vocabulary, arrayLengths: [] })).toMatchObject({ ok: false });
      expect(checkAggregateShape({ groups: {} }, { vocabulary, arrayLengths: [] })).toMatchObject({ ok: false });
      const gen = new Gen(12);
      const huge = { groups: Array.from({ length: 9000 }, () => group(gen, 10)) };
      expect(checkAggregateShape(huge, { vocabulary, arrayLengths: [20] })).toMatchObject({ ok: false, problem: expect.stringMatching(/bytes/) });
      expect(
        checkAggregateShape({ groups: Array.from({ length: 10_001 }, () => ({ key: {}, patients: 0, values: {} })) }, { vocabulary, arrayLengths: [] }),
      ).toMatchObject({
        ok: false,
      });
    });
  });

  describe(parseReleasePolicy.name, () => {
    it('fills missing fields with the defaults and keeps what is given', () => {
      expect(parseReleasePolicy({})).toEqual(DEFAULT_RELEASE_POLICY);
      expect(parseReleasePolicy({ minGroupPatients: 10, manualApproval: true, budget: null, taskKinds: ['BINARY_COUNTS', 'BINARY_COUNTS'] })).toEqual({
        ...DEFAULT_RELEASE_POLICY,
        minGroupPatients: 10,
        manualApproval: true,
        budget: null,
        taskKinds: ['BINARY_COUNTS'],
      });
    });

    it.each<[unknown, string]>([
      [[], '$'],
      [{ minGroupPatients: 1 }, 'minGroupPatients'],
      [{ minGroupPatients: 5.5 }, 'minGroupPatients'],
      [{ maxScoreBins: 1 }, 'maxScoreBins'],
      [{ taskKinds: ['EVERYTHING'] }, 'taskKinds'],
      [{ manualApproval: 'yes' }, 'manualApproval'],
      [{ budget: { releases: 0, periodDays: 7 } }, 'budget.releases'],
      [{ budget: { releases: 5 } }, 'budget.periodDays'],
      [{ budget: { releases: 5, periodDays: 7, perUser: 1 } }, 'budget.perUser'],
      [{ budget: 5 }, 'budget'],
      [{ minCell: 5 }, 'minCell'],
    ])('refuses %p, naming the field', (raw, field) => {
      expect(() => parseReleasePolicy(raw)).toThrow(PolicyError);
      try {
        parseReleasePolicy(raw);
      } catch (error) {
        expect((error as PolicyError).field).toBe(field);
      }
    });
  });
});
