import { SuppressionReason } from '../../server/domain';
import { rocCurve } from '../../server/stats/auc';
import { seededRandom } from '../../server/stats/bootstrap';
import { averagedGridRocCurve, gridRocCurve, Population, releaseCheck, rocGrid, type Box, type PopulationCase } from '../../server/stats/disclosure';
import { computeReaderAveraged, type ReaderCase } from '../../server/stats/reader-average';

const { FEWER_THAN_MIN_PATIENTS, COMPLEMENT_TOO_SMALL } = SuppressionReason;

/** Cases of `patients` patients in one cell each (ids prefixed so cells do not share patients by accident). */
function cell(prefix: string, patients: number, ...values: Array<string | null>): PopulationCase[] {
  return Array.from({ length: patients }, (_, i) => ({ patient: `${prefix}${i}`, values }));
}

const box = (...dims: Array<Array<string | null> | null>): Box => dims.map((d) => (d ? new Set(d) : null));

describe('releaseCheck', () => {
  it('withholds a row of fewer patients than the minimum, counting patients, not cases', () => {
    const population = new Population(1, [...cell('a', 4, 'A'), ...cell('a', 4, 'A'), ...cell('b', 10, 'B')]);
    expect(releaseCheck(population, box(['A']), 5)).toBe(FEWER_THAN_MIN_PATIENTS);
    expect(releaseCheck(population, box(['A']), 4)).toBeNull();
    expect(releaseCheck(population, box(['C']), 1)).toBe(FEWER_THAN_MIN_PATIENTS);
  });

  it('withholds a row a wider scope would differ from by a small group, and allows an empty difference', () => {
    // Site A: 10 patients, site B: 2. "Site A" and "every site" differ by B's 2 patients.
    const population = new Population(1, [...cell('a', 10, 'A'), ...cell('b', 2, 'B')]);
    expect(releaseCheck(population, box(['A']), 5)).toBe(COMPLEMENT_TOO_SMALL);
    expect(releaseCheck(population, box(null), 5)).toBeNull();
    expect(releaseCheck(population, box(['A', 'B']), 5)).toBeNull();
    // Nothing outside the row: the complement is empty.
    expect(releaseCheck(new Population(1, cell('a', 10, 'A')), box(['A']), 5)).toBeNull();
  });

  it('finds a small difference reachable only by widening two dimensions at once', () => {
    // Rows (site A, level 1) and (site A or B, level 1 or 2) differ by (B, 2) alone: (A, 2) and (B, 1) are empty.
    const population = new Population(2, [...cell('a', 10, 'A', '1'), ...cell('b', 2, 'B', '2'), ...cell('c', 10, 'C', '1'), ...cell('d', 10, 'A', '3')]);
    expect(releaseCheck(population, box(['A'], ['1']), 5)).toBe(COMPLEMENT_TOO_SMALL);
    // Once (A, 2) holds enough patients, every wider box that takes (B, 2) also takes them.
    const covered = new Population(2, [...cell('a', 10, 'A', '1'), ...cell('b', 2, 'B', '2'), ...cell('e', 5, 'A', '2')]);
    expect(releaseCheck(covered, box(['A'], ['1']), 5)).toBeNull();
  });

  it('judges a row by the values its cases hold, so a value naming no case cannot hide a small difference', () => {
    // (a, x): 10 patients, (a, y): 2, (c, y): 10. The box {a, c} x {x} holds exactly (a, x), as does {a} x {x};
    // {a} x {x, y} differs from both by (a, y)'s 2 patients, so neither spelling may be released.
    const population = new Population(2, [...cell('ax', 10, 'a', 'x'), ...cell('ay', 2, 'a', 'y'), ...cell('cy', 10, 'c', 'y')]);
    expect(releaseCheck(population, box(['a', 'c'], ['x']), 5)).toBe(COMPLEMENT_TOO_SMALL);
    expect(releaseCheck(population, box(['a'], ['x']), 5)).toBe(COMPLEMENT_TOO_SMALL);
    expect(releaseCheck(population, box(['a'], ['x', 'y']), 5)).toBeNull();
  });

  it('treats null as a value of its own (a patient the split version does not assign)', () => {
    const population = new Population(1, [...cell('t', 8, 'TRAIN'), ...cell('u', 1, null)]);
    expect(releaseCheck(population, box(['TRAIN']), 5)).toBe(COMPLEMENT_TOO_SMALL);
    expect(releaseCheck(population, box(null), 5)).toBeNull();
  });

  it('rejects a box of the wrong shape and a case of the wrong arity', () => {
    expect(() => releaseCheck(new Population(2, []), box(null), 5)).toThrow(RangeError);
    expect(() => new Population(2, [{ patient: 1, values: ['A'] }])).toThrow(RangeError);
  });
});

