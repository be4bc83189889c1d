import { FederatedQueryKind } from '../../domain';
import type { AgreementAnswerRow, FederatedAnswerRow, MetricsAnswerRow } from '../../federation/answer-rows';
import { STUDY_FLOW_FIELDS, type AnswerRow } from '../../federation/pool';
import type { AucRow } from '../../federation/pool-auc';
import type { Estimate, Maybe } from '../../stats/estimate';

/* How the hub presents pooled rows: in the shape of the node's studyFlow and metrics answers. */

/** What every answer's rows say about each statistic: the grid, where there is one, is part of the result. */
export const EXACT_AT_GRID = 'exact at the declared score resolution';

/** The key and provenance fields every presented row has. */
function rowBase(row: Pick<AnswerRow, 'pooled' | 'node' | 'key' | 'suppressed' | 'suppression' | 'patients' | 'sites' | 'withheld'>) {
  return {
    pooled: row.pooled,
    node: row.node,
    site: row.pooled ? null : (row.key.SITE ?? row.node),
    feature: row.key.FEATURE ?? null,
    modality: row.key.MODALITY ?? null,
    level: row.key.LEVEL ?? null,
    side: row.key.SIDE ?? null,
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
  /** Poisson cluster bootstrap percentile intervals of every statistic (a query with a bootstrap). */
  bootstrap: Record<string, Estimate> | null;
}

export interface AucRowView extends ReturnType<typeof rowBase> {
  grids: { lower: number; upper: number; bins: number }[];
  exactness: string;
  raters: { modelSha256: string | null; readerSlot: string | null; auc: Estimate; clustered: Estimate }[];
  difference: { delong: Estimate & { p: number | null }; clustered: Estimate & { p: number | null } } | null;
}

export interface AgreementRowView extends ReturnType<typeof rowBase> {
  table: number[][] | null;
  kappa: { unweighted: Maybe; linear: Maybe; quadratic: Maybe } | null;
  percentAgreement: Maybe | null;
  mcnemar: { bothCorrect: number; modelOnly: number; readerOnly: number; neither: number; p: number } | null;
}

type Presented = { studyFlow: StudyFlowRowView[]; metrics: MetricsRowView[]; auc: AucRowView[]; agreement: AgreementRowView[] };
const NONE: Presented = { studyFlow: [], metrics: [], auc: [], agreement: [] };

function presentAuc(rows: readonly AucRow[], raters: readonly { modelSha256?: string; readerSlot?: string }[]): AucRowView[] {
  return rows.map((row) => ({
    ...rowBase(row),
    grids: row.grids,
    exactness: EXACT_AT_GRID,
    raters: row.aucs.map((a, i) => ({
      modelSha256: raters[i]?.modelSha256 ?? null,
      readerSlot: raters[i]?.readerSlot ?? null,
      auc: a.delong,
      clustered: a.clustered,
    })),
    difference: row.difference,
  }));
}

function presentAgreement(rows: readonly AgreementAnswerRow[]): AgreementRowView[] {
  return rows.map((row) => {
    const a = row.agreement;
    const table = row.values ? (row.values.table as number[]) : null;
    const k = table ? Math.round(Math.sqrt(table.length)) : 0;
    return {
      ...rowBase(row),
      table: table ? Array.from({ length: k }, (_, i) => table.slice(i * k, (i + 1) * k)) : null,
      kappa: a ? a.kappa : null,
      percentAgreement: a ? a.percentAgreement : null,
      mcnemar: a ? { ...a.paired, p: a.mcnemarP } : null,
    };
  });
}

/** The rows in the shape of the node's studyFlow, metrics and agreement answers, with SITE as one more grouping. */
export function presentRows(kind: FederatedQueryKind, all: readonly FederatedAnswerRow[], query: Record<string, unknown> = {}): Presented {
  if (kind === FederatedQueryKind.AUC) return { ...NONE, auc: presentAuc(all as readonly AucRow[], (query.raters ?? []) as { modelSha256?: string }[]) };
  if (kind === FederatedQueryKind.AGREEMENT) return { ...NONE, agreement: presentAgreement(all as readonly AgreementAnswerRow[]) };
  const rows = all as readonly MetricsAnswerRow[];
  if (kind === FederatedQueryKind.STUDY_FLOW) {
    const studyFlow = rows.map((row) => {
      const counts = Object.fromEntries(STUDY_FLOW_FIELDS.map((f) => [f, row.values ? (row.values[f] as number) : null])) as Record<
        (typeof STUDY_FLOW_FIELDS)[number],
        number | null
      >;
      return { ...rowBase(row), ...counts };
    });
    return { ...NONE, studyFlow };
  }
  const metrics = rows.map((row): MetricsRowView => {
    const m = row.metrics;
    const v = row.values as Record<string, number> | null;
    const proportions = ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv'] as const;
    const bootstrap = (row.bootstrap ?? null) as Record<string, Estimate> | null;
    return {
      ...rowBase(row),
      confusion: v ? { tp: v.tp, fp: v.fp, tn: v.tn, fn: v.fn } : null,
      prevalence: m?.prevalence.clustered ?? null,
      accuracy: m?.accuracy.clustered ?? null,
      sensitivity: m?.sensitivity.clustered ?? null,
      specificity: m?.specificity.clustered ?? null,
      precision: m?.precision.clustered ?? null,
      npv: m?.npv.clustered ?? null,
      // With a bootstrap, F1 and Youden's J get its percentile intervals (they have no closed-form clustered one).
      f1: bootstrap?.f1 ?? m?.f1 ?? null,
      youden: bootstrap?.youden ?? m?.youden ?? null,
      bootstrap,
      wilson: m ? (Object.fromEntries(proportions.map((p) => [p, m[p].wilson])) as unknown as MetricsRowView['wilson']) : null,
    };
  });
  return { ...NONE, metrics };
}
