import { addCluster, emptyCount, type ClusteredCount } from '../stats/proportion';
import { PROPORTIONS, type BinaryCountsValues, type Proportion } from './task-kinds';

/** One graded case as a BINARY_COUNTS aggregate needs it: no id, only its patient's index within the group. */
export interface BinaryCase {
  cluster: number;
  truth: number;
  grade: number;
}

interface Cell {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/**
 * Each proportion's successes and trials within one patient, as stats/engine.ts `computeGroup` defines them: the
 * node's own `metrics` computes its intervals from exactly these, so the hub's intervals from the summed sums are
 * the same numbers.
 */
const DEFINITIONS: Record<Proportion, { x: (c: Cell) => number; n: (c: Cell) => number }> = {
  accuracy: { x: (c) => c.tp + c.tn, n: (c) => c.tp + c.fp + c.tn + c.fn },
  sensitivity: { x: (c) => c.tp, n: (c) => c.tp + c.fn },
  specificity: { x: (c) => c.tn, n: (c) => c.tn + c.fp },
  precision: { x: (c) => c.tp, n: (c) => c.tp + c.fp },
  npv: { x: (c) => c.tn, n: (c) => c.tn + c.fn },
  prevalence: { x: (c) => c.tp + c.fn, n: (c) => c.tp + c.fp + c.tn + c.fn },
};

/**
 * The BINARY_COUNTS values of one group (task-kinds.ts): the confusion counts at `threshold` and, per proportion in
 * PROPORTIONS order, the clustered sums (clusters = patients with at least one trial of it, x, n, Σx², Σxn, Σn²).
 * Only sums over patients leave: no per-patient number survives the addition.
 */
export function binaryCountsValues(cases: readonly BinaryCase[], threshold: number): BinaryCountsValues {
  const perPatient = new Map<number, Cell>();
  const total: Cell = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (const c of cases) {
    const cell = perPatient.get(c.cluster) ?? { tp: 0, fp: 0, tn: 0, fn: 0 };
    const positive = c.truth >= threshold;
    const called = c.grade >= threshold;
    const field = positive ? (called ? 'tp' : 'fn') : called ? 'fp' : 'tn';
    cell[field]++;
    total[field]++;
    perPatient.set(c.cluster, cell);
  }
  const counts = PROPORTIONS.map((name) => {
    let count = emptyCount();
    for (const cell of perPatient.values()) count = addCluster(count, DEFINITIONS[name].x(cell), DEFINITIONS[name].n(cell));
    return count;
  });
  const column = (field: keyof ClusteredCount) => counts.map((c) => c[field]);
  return { ...total, clusters: column('clusters'), x: column('x'), n: column('n'), xx: column('xx'), xn: column('xn'), nn: column('nn') };
}

/** One proportion's ClusteredCount from a group's values (a node's, or the hub's sum of several nodes'). */
export function clusteredCountOf(values: BinaryCountsValues, proportion: Proportion): ClusteredCount {
  const i = PROPORTIONS.indexOf(proportion);
  return { clusters: values.clusters[i], x: values.x[i], n: values.n[i], xx: values.xx[i], xn: values.xn[i], nn: values.nn[i] };
}