/** A seeded study: patients with a site and, half the time, a patient-level split; cases spread over the other dimensions. */
function randomStudy(random: () => number, domains: ReadonlyArray<ReadonlyArray<string | null>>): PopulationCase[] {
  const pick = <T>(values: readonly T[]) => values[Math.floor(random() * values.length)];
  const patients = 4 + Math.floor(random() * 14);
  const splitPerPatient = random() < 0.5;
  const cases: PopulationCase[] = [];
  for (let p = 0; p < patients; p++) {
    const site = pick(domains[0]);
    const split = pick(domains[1]);
    const n = 1 + Math.floor(random() * 4);
    for (let c = 0; c < n; c++) {
      cases.push({ patient: p, values: [site, splitPerPatient ? split : pick(domains[1]), ...domains.slice(2).map(pick)] });
    }
  }
  return cases;
}

/** Every box with a non-empty value set on each dimension. */
function allBoxes(domains: ReadonlyArray<ReadonlyArray<string | null>>): Array<Array<Set<string | null>>> {
  const subsets = (values: ReadonlyArray<string | null>) =>
    Array.from({ length: (1 << values.length) - 1 }, (_, m) => new Set(values.filter((_, i) => (m + 1) & (1 << i))));
  return domains.reduce<Array<Array<Set<string | null>>>>((boxes, values) => boxes.flatMap((b) => subsets(values).map((s) => [...b, s])), [[]]);
}

/** The cases of a box as a bit set, and the patients of a bit set. */
const casesIn = (cases: PopulationCase[], b: ReadonlyArray<ReadonlySet<string | null>>): bigint =>
  cases.reduce((bits, c, i) => (c.values.every((v, d) => b[d].has(v)) ? bits | (1n << BigInt(i)) : bits), 0n);
function patientsOf(cases: PopulationCase[], bits: bigint): number {
  const patients = new Set<string | number>();
  for (let i = 0; i < cases.length; i++) if (bits & (1n << BigInt(i))) patients.add(cases[i].patient);
  return patients.size;
}

const DOMAINS_3: Array<Array<string | null>> = [
  ['N', 'H', 'V'],
  ['TRAIN', 'TEST'],
  ['L1', 'L2', null],
];
const DOMAINS_4: Array<Array<string | null>> = [
  ['N', 'H', 'V'],
  ['TRAIN', 'TEST'],
  ['L1', 'L2'],
  ['CT', 'MR', 'XR'],
];

