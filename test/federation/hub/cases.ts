import { addCluster, emptyCount, type ClusteredCount } from '../../../server/stats/proportion';
import type { GradedCase } from '../../../server/stats/engine';
import type { AggregateGroup, SuppressedGroup } from '../../../server/federation/release-policy';
import { PROPORTIONS, type BinaryCountsValues, type StudyFlowValues } from '../../../server/federation/task-kinds';
import type { Gen } from '../generators';

/**
 * What a node computes for the hub, done here from generated cases the way the node does it (per patient, the
 * clustered sums of each proportion), so the hub's pooling can be compared with the single-node engine on the
 * union of the same cases. Test code: the node's own computation is the node's module.
 */
export interface SiteCase extends GradedCase {
  feature: string;
}

export const FEATURES = ['JOINT_SPACE_NARROWING', 'OSTEOPHYTES', 'HYPERTROPHY'] as const;

/** `patients` patients of one site, each with 1-8 graded cases on random features; cluster ids from `firstCluster`. */
export function generateSiteCases(gen: Gen, patients: number, firstCluster: number): SiteCase[] {
  const cases: SiteCase[] = [];
  const skill = 0.55 + gen.random() * 0.4;
  for (let p = 0; p < patients; p++) {
    const burden = gen.random();
    for (let c = gen.int(1, 8); c > 0; c--) {
      const truth = gen.random() < burden ? gen.int(1, 3) : 0;
      const grade = gen.random() < skill ? truth : gen.int(0, 3);
      cases.push({ cluster: firstCluster + p, truth, grade, feature: gen.pick(FEATURES) });
    }
  }
  return cases;
}

/** The BINARY_COUNTS values of a set of cases at `threshold`. */
export function binaryCountsValues(cases: readonly SiteCase[], threshold = 1): BinaryCountsValues {
  const perCluster = new Map<number, { tp: number; fp: number; tn: number; fn: number }>();
  for (const c of cases) {
    const s = perCluster.get(c.cluster) ?? { tp: 0, fp: 0, tn: 0, fn: 0 };
    const t = c.truth >= threshold;
    const p = c.grade >= threshold;
    if (t && p) s.tp++;
    else if (t) s.fn++;
    else if (p) s.fp++;
    else s.tn++;
    perCluster.set(c.cluster, s);
  }
  const xn: Record<(typeof PROPORTIONS)[number], (s: { tp: number; fp: number; tn: number; fn: number }) => [number, number]> = {
    accuracy: (s) => [s.tp + s.tn, s.tp + s.fp + s.tn + s.fn],
    sensitivity: (s) => [s.tp, s.tp + s.fn],
    specificity: (s) => [s.tn, s.tn + s.fp],
    precision: (s) => [s.tp, s.tp + s.fp],
    npv: (s) => [s.tn, s.tn + s.fn],
    prevalence: (s) => [s.tp + s.fn, s.tp + s.fp + s.tn + s.fn],
  };
  const counts: ClusteredCount[] = PROPORTIONS.map((name) => {
    let count = emptyCount();
    for (const s of perCluster.values()) count = addCluster(count, ...xn[name](s));
    return count;
  });
  const total = [...perCluster.values()].reduce((a, s) => ({ tp: a.tp + s.tp, fp: a.fp + s.fp, tn: a.tn + s.tn, fn: a.fn + s.fn }), {
    tp: 0,
    fp: 0,
    tn: 0,
    fn: 0,
  });
  return {
    ...total,
    clusters: counts.map((c) => c.clusters),
    x: counts.map((c) => c.x),
    n: counts.map((c) => c.n),
    xx: counts.map((c) => c.xx),
    xn: counts.map((c) => c.xn),
    nn: counts.map((c) => c.nn),
  };
}

/** A node's BINARY_COUNTS aggregate grouped by SITE and FEATURE, groups of fewer than `minPatients` suppressed. */
export function binaryCountsAggregate(site: string, cases: readonly SiteCase[], minPatients = 5): { groups: (AggregateGroup | SuppressedGroup)[] } {
  const groups: (AggregateGroup | SuppressedGroup)[] = [];
  for (const feature of FEATURES) {
    const mine = cases.filter((c) => c.feature === feature);
    const patients = new Set(mine.map((c) => c.cluster)).size;
    if (patients > 0 && patients < minPatients) groups.push({ key: { SITE: site, FEATURE: feature }, suppressed: true, reason: 'SMALL_GROUP' });
    else groups.push({ key: { SITE: site, FEATURE: feature }, patients, values: binaryCountsValues(mine) });
  }
  return { groups };
}

/** A node's STUDY_FLOW aggregate: one group per site with generated counts. */
export function studyFlowAggregate(gen: Gen, site: string): { groups: AggregateGroup[] } {
  const enrolled = gen.int(20, 200);
  const excluded = gen.int(0, Math.floor(enrolled / 4));
  const eligible = enrolled - excluded;
  const joints = eligible * 10;
  const notAssessable = gen.int(0, 30);
  const assessable = joints - notAssessable;
  const values: StudyFlowValues = { enrolled, excluded, eligible, joints, assessable, notAssessable, analysed: assessable - gen.int(0, 20) };
  return { groups: [{ key: { SITE: site }, patients: enrolled, values }] };
}
