import { IsNull, Not } from 'typeorm';
import type { Db } from '../../db/transaction';
import { ModelVersion, SplitVersion } from '../../entities';
import { ComputeError } from '../../federation/compute-query';
import type { AggregateGroup } from '../../federation/release-policy';
import type { FederatedGroupBy, FederatedRater, FederatedScope } from '../../federation/task-kinds';
import type { CaseRow, MetricsRequest } from '../metrics.service';
import type { RequestContext } from '../request-context';

/**
 * What every federated task kind over graded cases resolves the same way at a node: the portable rater and scope of
 * a task (task-kinds.ts) become the node's own `metrics` request, so a federated aggregate counts exactly the cases
 * the node's local statistics count.
 */

/** The CaseRow field of each dimension a federated query may group by. */
export const CASE_DIMENSION: Record<FederatedGroupBy, keyof CaseRow> = {
  SITE: 'site',
  FEATURE: 'feature',
  MODALITY: 'modality',
  LEVEL: 'level',
  SIDE: 'side',
  SPLIT: 'split',
};

/** Groups in one order whatever order the rows came in, so equal data gives byte-equal aggregates. */
export const byGroupKey = (a: AggregateGroup, b: AggregateGroup): number => {
  const ka = JSON.stringify(Object.entries(a.key));
  const kb = JSON.stringify(Object.entries(b.key));
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/** The latest frozen split version when a task names splits: only a frozen version means the same thing tomorrow. */
export async function latestFrozenSplit(db: Db, ctx: RequestContext, needed: boolean): Promise<SplitVersion | null> {
  if (!needed) return null;
  const [version] = await db.repo(ctx, SplitVersion).find({ where: { frozenAt: Not(IsNull()) }, order: { frozenAt: 'DESC' }, take: 1 });
  if (!version) throw new ComputeError('NO_FROZEN_SPLIT', 'the task names splits but this node has no frozen split version');
  return version;
}

/** The node's `metrics` request for a task's rater and scope, and the sha256 of the model it names (null: a reader). */
export async function gradedCaseRequest(
  db: Db,
  ctx: RequestContext,
  query: { rater: FederatedRater; scope: FederatedScope; threshold: number },
  split: SplitVersion | null,
): Promise<{ request: MetricsRequest; modelSha256: string | null }> {
  let rater: MetricsRequest['rater'];
  let modelSha256: string | null = null;
  if ('modelSha256' in query.rater) {
    const model = await db.repo(ctx, ModelVersion).findOneBy({ sha256: query.rater.modelSha256 as string });
    if (!model) throw new ComputeError('UNKNOWN_MODEL', 'no model version with this sha256 is registered at this node');
    modelSha256 = model.sha256;
    rater = { modelVersionId: model.id };
  } else rater = { readerSlot: query.rater.readerSlot as never };
  const all = <T>(values: T[]): T[] | null => (values.length > 0 ? values : null);
  const { scope } = query;
  return {
    modelSha256,
    request: {
      rater,
      scope: {
        splitVersionId: split?.id ?? null,
        splits: split ? (scope.splits as never) : null,
        modalities: all(scope.modalities) as never,
        features: all(scope.features),
        levels: all(scope.levels) as never,
        sides: all(scope.sides) as never,
      },
      threshold: query.threshold,
      confirmedOnly: scope.confirmedOnly,
    },
  };
}