describe('releaseCheck against every query an attacker can write (seeded generator)', () => {
  const studies = [
    ...Array.from({ length: 40 }, (_, seed) => ({ seed, domains: DOMAINS_3 })),
    ...Array.from({ length: 6 }, (_, seed) => ({ seed: 100 + seed, domains: DOMAINS_4 })),
  ];

  it.each(studies)('study $seed: releases exactly the rows whose every enclosing query differs by none or enough patients', ({ seed, domains }) => {
    const random = seededRandom(seed);
    const cases = randomStudy(random, domains);
    const population = new Population(domains.length, cases);
    const minPatients = 2 + (seed % 4);
    const boxes = allBoxes(domains).map((b) => ({ b, bits: casesIn(cases, b) }));
    let released = 0;
    let withheld = 0;
    for (const row of boxes) {
      // Brute force: every query whose cases include the row's, whatever its box.
      let expected: SuppressionReason | null = patientsOf(cases, row.bits) < minPatients ? FEWER_THAN_MIN_PATIENTS : null;
      if (!expected) {
        for (const wider of boxes) {
          if ((wider.bits & row.bits) !== row.bits) continue;
          const extra = patientsOf(cases, wider.bits & ~row.bits);
          if (extra > 0 && extra < minPatients) {
            expected = COMPLEMENT_TOO_SMALL;
            break;
          }
        }
      }
      // A dimension selecting every value may be written as null ("no filter").
      const written = row.b.map((s, d) => (s.size === domains[d].length && random() < 0.5 ? null : s));
      expect(releaseCheck(population, written, minPatients)).toBe(expected);
      if (expected) withheld++;
      else released++;
    }
    expect(released + withheld).toBe(boxes.length);
  });

  it('stops every differencing attack between two released rows that recovers a small group without the rule', () => {
    /** Pairs of rows with nested cases whose difference holds 1 to minPatients - 1 patients. */
    const attacks = (cases: PopulationCase[], rows: bigint[], minPatients: number): number => {
      let found = 0;
      for (const small of rows) {
        for (const large of rows) {
          if (small === large || (large & small) !== small) continue;
          const difference = patientsOf(cases, large & ~small);
          if (difference > 0 && difference < minPatients) found++;
        }
      }
      return found;
    };
    let withoutRule = 0;
    for (const { seed, domains } of studies.slice(0, 20)) {
      const cases = randomStudy(seededRandom(seed), domains);
      const population = new Population(domains.length, cases);
      const minPatients = 2 + (seed % 4);
      const boxes = allBoxes(domains);
      // Without the rule an attacker gets every row of at least minPatients patients (primary suppression only).
      withoutRule += attacks(
        cases,
        boxes.map((b) => casesIn(cases, b)).filter((bits) => patientsOf(cases, bits) >= minPatients),
        minPatients,
      );
      const released = boxes.filter((b) => releaseCheck(population, b, minPatients) === null).map((b) => casesIn(cases, b));
      expect(attacks(cases, released, minPatients)).toBe(0);
    }
    // The generator does make small groups that differencing would recover without the complement rule.
    expect(withoutRule).toBeGreaterThan(100);
  });

  it('never leaves fewer than the minimum between a pooled row and the released groups of any grouping', () => {
    let mixed = 0;
    for (const { seed, domains } of studies.slice(0, 20)) {
      const cases = randomStudy(seededRandom(seed), domains);
      const population = new Population(domains.length, cases);
      const minPatients = 2 + (seed % 4);
      const groupings = Array.from({ length: (1 << domains.length) - 1 }, (_, m) => domains.map((_, d) => ((m + 1) & (1 << d)) !== 0));
      for (const scope of allBoxes(domains)) {
        if (releaseCheck(population, scope, minPatients) !== null) continue;
        for (const grouped of groupings) {
          const keys = new Map<string, Array<string | null>>();
          for (const c of cases)
            if (c.values.every((v, d) => scope[d].has(v))) keys.set(JSON.stringify(c.values.map((v, d) => (grouped[d] ? v : '*'))), [...c.values]);
          let withheldBits = 0n;
          let released = 0;
          for (const values of keys.values()) {
            const group = scope.map((s, d) => (grouped[d] ? new Set([values[d]]) : s));
            if (releaseCheck(population, group, minPatients) !== null) withheldBits |= casesIn(cases, group);
            else released++;
          }
          if (withheldBits && released) mixed++;
          // Pooled minus the released groups is the withheld groups: none, or enough patients.
          const hidden = patientsOf(cases, withheldBits);
          expect(hidden === 0 || hidden >= minPatients).toBe(true);
        }
      }
    }
    // Answers with withheld and released groups side by side, where the pooled row could give a group away.
    expect(mixed).toBeGreaterThan(100);
  });
});

