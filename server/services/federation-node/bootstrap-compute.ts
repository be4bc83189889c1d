import { createHmac } from 'node:crypto';
import type { Db } from '../../db/transaction';
import { bootstrapSums, parseBootstrapQuery } from '../../federation/bootstrap-rounds';
import { canonicalSha256 } from '../../federation/canonical-json';
import { poissonWeights } from '../../federation/poisson-bootstrap';
import type { AggregateGroup } from '../../federation/release-policy';
import type { CaseRow, MetricsService } from '../metrics.service';
import type { NodeKeyService } from '../node-key.service';
import type { RequestContext } from '../request-context';
import { CASE_DIMENSION, gradedCaseRequest, latestFrozenSplit } from './graded-case-request';

/**
 * The key of the node's bootstrap weights, derived from its identifier key (node-key.service.ts): it never leaves
 * the node, so the hub cannot know the weights and solve the replicate sums for single patients.
 */
export async function bootstrapWeightKey(nodeKeys: NodeKeyService): Promise<Buffer> {
  return createHmac('sha256', await nodeKeys.identifierKey())
    .update('facet federation poisson bootstrap key v1')
    .digest();
}

export interface BootstrapAggregate {
  groups: AggregateGroup[];
  populations: string[][];
  arrayLengths: number[];
  splitVersionId: string | null;
  modelSha256: string | null;
  referenceSnapshotSha256: string;
}

/**
 * BOOTSTRAP_SUMS: per group of groupBy, over exactly the cases the node's `metrics` analyses, the weighted confusion
 * counts of every replicate (bootstrap-rounds.ts), each patient weighted by its Poisson weights under the node's key
 * and the task's seed.
 */
export async function computeBootstrapAggregate(
  db: Db,
  metrics: MetricsService,
  nodeKeys: NodeKeyService,
  ctx: RequestContext,
  raw: unknown,
): Promise<BootstrapAggregate> {
  const query = parseBootstrapQuery(raw);
  const split = await latestFrozenSplit(db, ctx, query.scope.splits.length > 0);
  const { request, modelSha256 } = await gradedCaseRequest(db, ctx, query, split);
  const rows = await metrics.gradedCases(ctx, request);
  const key = await bootstrapWeightKey(nodeKeys);
  const weights = new Map<string, Uint8Array>();
  const weightsOf = (patient: string) => {
    let w = weights.get(patient);
    if (!w) weights.set(patient, (w = poissonWeights(key, query.seed, patient, query.replicates)));
    return w;
  };
  const dimensions = [...new Set(query.groupBy)].sort();
  const groups = new Map<string, { key: Record<string, string>; rows: CaseRow[] }>();
  for (const row of rows) {
    const groupKey = Object.fromEntries(dimensions.map((d) => [d, String(row[CASE_DIMENSION[d]])]));
    const id = JSON.stringify(groupKey);
    const group = groups.get(id) ?? { key: groupKey, rows: [] };
    group.rows.push(row);
    groups.set(id, group);
  }
  const computed = [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, g]) => {
      const population = [...new Set(g.rows.map((r) => r.patientId))];
      const values = bootstrapSums(
        g.rows.map((r) => ({ patientKey: r.patientId, truth: Number(r.truth), grade: Number(r.grade) })),
        query.threshold,
        query.replicates,
        weightsOf,
      );
      return { group: { key: g.key, patients: population.length, values } as AggregateGroup, population };
    });
  const references = [...new Set(rows.map((r) => JSON.stringify([r.jointId, r.modality, r.feature, Number(r.truth)])))].sort();
  return {
    groups: computed.map((c) => c.group),
    populations: computed.map((c) => c.population),
    arrayLengths: [query.replicates],
    splitVersionId: split?.id ?? null,
    modelSha256,
    referenceSnapshotSha256: canonicalSha256(references),
  };
}
