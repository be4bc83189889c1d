import type { Db } from '../../db/transaction';
import { GradingFeature } from '../../entities';
import { agreementValues, parseAgreementQuery, type PairedGrades } from '../../federation/agreement-rounds';
import { canonicalSha256 } from '../../federation/canonical-json';
import type { AggregateGroup } from '../../federation/release-policy';
import type { CaseRow, MetricsService } from '../metrics.service';
import type { RequestContext } from '../request-context';
import { byGroupKey, CASE_DIMENSION, gradedCaseRequest, latestFrozenSplit } from './graded-case-request';

export interface AgreementAggregate {
  groups: AggregateGroup[];
  populations: string[][];
  arrayLengths: number[];
  splitVersionId: string | null;
  modelSha256: string | null;
  referenceSnapshotSha256: string;
}

/**
 * AGREEMENT_TABLE: per group (FEATURE among its dimensions), over the cases both raters graded within exactly the
 * cases the node's `metrics` analyses for each (paired as the node's `compare` pairs them), the k x k table of the
 * first rater's grades against the second's and the paired table of correct calls at the threshold
 * (agreement-rounds.ts). Counts only: they add up across sites.
 */
export async function computeAgreementAggregate(db: Db, metrics: MetricsService, ctx: RequestContext, raw: unknown): Promise<AgreementAggregate> {
  const query = parseAgreementQuery(raw);
  const split = await latestFrozenSplit(db, ctx, query.scope.splits.length > 0);
  const grades = new Map((await db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f.grades.length]));
  const perRater: CaseRow[][] = [];
  let modelSha256: string | null = null;
  for (const rater of query.raters) {
    const resolved = await gradedCaseRequest(db, ctx, { rater, scope: query.scope, threshold: query.threshold }, split);
    modelSha256 = resolved.modelSha256 ?? modelSha256;
    perRater.push(await metrics.gradedCases(ctx, resolved.request));
  }
  const cellOf = (r: CaseRow) => `${r.jointId} ${r.modality} ${r.feature}`;
  const second = new Map(perRater[1].map((r) => [cellOf(r), r]));
  const dimensions = [...new Set(query.groupBy)].sort();
  const groups = new Map<string, { key: Record<string, string>; feature: string; cases: PairedGrades[]; patients: Set<string> }>();
  for (const row of perRater[0]) {
    const partner = second.get(cellOf(row));
    if (!partner) continue;
    const key = Object.fromEntries(dimensions.map((d) => [d, String(row[CASE_DIMENSION[d]])]));
    const id = JSON.stringify(key);
    const group = groups.get(id) ?? { key, feature: row.feature, cases: [], patients: new Set<string>() };
    group.cases.push({ first: Number(row.grade), second: Number(partner.grade), truth: Number(row.truth) });
    group.patients.add(row.patientId);
    groups.set(id, group);
  }
  const computed = [...groups.values()].map((g) => ({
    group: { key: g.key, patients: g.patients.size, values: agreementValues(g.cases, grades.get(g.feature) ?? 2, query.threshold) } as AggregateGroup,
    population: [...g.patients],
  }));
  computed.sort((a, b) => byGroupKey(a.group, b.group));
  const references = [...new Set(perRater[0].map((r) => JSON.stringify([r.jointId, r.modality, r.feature, Number(r.truth)])))].sort();
  return {
    groups: computed.map((c) => c.group),
    populations: computed.map((c) => c.population),
    // Each feature's k x k, and the 4 paired counts.
    arrayLengths: [...new Set([...grades.values()].map((k) => k * k)), 4],
    splitVersionId: split?.id ?? null,
    modelSha256,
    referenceSnapshotSha256: canonicalSha256(references),
  };
}