describe('gridRocCurve', () => {
  const random = seededRandom(11);
  const cases = Array.from({ length: 300 }, (_, i) => {
    const cluster = Math.floor(i / 5);
    const positive = random() < 0.4;
    return { cluster, positive, score: Math.min(1, Math.max(0, (positive ? 0.6 : 0.35) + (random() - 0.5) * 0.6)) };
  });

  it('puts points only at grid thresholds, each step covering enough patients, and agrees with the exact curve there', () => {
    const grid = rocGrid({ probabilities: true, steps: 20 });
    expect(grid).toHaveLength(21);
    expect(grid[0]).toBe(1);
    expect(grid[20]).toBe(0);
    const curve = gridRocCurve(cases, grid, 5);
    expect(curve.thresholds[0]).toBeNull();
    expect(curve.fpr.at(-1)).toBe(1);
    expect(curve.tpr.at(-1)).toBe(1);
    const positives = cases.filter((c) => c.positive).length;
    const negatives = cases.length - positives;
    for (let i = 1; i < curve.thresholds.length; i++) {
      const t = curve.thresholds[i] as number;
      expect(grid).toContain(t);
      // Each step (the cases between this point and the one before) holds at least 5 patients.
      const lower = t;
      const upper = i === 1 ? Infinity : (curve.thresholds[i - 1] as number);
      const step = cases.filter((c) => (i === curve.thresholds.length - 1 ? true : c.score >= lower) && c.score < upper);
      expect(new Set(step.map((c) => c.cluster)).size).toBeGreaterThanOrEqual(5);
      if (i < curve.thresholds.length - 1) {
        expect(curve.tpr[i]).toBeCloseTo(cases.filter((c) => c.positive && c.score >= t).length / positives, 12);
        expect(curve.fpr[i]).toBeCloseTo(cases.filter((c) => !c.positive && c.score >= t).length / negatives, 12);
      }
    }
    // The exact curve names every distinct score; the grid one none of them unless it lies on the grid.
    const exact = rocCurve(
      cases.filter((c) => c.positive).map((c) => c.score),
      cases.filter((c) => !c.positive).map((c) => c.score),
    );
    expect(exact.thresholds.length).toBeGreaterThan(curve.thresholds.length);
  });

  it('merges a small last step into the one before, and a small first step into the next', () => {
    // One patient scores 0.98 (alone above 0.95), five score 0.5, one scores 0.01 (alone below 0.05).
    const few = [
      { cluster: 0, positive: true, score: 0.98 },
      ...Array.from({ length: 5 }, (_, i) => ({ cluster: 1 + i, positive: i % 2 === 0, score: 0.5 })),
      { cluster: 6, positive: false, score: 0.01 },
    ];
    const curve = gridRocCurve(few, rocGrid({ probabilities: true, steps: 20 }), 5);
    expect(curve.thresholds).toEqual([null, 0]);
    expect(curve.fpr).toEqual([0, 1]);
    const loose = gridRocCurve(few, rocGrid({ probabilities: true, steps: 20 }), 1);
    expect(loose.thresholds).toEqual([null, 0.95, 0.5, 0]);
  });

  it('uses the grades as the grid of an ordinal score', () => {
    expect(rocGrid({ probabilities: false, grades: 4 })).toEqual([3, 2, 1, 0]);
    const graded = Array.from({ length: 40 }, (_, i) => ({ cluster: i, positive: i % 2 === 0, score: i % 4 }));
    expect(gridRocCurve(graded, rocGrid({ probabilities: false, grades: 4 }), 5).thresholds).toEqual([null, 3, 2, 1, 0]);
    expect(() => rocGrid({ probabilities: true, steps: 0 })).toThrow(RangeError);
  });
});

