import { SuppressionReason } from '../domain';

/**
 * Disclosure control for aggregates released to roles without patient-level access (docs/statistics.md,
 * "Disclosure control"). Pure: the caller supplies the population a role could query and the row to release;
 * a federation node can apply the same functions as its release policy.
 *
 * A *population* is a set of cases (a case is one joint x modality x feature cell), each with its patient and a
 * value on each of a fixed list of dimensions (site, split, modality, feature, level, side, whether its reference
 * grade is confirmed, whether a rater graded it…). A *box* selects, per dimension, a set of values (null: every
 * value): every query scope is a box, and every row of an answer is a box (the scope with the grouped dimensions
 * fixed to the row's key). A row may be released when
 *  1. its cases belong to at least `minPatients` patients, and
 *  2. for every other box whose cases include the row's, the cases it has beyond the row's belong to no patient
 *     or to at least `minPatients` patients (DataSHIELD's nfilter.subset rule: a subset and its complement both
 *     hold the minimum, or the complement is empty), so that no two releasable rows with nested cases differ by
 *     a small group.
 */

/** One case as the rule sees it: its patient and its value on each dimension of the population. */
export interface PopulationCase {
  patient: string | number;
  values: ReadonlyArray<string | null>;
}

/** Per dimension, the values a row selects; null selects every value. */
export type Box = ReadonlyArray<ReadonlySet<string | null> | null>;

interface Cell {
  values: ReadonlyArray<string | null>;
  /** Dense patient indices, each once. */
  patients: number[];
}

/**
 * Cases aggregated into cells (one per distinct combination of dimension values) holding their distinct
 * patients: the checks walk cells, not cases (a study of 1M cases has a few thousand cells).
 */
export class Population {
  readonly cells: readonly Cell[];

  constructor(
    readonly dimensions: number,
    cases: Iterable<PopulationCase>,
  ) {
    const patientIndex = new Map<string | number, number>();
    // Cells found through one Map per dimension (a trie), not by a key string per case: 1M cases took 2.4-3.1 s
    // this way and 3.5-5.0 s with joined keys (2 loaded cores).
    type Node = Map<string | null, Node | { values: ReadonlyArray<string | null>; patients: Set<number> }>;
    const root: Node = new Map();
    const cells: Array<{ values: ReadonlyArray<string | null>; patients: Set<number> }> = [];
    for (const c of cases) {
      if (c.values.length !== dimensions) throw new RangeError(`A case has ${c.values.length} values, the population ${dimensions} dimensions`);
      let p = patientIndex.get(c.patient);
      if (p === undefined) patientIndex.set(c.patient, (p = patientIndex.size));
      let node = root;
      for (let d = 0; d < dimensions - 1; d++) {
        let next = node.get(c.values[d]) as Node | undefined;
        if (!next) node.set(c.values[d], (next = new Map()));
        node = next;
      }
      const last = c.values[dimensions - 1];
      let cell = node.get(last) as { values: ReadonlyArray<string | null>; patients: Set<number> } | undefined;
      if (!cell) {
        node.set(last, (cell = { values: [...c.values], patients: new Set() }));
        cells.push(cell);
      }
      cell.patients.add(p);
    }
    this.cells = cells.map((c) => ({ values: c.values, patients: [...c.patients] }));
  }
}

/** A value as part of a key: null spelled apart from any string. */
const valueKey = (v: string | null): string => (v === null ? '\u0000' : `\u0002${v}`);

function inBox(values: ReadonlyArray<string | null>, box: Box): boolean {
  for (let d = 0; d < values.length; d++) {
    const allowed = box[d];
    if (allowed && !allowed.has(values[d])) return false;
  }
  return true;
}

/** The dimensions (ascending) and values by which a case lies outside a box: `dim=value` pairs, as one key. */
const signature = (dims: readonly number[], values: ReadonlyArray<string | null>): string => dims.map((d) => `${d}=${valueKey(values[d])}`).join('\u0001');

/**
 * Whether a row (a box of the population) may be released with `minPatients` as the minimum group size: null
 * when it may, otherwise why not.
 *
 * Rule 2 is checked on the row's *tight* box (per dimension, only the values its cases hold): any box whose
 * cases include the row's contains the tight box, so the rule then covers every pair of rows with nested cases,
 * however their boxes were written (a box naming a value none of its cases holds would otherwise escape).
 * It is checked exactly, not by sampling: a case outside the tight box lies outside on a set S of dimensions with
 * particular values there (its *signature*); the smallest wider box that holds it extends each dimension of S by
 * that value, and adds exactly the cases whose signature is a sub-signature of it. So the rule holds for every
 * wider box if, for every signature present, the patients of all cases with a sub-signature of it number at
 * least `minPatients`. Signatures whose own patients reach the minimum pass at once; only small ones are expanded
 * (at most 2^|S| - 2 lookups each, |S| <= the number of dimensions).
 */
