import type { Db } from '../../db/transaction';
import { GradingFeature, Site } from '../../entities';
import { canonicalSha256 } from '../../federation/canonical-json';
import { binaryCountsValues } from '../../federation/compute-binary';
import { parseTaskQuery, type ComputableQuery } from '../../federation/compute-query';
import { FederationTaskKind } from '../../federation/protocol';
import type { AggregateGroup, SiteAggregate } from '../../federation/release-policy';
import { PROPORTIONS, type BinaryCountsQuery, type StudyFlowQuery, type StudyFlowValues } from '../../federation/task-kinds';
import type { AgreementService } from '../agreement.service';
import type { CaseRow, MetricsService } from '../metrics.service';
import type { RequestContext } from '../request-context';
import { byGroupKey, CASE_DIMENSION, gradedCaseRequest, latestFrozenSplit } from './graded-case-request';
import type { NodeKeyService } from '../node-key.service';
import { computeAucAggregate, isAucKind } from './auc-compute';
import { computeBootstrapAggregate } from './bootstrap-compute';
import { computeAgreementAggregate } from './agreement-compute';

/** A computed aggregate and what its provenance manifest states about how it was computed. */
export interface ComputedAggregate {
  aggregate: SiteAggregate;
  /** The array lengths this kind releases (checkAggregateShape refuses any other). */
  arrayLengths: number[];
  /** Words the aggregate may hold beyond the fixed vocabulary: this node's site and grading-feature codes. */
  vocabulary: string[];
  splitVersionId: string | null;
  modelSha256: string | null;
  referenceSnapshotSha256: string | null;
  /** Histogram kinds: the finest score grid asked, which the release policy holds against its maxScoreBins. */
  scoreBins?: number;
  /** Per group of `aggregate` (same order), the node-local ids of its patients: for the differencing guard; never sent. */
  populations?: string[][];
}

/**
 * Computes the aggregates of the federated task kinds (server/federation/task-kinds.ts) from this node's own
 * database, through the same data access as the node's `studyFlow` and `metrics` queries, so that a federated
 * answer and a local one count the same cases. Runs as the node itself (an ADMIN context): what may leave is decided
 * afterwards by the release policy, not by the local statistics API's disclosure rule.
 */
export class FederationComputeService {
  constructor(
    private readonly db: Db,
    private readonly metrics: MetricsService,
    private readonly agreement: AgreementService,
    /** The node's keys: the bootstrap weights' key derives from them. */
    private readonly nodeKeys: NodeKeyService | null = null,
  ) {}

  /** Throws ComputeError (its code is the FAILED result's reason) for a query this node cannot answer. */
  async computeAggregate(ctx: RequestContext, kind: FederationTaskKind, rawQuery: unknown): Promise<ComputedAggregate> {
    const vocabulary = [
      ...(await this.db.repo(ctx, Site).find({ select: { code: true } })).map((s) => s.code),
      ...(await this.db.repo(ctx, GradingFeature).find({ select: { code: true } })).map((f) => f.code),
    ];
    if (kind === FederationTaskKind.BOOTSTRAP_SUMS && this.nodeKeys) {
      const { groups, ...rest } = await computeBootstrapAggregate(this.db, this.metrics, this.nodeKeys, ctx, rawQuery);
      return { aggregate: { groups }, ...rest, vocabulary };
    }
    if (kind === FederationTaskKind.AGREEMENT_TABLE) {
      const { groups, ...rest } = await computeAgreementAggregate(this.db, this.metrics, ctx, rawQuery);
      return { aggregate: { groups }, ...rest, vocabulary };
    }
    if (isAucKind(kind)) {
      const { groups, ...rest } = await computeAucAggregate(this.db, this.metrics, ctx, kind, rawQuery);
      return { aggregate: { groups }, ...rest, vocabulary };
    }
    const parsed: ComputableQuery = parseTaskQuery(kind, rawQuery);
    const computed = parsed.kind === FederationTaskKind.STUDY_FLOW ? await this.studyFlow(ctx, parsed.query) : await this.binaryCounts(ctx, parsed.query);
    return { ...computed, vocabulary };
  }

