import type { Db } from '../../db/transaction';
import { FederatedQueryKind, FederatedQueryStatus, FederationSiteTaskState } from '../../domain';
import { FederationSiteTask, FederationTask } from '../../entities';
import { badInput } from '../../errors/app-error';
import { FederationSiteState, FederationTaskKind, summarizeTask } from '../../federation/protocol';
import type { BinaryCountsQuery, StudyFlowQuery } from '../../federation/task-kinds';
import type { RequestContext } from '../request-context';
import { secureRoundOpen } from './secure-rounds';

/*
 * What a researcher's input asks every site (the task query) and where a task stands (its status from its
 * site-tasks): shared by the transport, which moves site-tasks on results, and the query service.
 */

// The domain's copies of the protocol's enums must not drift from protocol.ts: these fail to compile if they do.
const SAME_STATES: Record<FederationSiteState, FederationSiteTaskState> = FederationSiteTaskState;
void SAME_STATES;
/** The protocol's task kind of each kind a researcher can start. */
export const TASK_KIND: Record<FederatedQueryKind, FederationTaskKind> = {
  STUDY_FLOW: FederationTaskKind.STUDY_FLOW,
  BINARY_COUNTS: FederationTaskKind.BINARY_COUNTS,
  INFERENCE: FederationTaskKind.INFERENCE,
};

/** A researcher's question, as `startFederatedQuery` takes it. */
export interface StartFederatedQuery {
  kind: FederatedQueryKind;
  scope?: {
    modalities?: string[] | null;
    features?: string[] | null;
    levels?: string[] | null;
    sides?: string[] | null;
    splits?: string[] | null;
    confirmedOnly?: boolean | null;
  } | null;
  /** BINARY_COUNTS: exactly one. */
  rater?: { modelSha256?: string | null; readerSlot?: string | null } | null;
  groupBy?: string[] | null;
  threshold?: number | null;
  /** BINARY_COUNTS: false leaves SITE out of the grouping unless listed (pooled rows only, secure-summed). */
  siteRows?: boolean | null;
  /** Registry codes; empty or absent: every member. */
  sites?: string[] | null;
  minSites?: number | null;
  deadlineSeconds?: number | null;
}

/** The order of grouping dimensions in a task query (the node's MetricsGroupBy order). */
const GROUP_ORDER = ['SITE', 'FEATURE', 'MODALITY', 'LEVEL', 'SIDE', 'SPLIT'] as const;

/** The task query (task-kinds.ts) a researcher's input asks every site: lists sorted and deduplicated, defaults filled. */
export function taskQueryOf(input: StartFederatedQuery): StudyFlowQuery | BinaryCountsQuery {
  if (input.kind === FederatedQueryKind.INFERENCE) throw badInput('An INFERENCE task is started by startFederatedInference (it sends a model, not a question)');
  const list = (values: string[] | null | undefined) => [...new Set(values ?? [])].sort();
  const scope = {
    modalities: list(input.scope?.modalities),
    features: list(input.scope?.features),
    levels: list(input.scope?.levels),
    sides: list(input.scope?.sides),
    splits: list(input.scope?.splits),
    confirmedOnly: input.scope?.confirmedOnly ?? true,
  };
  if (input.kind === FederatedQueryKind.STUDY_FLOW) {
    if (input.rater || input.groupBy?.length || input.threshold != null || input.siteRows != null)
      throw badInput('A STUDY_FLOW query takes only a scope (no rater, groupBy, siteRows or threshold)');
    return { scope };
  }
  const modelSha256 = input.rater?.modelSha256 ?? null;
  const readerSlot = input.rater?.readerSlot ?? null;
  if ((modelSha256 === null) === (readerSlot === null)) throw badInput('A BINARY_COUNTS query needs exactly one rater: modelSha256 or readerSlot');
  if (readerSlot !== null && readerSlot !== 'FIRST' && readerSlot !== 'SECOND') throw badInput('readerSlot is FIRST or SECOND');
  const groups = new Set([...(input.siteRows === false ? [] : ['SITE']), ...(input.groupBy ?? [])]);
  const unknown = [...groups].filter((g) => !(GROUP_ORDER as readonly string[]).includes(g));
  if (unknown.length > 0) throw badInput(`Unknown grouping: ${unknown.join(', ')}`);
  return {
    rater: modelSha256 !== null ? { modelSha256 } : { readerSlot: readerSlot as 'FIRST' | 'SECOND' },
    scope,
    groupBy: GROUP_ORDER.filter((g) => groups.has(g)),
    threshold: input.threshold ?? 1,
  };
}

/**
 * The answer's status from its site-tasks (protocol.ts summarizeTask), at `now`; RUNNING while the task's secure round
 * runs (its pooled rows are not there yet).
 */
export function statusOf(task: FederationTask, siteTasks: readonly FederationSiteTask[], now: Date, secureRoundOpen = false): FederatedQueryStatus {
  if (task.status === FederatedQueryStatus.CANCELLED) return task.status;
  const summary = summarizeTask(
    siteTasks.map((s) => ({ site: s.site, state: s.state as string as FederationSiteState, detail: s.reason, everClaimed: s.claimedAt !== null })),
    { minSites: task.minSites, deadlinePassed: now.getTime() >= task.deadline.getTime() },
  );
  const status = summary.status as FederatedQueryStatus;
  return secureRoundOpen && (status === FederatedQueryStatus.COMPLETE || status === FederatedQueryStatus.PARTIAL) ? FederatedQueryStatus.RUNNING : status;
}

/** Recomputes and stores a task's status (and revision) from its site-tasks, in `ctx`'s transaction. */
export async function refreshTaskStatus(db: Db, ctx: RequestContext, task: FederationTask, revision: number, now: Date): Promise<FederatedQueryStatus> {
  if (task.status === FederatedQueryStatus.CANCELLED) return task.status;
  const siteTasks = await db.repo(ctx, FederationSiteTask).findBy({ taskId: task.id });
  const status = statusOf(task, siteTasks, now, await secureRoundOpen(db, ctx, task.id));
  await db.repo(ctx, FederationTask).update(task.id, { status, revision });
  return status;
}
