import { createHmac } from 'node:crypto';
import { IsNull, Not } from 'typeorm';
import type { Db } from '../../db/transaction';
import { ModelVersion, SplitVersion } from '../../entities';
import { bootstrapSums, parseBootstrapQuery } from '../../federation/bootstrap-rounds';
import { canonicalSha256 } from '../../federation/canonical-json';
import { ComputeError } from '../../federation/compute-query';
import { poissonWeights } from '../../federation/poisson-bootstrap';
import type { AggregateGroup } from '../../federation/release-policy';
import type { FederatedGroupBy } from '../../federation/task-kinds';
import type { CaseRow, MetricsRequest, MetricsService } from '../metrics.service';
import type { NodeKeyService } from '../node-key.service';
import type { RequestContext } from '../request-context';

const CASE_DIMENSION: Record<FederatedGroupBy, keyof CaseRow> = {
  SITE: 'site',
  FEATURE: 'feature',
  MODALITY: 'modality',
  LEVEL: 'level',
  SIDE: 'side',
  SPLIT: 'split',
};

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
  let split: SplitVersion | null = null;
  if (query.scope.splits.length > 0) {
    [split] = await db.repo(ctx, SplitVersion).find({ where: { frozenAt: Not(IsNull()) }, order: { frozenAt: 'DESC' }, take: 1 });
    if (!split) throw new ComputeError('NO_FROZEN_SPLIT', 'the task names splits but this node has no frozen split version');
  }
  let rater: MetricsRequest['rater'];
  let modelSha256: string | null = null;
  if ('modelSha256' in query.rater) {
    const model = await db.repo(ctx, ModelVersion).findOneBy({ sha256: query.rater.modelSha256 as string });
    if (!model) throw new ComputeError('UNKNOWN_MODEL', 'no model version with this sha256 is registered at this node');
    modelSha256 = model.sha256;
    rater = { modelVersionId: model.id };
  } else rater = { readerSlot: query.rater.readerSlot as never };
  const all = <T>(values: T[]): T[] | null => (values.length > 0 ? values : null);
  const rows = await metrics.gradedCases(ctx, {
    rater,
    scope: {
      splitVersionId: split?.id ?? null,
      splits: split ? (query.scope.splits as never) : null,
      modalities: all(query.scope.modalities) as never,
      features: all(query.scope.features),
      levels: all(query.scope.levels) as never,
      sides: all(query.scope.sides) as never,
    },
    threshold: query.threshold,
    confirmedOnly: query.scope.confirmedOnly,
  });
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