export function releaseCheck(population: Population, box: Box, minPatients: number): SuppressionReason | null {
  if (box.length !== population.dimensions) throw new RangeError(`The box has ${box.length} dimensions, the population ${population.dimensions}`);
  // Only whether a set of patients reaches the minimum matters, so sets stop growing there (capped): a check
  // then costs a pass over the cells, not over every patient of every cell.
  const addCapped = (to: Set<number>, patients: Iterable<number>) => {
    for (const p of patients) {
      if (to.size >= minPatients) return;
      to.add(p);
    }
  };
  const inside = new Set<number>();
  const tight: Array<Set<string | null>> = Array.from({ length: population.dimensions }, () => new Set());
  for (const cell of population.cells) {
    if (!inBox(cell.values, box)) continue;
    addCapped(inside, cell.patients);
    cell.values.forEach((v, d) => tight[d].add(v));
  }
  if (inside.size < minPatients) return SuppressionReason.FEWER_THAN_MIN_PATIENTS;
  const outside = new Map<string, { dims: number[]; values: ReadonlyArray<string | null>; patients: Set<number> }>();
  for (const cell of population.cells) {
    const dims: number[] = [];
    for (let d = 0; d < cell.values.length; d++) if (!tight[d].has(cell.values[d])) dims.push(d);
    if (dims.length === 0) continue;
    const key = signature(dims, cell.values);
    const group = outside.get(key);
    if (group) addCapped(group.patients, cell.patients);
    else {
      const patients = new Set<number>();
      addCapped(patients, cell.patients);
      outside.set(key, { dims, values: cell.values, patients });
    }
  }
  for (const { dims, values, patients } of outside.values()) {
    if (patients.size >= minPatients) continue;
    const added = new Set(patients);
    const all = (1 << dims.length) - 1;
    for (let mask = 1; mask < all && added.size < minPatients; mask++) {
      const sub = outside.get(
        signature(
          dims.filter((_, i) => mask & (1 << i)),
          values,
        ),
      );
      if (sub) addCapped(added, sub.patients);
    }
    if (added.size < minPatients) return SuppressionReason.COMPLEMENT_TOO_SMALL;
  }
  return null;
}

/** An ROC curve: points from (0, 0), highest threshold first; a threshold is "positive when score >= it". */
export interface RocPoints {
  fpr: number[];
  tpr: number[];
  thresholds: Array<number | null>;
}

/** The declared thresholds, descending: i / steps for probability scores, the grades k-1 … 0 for ordinal ones. */
export function rocGrid(kind: { probabilities: true; steps: number } | { probabilities: false; grades: number }): number[] {
  if (kind.probabilities) {
    if (!Number.isInteger(kind.steps) || kind.steps < 1) throw new RangeError('The ROC grid needs a whole number of steps, at least 1');
    return Array.from({ length: kind.steps + 1 }, (_, i) => (kind.steps - i) / kind.steps);
  }
  return Array.from({ length: kind.grades }, (_, i) => kind.grades - 1 - i);
}

/**
 * The ROC curve a role without patient-level access gets: points only at grid thresholds (never a case's own
 * score), and only where the step from the previous point covers at least `minPatients` patients; a smaller
 * step is merged into the next one, and a small last step into the one before it. Each point's counts are then
 * sums over at least `minPatients` patients, and so is the difference of any two consecutive points. The last
 * point, (1, 1), is at the lowest grid threshold, which every score reaches (probabilities and grades are >= 0).
 * The AUC is not taken from this curve: it stays the empirical AUC of all scores.
 */
export function gridRocCurve(
  cases: ReadonlyArray<{ score: number; positive: boolean; cluster: number }>,
  grid: readonly number[],
  minPatients: number,
): RocPoints {
  const sorted = [...cases].sort((a, b) => b.score - a.score);
  let positives = 0;
  for (const c of cases) if (c.positive) positives++;
  const negatives = cases.length - positives;
  const curve: RocPoints = { fpr: [0], tpr: [0], thresholds: [null] };
  let tp = 0;
  let fp = 0;
  let i = 0;
  let step = new Set<number>();
  for (let g = 0; g < grid.length; g++) {
    const last = g === grid.length - 1;
    while (i < sorted.length && (last || sorted[i].score >= grid[g])) {
      if (sorted[i].positive) tp++;
      else fp++;
      step.add(sorted[i].cluster);
      i++;
    }
    if (step.size === 0 || (!last && step.size < minPatients)) continue;
    // A small last step would show its few patients' counts as the difference to the point before: merge them.
    if (last && step.size < minPatients && curve.thresholds.length > 1) {
      curve.fpr.pop();
      curve.tpr.pop();
      curve.thresholds.pop();
    }
    curve.fpr.push(negatives ? fp / negatives : 0);
    curve.tpr.push(positives ? tp / positives : 0);
    curve.thresholds.push(grid[g]);
    step = new Set();
  }
  return curve;
}

/**
 * The reader-averaged ROC curve (each grade threshold's operating point averaged over the readers with both
 * classes, Fawcett 2006) as a role without patient-level access gets it: only the thresholds at which every
 * averaged reader's own curve under `gridRocCurve` has a point (or one over the same cases). Each averaged point
 * is then a mean of points that are each counts over at least `minPatients` patients, and each reader's step
 * between two kept points holds no patient or at least `minPatients`. `averaged` is the full averaged curve, from
 * (0, 0), its thresholds on `grid`.
 */
export function averagedGridRocCurve(
  readers: ReadonlyArray<ReadonlyArray<{ score: number; positive: boolean; cluster: number }>>,
  averaged: RocPoints,
  grid: readonly number[],
  minPatients: number,
): RocPoints {
  const allowed = readers
    .filter((cases) => cases.some((c) => c.positive) && cases.some((c) => !c.positive))
    .map((cases) => {
      // A threshold's point is fixed by how many cases reach it (the counts only grow as it falls).
      const reached = (t: number) => cases.reduce((n, c) => n + (c.score >= t ? 1 : 0), 0);
      const points = new Set(gridRocCurve(cases, grid, minPatients).thresholds.map((t) => (t === null ? 0 : reached(t))));
      return (t: number) => points.has(reached(t));
    });
  const keep = averaged.thresholds.map((t) => t === null || allowed.every((ok) => ok(t)));
  return {
    fpr: averaged.fpr.filter((_, i) => keep[i]),
    tpr: averaged.tpr.filter((_, i) => keep[i]),
    thresholds: averaged.thresholds.filter((_, i) => keep[i]),
  };
}
