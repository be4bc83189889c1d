import { FederatedQueryKind } from '../../domain';
import { STUDY_FLOW_FIELDS, type AnswerRow } from '../../federation/pool';
import type { Estimate } from '../../stats/estimate';

/* How the hub presents pooled rows: in the shape of the node's studyFlow and metrics answers. */

/** The key and provenance fields every presented row has. */
function rowBase(row: AnswerRow) {
  return {
    pooled: row.pooled,
    node: row.node,
    site: row.pooled ? null : (row.key.SITE ?? row.node),
    split: row.key.SPLIT ?? null,
    suppressed: row.suppressed,
    suppression: row.suppression,
    patients: row.patients,
    sites: row.sites,
    withheld: row.withheld,
  };
}

export type StudyFlowRowView = ReturnType<typeof rowBase> & Record<(typeof STUDY_FLOW_FIELDS)[number], number | null>;

export interface MetricsRowView extends ReturnType<typeof rowBase> {
  feature: string | null;
  modality: string | null;
  level: string | null;
  side: string | null;
  confusion: { tp: number; fp: number; tn: number; fn: number } | null;
  prevalence: Estimate | null;
  accuracy: Estimate | null;
  sensitivity: Estimate | null;
  specificity: Estimate | null;
  precision: Estimate | null;
  npv: Estimate | null;
  f1: Estimate | null;
  youden: Estimate | null;
  wilson: Record<'prevalence' | 'accuracy' | 'sensitivity' | 'specificity' | 'precision' | 'npv', Estimate> | null;
}

/** The rows in the shape of the node's studyFlow and metrics answers, with SITE as one more grouping. */
export function presentRows(kind: FederatedQueryKind, rows: readonly AnswerRow[]): { studyFlow: StudyFlowRowView[]; metrics: MetricsRowView[] } {
  if (kind === FederatedQueryKind.STUDY_FLOW) {
    const studyFlow = rows.map((row) => {
      const counts = Object.fromEntries(STUDY_FLOW_FIELDS.map((f) => [f, row.values ? (row.values[f] as number) : null])) as Record<
        (typeof STUDY_FLOW_FIELDS)[number],
        number | null
      >;
      return { ...rowBase(row), ...counts };
    });
    return { studyFlow, metrics: [] };
  }
  const metrics = rows.map((row): MetricsRowView => {
    const m = row.metrics;
    const v = row.values as Record<string, number> | null;
    const proportions = ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv'] as const;
    return {
      ...rowBase(row),
      feature: row.key.FEATURE ?? null,
      modality: row.key.MODALITY ?? null,
      level: row.key.LEVEL ?? null,
      side: row.key.SIDE ?? null,
      confusion: v ? { tp: v.tp, fp: v.fp, tn: v.tn, fn: v.fn } : null,
      prevalence: m?.prevalence.clustered ?? null,
      accuracy: m?.accuracy.clustered ?? null,
      sensitivity: m?.sensitivity.clustered ?? null,
      specificity: m?.specificity.clustered ?? null,
      precision: m?.precision.clustered ?? null,
      npv: m?.npv.clustered ?? null,
      f1: m?.f1 ?? null,
      youden: m?.youden ?? null,
      wilson: m ? (Object.fromEntries(proportions.map((p) => [p, m[p].wilson])) as unknown as MetricsRowView['wilson']) : null,
    };
  });
  return { studyFlow: [], metrics };
}