describe('averagedGridRocCurve', () => {
  const grid = rocGrid({ probabilities: false, grades: 4 });
  /**
   * A generated role: 2 to 4 readers, each grading 5 to 12 patients (a role's row is released only with at least
   * the minimum of patients per reader) of 1 to 3 cells, grades near the truth.
   */
  function generateRole(seed: number): ReaderCase[][] {
    const random = seededRandom(seed);
    let cell = 0;
    return Array.from({ length: 2 + Math.floor(random() * 3) }, (_, r) =>
      Array.from({ length: 5 + Math.floor(random() * 8) }, (_, p) =>
        Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
          const truth = Math.floor(random() * 4);
          const grade = Math.min(3, Math.max(0, truth + Math.floor(random() * 3) - 1));
          return { cluster: r * 100 + p, cell: cell++, truth, grade };
        }),
      ).flat(),
    );
  }
  const scored = (cases: readonly ReaderCase[]) => cases.map((c) => ({ score: c.grade, positive: c.truth >= 1, cluster: c.cluster }));

  it('keeps, over generated roles, only points of the full averaged curve where every averaged reader’s step holds none or at least 5 patients', () => {
    let thinned = 0;
    let kept = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const readers = generateRole(seed);
      const full = computeReaderAveraged(readers, { threshold: 1, grades: 4, level: 0.95, clustered: true, bootstrap: { replicates: 200, seed: 1 } }).roc;
      const curve = averagedGridRocCurve(readers.map(scored), full, grid, 5);
      expect(curve.thresholds[0]).toBeNull();
      const usable = readers.map(scored).filter((cases) => cases.some((c) => c.positive) && cases.some((c) => !c.positive));
      if (usable.length) expect(curve.thresholds.at(-1)).toBe(0);
      for (let i = 1; i < curve.thresholds.length; i++) {
        const t = curve.thresholds[i] as number;
        const at = full.thresholds.indexOf(t);
        expect([curve.fpr[i], curve.tpr[i]]).toEqual([full.fpr[at], full.tpr[at]]);
        const above = i === 1 ? Infinity : (curve.thresholds[i - 1] as number);
        for (const cases of usable) {
          const step = new Set(cases.filter((c) => c.score >= t && c.score < above).map((c) => c.cluster)).size;
          expect(step === 0 || step >= 5).toBe(true);
        }
      }
      if (curve.thresholds.length < full.thresholds.length) thinned++;
      if (curve.thresholds.length > 2) kept++;
    }
    // The generator makes both: curves the rule thins, and curves with points between (0, 0) and (1, 1).
    expect(thinned).toBeGreaterThan(5);
    expect(kept).toBeGreaterThan(5);
  });

  it('keeps a threshold where a reader’s curve has no point but reaches the same cases as one, and only thresholds every averaged reader allows', () => {
    const patients = (from: number, grade: number, positive: boolean) => Array.from({ length: 5 }, (_, i) => ({ cluster: from + i, score: grade, positive }));
    const noZero = [...patients(0, 3, true), ...patients(5, 1, false)];
    const allGrades = [...patients(10, 3, true), ...patients(15, 2, false), ...patients(20, 1, false), ...patients(25, 0, false)];
    const averaged = { fpr: [0, 0.2, 0.3, 0.5, 1], tpr: [0, 1, 1, 1, 1], thresholds: [null, 3, 2, 1, 0] };
    expect(gridRocCurve(noZero, grid, 5).thresholds).toEqual([null, 3, 1]);
    // The first reader's thresholds 2 and 0 reach the same cases as its points at 3 and 1: all four kept.
    expect(averagedGridRocCurve([noZero, allGrades], averaged, grid, 5).thresholds).toEqual([null, 3, 2, 1, 0]);
    // With 6, the first reader's curve is (0, 0) then 1, the second's 2 then 0: only 0 suits both.
    expect(gridRocCurve(noZero, grid, 6).thresholds).toEqual([null, 1]);
    expect(gridRocCurve(allGrades, grid, 6).thresholds).toEqual([null, 2, 0]);
    expect(averagedGridRocCurve([noZero, allGrades], averaged, grid, 6)).toEqual({ fpr: [0, 1], tpr: [0, 1], thresholds: [null, 0] });
    // A reader with one class is not averaged, so it does not thin the curve.
    expect(averagedGridRocCurve([allGrades, patients(30, 2, true)], averaged, grid, 5).thresholds).toEqual([null, 3, 2, 1, 0]);
  });
});
