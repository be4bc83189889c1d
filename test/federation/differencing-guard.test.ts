import { differencingConflicts } from '../../server/federation/differencing-guard';
import { Gen } from './generators';

/** A population drawn from a pool of 40 patients; sometimes a near copy of an earlier one (a few patients in or out). */
function populations(gen: Gen, count: number): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < count; i++) {
    if (out.length > 0 && gen.bool(0.5)) {
      const base = new Set(gen.pick(out));
      for (let k = gen.int(0, 6); k > 0; k--) {
        const p = `P${gen.int(0, 39)}`;
        if (base.has(p)) base.delete(p);
        else base.add(p);
      }
      out.push(gen.shuffle([...base]));
    } else out.push(Array.from({ length: 40 }, (_, p) => `P${p}`).filter(() => gen.bool(gen.pick([0.2, 0.5, 0.9]))));
  }
  return out;
}

/** The rule by brute force: some released population with a symmetric difference of 1 .. min - 1. */
function expected(candidate: readonly string[], released: readonly (readonly string[])[], min: number): boolean {
  return released.some((r) => {
    const a = new Set(candidate);
    const b = new Set(r);
    const d = [...a].filter((p) => !b.has(p)).length + [...b].filter((p) => !a.has(p)).length;
    return d > 0 && d < min;
  });
}

describe('the differencing guard', () => {
  test.each(Array.from({ length: 40 }, (_, i) => 900 + i))('seed %i: refuses exactly the groups a brute-force check refuses', (seed) => {
    const gen = new Gen(seed);
    const all = populations(gen, 12);
    const released = all.slice(0, 6);
    const candidates = all.slice(6);
    const min = gen.int(1, 8);
    const conflicts = differencingConflicts(candidates, released, min);
    expect(conflicts.map((c) => c.group)).toEqual(candidates.map((c, i) => (expected(c, released, min) ? i : -1)).filter((i) => i >= 0));
    for (const c of conflicts) {
      expect(c.difference).toBeGreaterThan(0);
      expect(c.difference).toBeLessThan(min);
    }
  });

  test('the generated cases include refusals and passes', () => {
    let refused = 0;
    let passed = 0;
    for (let seed = 900; seed < 940; seed++) {
      const gen = new Gen(seed);
      const all = populations(gen, 12);
      const n = differencingConflicts(all.slice(6), all.slice(0, 6), gen.int(1, 8)).length;
      refused += n;
      passed += 6 - n;
    }
    expect(refused).toBeGreaterThan(10);
    expect(passed).toBeGreaterThan(10);
  });

  test('the same population again, or one far enough away, passes; one patient more is refused', () => {
    const base = ['a', 'b', 'c', 'd', 'e', 'f'];
    expect(differencingConflicts([base], [base], 5)).toEqual([]);
    expect(differencingConflicts([[...base, 'g']], [base], 5)).toEqual([{ group: 0, difference: 1 }]);
    expect(differencingConflicts([['g', 'h', 'i', 'j', 'k', 'l']], [base], 5)).toEqual([]);
    expect(differencingConflicts([[...base, 'g']], [], 5)).toEqual([]);
    expect(() => differencingConflicts([base], [base], 0)).toThrow(RangeError);
  });
});