  /**
   * One group per site of the node, with the counts of the node's studyFlow row; with scope.splits also one group per
   * site and split: the eligible patients assigned to it (studyFlow's bySplit) and their joints and reference cells.
   */
  private async studyFlow(ctx: RequestContext, query: StudyFlowQuery): Promise<Omit<ComputedAggregate, 'vocabulary'>> {
    const split = await latestFrozenSplit(this.db, ctx, query.scope.splits.length > 0);
    const rows = await this.agreement.studyFlow(ctx, { splitVersionId: split?.id ?? null });
    const groups: AggregateGroup[] = [];
    for (const row of rows) {
      if (row.site === null || row.suppressed) continue;
      const values: StudyFlowValues = {
        enrolled: row.enrolled as number,
        excluded: row.excluded as number,
        eligible: row.eligible as number,
        joints: row.joints as number,
        assessable: row.assessable as number,
        notAssessable: row.notAssessable as number,
        analysed: row.analysed as number,
      };
      groups.push({ key: { SITE: row.site }, patients: values.enrolled, values });
    }
    if (split) {
      const perSplit: Array<{ site: string; split: string; patients: number; joints: number; assessable: number; notAssessable: number; analysed: number }> =
        await this.db.manager(ctx).query(
          `SELECT site.code AS site, sa.split::text AS split, count(DISTINCT patient.id)::int AS patients, count(DISTINCT joint.id)::int AS joints,
                  count(ref.id) FILTER (WHERE NOT ref.not_assessable)::int AS assessable,
                  count(ref.id) FILTER (WHERE ref.not_assessable)::int AS "notAssessable",
                  count(ref.id) FILTER (WHERE NOT ref.not_assessable AND ref.confirmed_at IS NOT NULL)::int AS analysed
             FROM patient
             JOIN site ON site.id = patient.site_id
             JOIN split_assignment sa ON sa.patient_id = patient.id AND sa.split_version_id = $1
             LEFT JOIN joint ON joint.patient_id = patient.id
             LEFT JOIN reference_grade ref ON ref.joint_id = joint.id
            WHERE cardinality(patient.exclusion_reasons) = 0 AND sa.split::text = ANY($2)
            GROUP BY site.code, sa.split`,
          [split.id, query.scope.splits],
        );
      for (const r of perSplit) {
        const values: StudyFlowValues = {
          enrolled: r.patients,
          excluded: 0,
          eligible: r.patients,
          joints: r.joints,
          assessable: r.assessable,
          notAssessable: r.notAssessable,
          analysed: r.analysed,
        };
        groups.push({ key: { SITE: r.site, SPLIT: r.split }, patients: r.patients, values });
      }
    }
    const references: unknown[] = await this.db
      .manager(ctx)
      .query(
        `SELECT ref.joint_id, ref.modality::text, ref.feature, ref.grade, ref.not_assessable, ref.confirmed_at IS NOT NULL AS confirmed FROM reference_grade ref ORDER BY 1, 2, 3`,
      );
    return {
      aggregate: { groups: groups.sort(byGroupKey) },
      arrayLengths: [],
      splitVersionId: split?.id ?? null,
      modelSha256: null,
      referenceSnapshotSha256: canonicalSha256(references.map((r) => Object.values(r as object))),
    };
  }

  /** Confusion counts and clustered sums per group of groupBy, over exactly the cases the node's `metrics` analyses. */
  private async binaryCounts(ctx: RequestContext, query: BinaryCountsQuery): Promise<Omit<ComputedAggregate, 'vocabulary'>> {
    const split = await latestFrozenSplit(this.db, ctx, query.scope.splits.length > 0);
    const { request, modelSha256 } = await gradedCaseRequest(this.db, ctx, query, split);
    const rows = await this.metrics.gradedCases(ctx, request);
    const dimensions = [...new Set(query.groupBy)].sort();
    const groups = new Map<string, { key: Record<string, string>; rows: CaseRow[] }>();
    for (const row of rows) {
      const key = Object.fromEntries(dimensions.map((d) => [d, String(row[CASE_DIMENSION[d]])]));
      const id = JSON.stringify(key);
      const group = groups.get(id) ?? { key, rows: [] };
      group.rows.push(row);
      groups.set(id, group);
    }
    const computed = [...groups.values()].map(({ key, rows: of }) => {
      const clusters = new Map<string, number>();
      const cases = of.map((r) => {
        if (!clusters.has(r.patientId)) clusters.set(r.patientId, clusters.size);
        return { cluster: clusters.get(r.patientId) as number, truth: Number(r.truth), grade: Number(r.grade) };
      });
      const group: AggregateGroup = { key, patients: clusters.size, values: binaryCountsValues(cases, query.threshold) };
      return { group, population: [...clusters.keys()] };
    });
    computed.sort((a, b) => byGroupKey(a.group, b.group));
    const references = [...new Set(rows.map((r) => JSON.stringify([r.jointId, r.modality, r.feature, Number(r.truth)])))].sort();
    return {
      aggregate: { groups: computed.map((c) => c.group) },
      populations: computed.map((c) => c.population),
      arrayLengths: [PROPORTIONS.length],
      splitVersionId: split?.id ?? null,
      modelSha256,
      referenceSnapshotSha256: canonicalSha256(references),
    };
  }
}
