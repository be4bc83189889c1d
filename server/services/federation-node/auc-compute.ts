import type { Db } from '../../db/transaction';
import { canonicalSha256 } from '../../federation/canonical-json';
import {
  histogramLength,
  parseAucQuery,
  parsePlacementSumsQuery,
  placementSumsGroups,
  scoreHistogramGroups,
  sumsLength,
  type AucCase,
  type AucQuery,
} from '../../federation/compute-auc';
import { FederationTaskKind } from '../../federation/protocol';
import type { AggregateGroup } from '../../federation/release-policy';
import type { FederatedRater } from '../../federation/task-kinds';
import { scoreOf } from '../../stats/engine';
import type { CaseRow, MetricsService } from '../metrics.service';
import { byGroupKey, CASE_DIMENSION, gradedCaseRequest, latestFrozenSplit } from './graded-case-request';
import type { RequestContext } from '../request-context';

export const AUC_KINDS = [FederationTaskKind.SCORE_HISTOGRAM, FederationTaskKind.PLACEMENT_SUMS] as const;
export type AucKind = (typeof AUC_KINDS)[number];
export const isAucKind = (kind: FederationTaskKind): kind is AucKind => (AUC_KINDS as readonly FederationTaskKind[]).includes(kind);

export interface AucAggregate {
  groups: AggregateGroup[];
  /** Per group, its patients' node-local ids (the differencing guard's; never sent). */
  populations: string[][];
  arrayLengths: number[];
  /** The finest grid of the query, which the release policy holds against its maxScoreBins. */
  scoreBins: number;
  splitVersionId: string | null;
  modelSha256: string | null;
  referenceSnapshotSha256: string;
}

/**
 * Computes a SCORE_HISTOGRAM or PLACEMENT_SUMS aggregate over exactly the cases the node's `metrics` analyses for
 * each rater (a model's score: its probability of a grade at or above the threshold, as the node's AUC uses; a
 * reader's: the grade). Two raters are paired on the cases both rated, as the node's `compare` pairs them.
 */
export async function computeAucAggregate(db: Db, metrics: MetricsService, ctx: RequestContext, kind: AucKind, raw: unknown): Promise<AucAggregate> {
  const query: AucQuery = kind === FederationTaskKind.SCORE_HISTOGRAM ? parseAucQuery(raw) : parsePlacementSumsQuery(raw);
  const split = await latestFrozenSplit(db, ctx, query.scope.splits.length > 0);
  const perRater: CaseRow[][] = [];
  let modelSha256: string | null = null;
  for (const rater of query.raters as FederatedRater[]) {
    const resolved = await gradedCaseRequest(db, ctx, { rater, scope: query.scope, threshold: query.threshold }, split);
    modelSha256 = resolved.modelSha256 ?? modelSha256;
    perRater.push(await metrics.gradedCases(ctx, resolved.request));
  }
  const cellOf = (r: CaseRow) => `${r.jointId} ${r.modality} ${r.feature}`;
  const others = perRater.slice(1).map((rows) => new Map(rows.map((r) => [cellOf(r), r])));
  const cases: AucCase[] = [];
  for (const row of perRater[0]) {
    const partners = others.map((m) => m.get(cellOf(row)));
    if (partners.some((p) => p === undefined)) continue;
    const rows = [row, ...(partners as CaseRow[])];
    cases.push({
      key: Object.fromEntries(query.groupBy.map((d) => [d, String(row[CASE_DIMENSION[d]])])),
      patient: row.patientId,
      positive: Number(row.truth) >= query.threshold,
      scores: rows.map((r) =>
        scoreOf({ cluster: 0, truth: Number(r.truth), grade: Number(r.grade), probabilities: r.probabilities ?? undefined }, query.threshold),
      ),
    });
  }
  const groups = (kind === FederationTaskKind.SCORE_HISTOGRAM ? scoreHistogramGroups(cases, query) : placementSumsGroups(cases, query as never)).sort(
    byGroupKey,
  );
  const keyId = (key: Record<string, string>) => JSON.stringify(Object.entries(key).sort());
  const patientsOf = new Map<string, Set<string>>();
  for (const c of cases) {
    const id = keyId(c.key);
    patientsOf.set(id, (patientsOf.get(id) ?? new Set()).add(c.patient));
  }
  const references = [...new Set(perRater[0].map((r) => JSON.stringify([r.jointId, r.modality, r.feature, Number(r.truth)])))].sort();
  return {
    groups,
    populations: groups.map((g) => [...(patientsOf.get(keyId(g.key)) ?? [])]),
    arrayLengths: [kind === FederationTaskKind.SCORE_HISTOGRAM ? histogramLength(query) : sumsLength(query.raters.length)],
    scoreBins: Math.max(...query.grids.map((g) => g.bins)),
    splitVersionId: split?.id ?? null,
    modelSha256,
    referenceSnapshotSha256: canonicalSha256(references),
  };
}
