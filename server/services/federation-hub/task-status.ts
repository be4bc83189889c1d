import type { Db } from '../../db/transaction';
import { FederatedQueryKind, FederatedQueryStatus, FederationSiteTaskState } from '../../domain';
import { FederationSiteTask, FederationTask } from '../../entities';
import { badInput } from '../../errors/app-error';
import { FederationSiteState, FederationTaskKind, summarizeTask } from '../../federation/protocol';
import type { JsonValue } from '../../federation/canonical-json';
import { MIN_REPLICATES } from '../../federation/bootstrap-rounds';
import { MAX_REPLICATES } from '../../federation/poisson-bootstrap';
import type { BinaryCountsQuery, FederatedRater, StudyFlowQuery } from '../../federation/task-kinds';

type JsonObject = { [field: string]: JsonValue };
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
  AUC: FederationTaskKind.SCORE_HISTOGRAM,
  AGREEMENT: FederationTaskKind.AGREEMENT_TABLE,
  PLACEMENT_SUMS: FederationTaskKind.PLACEMENT_SUMS,
  BOOTSTRAP_SUMS: FederationTaskKind.BOOTSTRAP_SUMS,
};

/** The kinds a researcher starts; the others are parts the hub chains to them. */
export const STARTABLE_KINDS: readonly FederatedQueryKind[] = [
  FederatedQueryKind.STUDY_FLOW,
  FederatedQueryKind.BINARY_COUNTS,
  FederatedQueryKind.AUC,
  FederatedQueryKind.AGREEMENT,
];

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
  /** AUC: one, or two for a paired comparison; AGREEMENT: exactly two. */
  raters?: { modelSha256?: string | null; readerSlot?: string | null }[] | null;
  /** AUC: one score grid per rater (the answer is exact at this resolution). */
  grids?: { lower: number; upper: number; bins: number }[] | null;
  /** BINARY_COUNTS: also the Poisson cluster bootstrap with this seed and number of replicates. */
  bootstrap?: { seed: string; replicates?: number | null } | null;
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

/** One rater of the input as a task names it. */
function raterOf(rater: { modelSha256?: string | null; readerSlot?: string | null } | null | undefined, what: string): FederatedRater {
  const modelSha256 = rater?.modelSha256 ?? null;
  const readerSlot = rater?.readerSlot ?? null;
  if ((modelSha256 === null) === (readerSlot === null)) throw badInput(`${what} needs exactly one of modelSha256 or readerSlot`);
  if (readerSlot !== null && readerSlot !== 'FIRST' && readerSlot !== 'SECOND') throw badInput('readerSlot is FIRST or SECOND');
  return modelSha256 !== null ? { modelSha256 } : { readerSlot: readerSlot as 'FIRST' | 'SECOND' };
}

/** Default bootstrap replicates of a federated answer (the node's metrics default is 2000 too). */
export const DEFAULT_FEDERATED_REPLICATES = 2000;

/**
 * The task query (task-kinds.ts, compute-auc.ts, agreement-rounds.ts) a researcher's input asks every site: lists
 * sorted and deduplicated, defaults filled; and for BINARY_COUNTS with a bootstrap, the BOOTSTRAP_SUMS query the hub
 * chains to it.
 */
export function taskQueriesOf(input: StartFederatedQuery): { query: JsonObject; bootstrap: JsonObject | null } {
  if (input.kind === FederatedQueryKind.INFERENCE) return { query: taskQueryOf(input) as unknown as JsonObject, bootstrap: null };
  if (!STARTABLE_KINDS.includes(input.kind)) throw badInput(`${input.kind} is started by the hub as a part of another query, not by a researcher`);
  if (input.kind === FederatedQueryKind.AUC || input.kind === FederatedQueryKind.AGREEMENT) {
    if (input.rater || input.bootstrap) throw badInput(`An ${input.kind} query names its raters in \`raters\` and has no bootstrap`);
    const raters = (input.raters ?? []).map((r, i) => raterOf(r, `raters[${i}]`));
    const auc = input.kind === FederatedQueryKind.AUC;
    if (auc ? raters.length < 1 || raters.length > 2 : raters.length !== 2)
      throw badInput(auc ? 'An AUC query names one rater, or two for a paired comparison' : 'An AGREEMENT query names exactly two raters');
    if (raters.length === 2 && JSON.stringify(raters[0]) === JSON.stringify(raters[1])) throw badInput('The two raters must differ');
    const base = taskQueryOf({ ...input, kind: FederatedQueryKind.BINARY_COUNTS, raters: null, rater: raters[0] as never }) as BinaryCountsQuery;
    const { rater: _first, ...common } = base;
    void _first;
    if (!auc) {
      if (input.grids?.length) throw badInput('An AGREEMENT query has no score grids');
      if (!common.groupBy.includes('FEATURE')) throw badInput('An AGREEMENT query groups by FEATURE (each feature has its own grades)');
      return { query: { ...common, raters } as JsonObject, bootstrap: null };
    }
    const grids = input.grids ?? [];
    if (grids.length !== raters.length) throw badInput('An AUC query declares one score grid per rater');
    for (const [i, g] of grids.entries()) {
      if (!Number.isFinite(g.lower) || !Number.isFinite(g.upper) || g.upper <= g.lower || !Number.isInteger(g.bins) || g.bins < 1 || g.bins > 10_000)
        throw badInput(`grids[${i}]: lower < upper and 1 to 10000 whole bins`);
    }
    return { query: { ...common, raters, grids: grids.map((g) => ({ lower: g.lower, upper: g.upper, bins: g.bins })) } as JsonObject, bootstrap: null };
  }
  if (input.raters?.length || input.grids?.length) throw badInput(`A ${input.kind} query takes no raters or grids (BINARY_COUNTS: one rater)`);
  const query = taskQueryOf(input) as unknown as JsonObject;
  if (!input.bootstrap) return { query, bootstrap: null };
  if (input.kind !== FederatedQueryKind.BINARY_COUNTS) throw badInput('Only a BINARY_COUNTS query has a bootstrap');
  const replicates = input.bootstrap.replicates ?? DEFAULT_FEDERATED_REPLICATES;
  if (!/^[A-Za-z0-9_-]{8,64}$/.test(input.bootstrap.seed)) throw badInput('bootstrap.seed: 8 to 64 letters, digits, _ or -');
  if (!Number.isInteger(replicates) || replicates < MIN_REPLICATES || replicates > MAX_REPLICATES)
    throw badInput(`bootstrap.replicates: a whole number from ${MIN_REPLICATES} to ${MAX_REPLICATES}`);
  return { query, bootstrap: { ...query, seed: input.bootstrap.seed, replicates } };
}

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
  const rater = raterOf(input.rater, 'A BINARY_COUNTS query');
  // Site rows unless the query asks for pooled rows only (then the pooled rows are secure-summed: docs/federation.md 6.1).
  const groups = new Set([...(input.siteRows === false ? [] : ['SITE']), ...(input.groupBy ?? [])]);
  const unknown = [...groups].filter((g) => !(GROUP_ORDER as readonly string[]).includes(g));
  if (unknown.length > 0) throw badInput(`Unknown grouping: ${unknown.join(', ')}`);
  return {
    rater,
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

/** What runs after a task's status is stored: the next round of a multi-round query (federated-rounds.ts). */
export interface AfterStatus {
  afterStatus(ctx: RequestContext, task: FederationTask, status: FederatedQueryStatus, now: Date): Promise<void>;
}

/*
 * The hub's round chaining, by the database it runs on. Every path that settles a site-task (a result, the deadline)
 * ends in refreshTaskStatus; registering the chaining here, rather than passing it through each of those paths,
 * keeps it in one place however results arrive (plain, or through a secure-sum round).
 */
const chains = new WeakMap<Db, AfterStatus>();

/** Makes refreshTaskStatus on `db` run `after` (createServices does it on a hub). */
export function chainRounds(db: Db, after: AfterStatus): void {
  chains.set(db, after);
}

/** Recomputes and stores a task's status (and revision) from its site-tasks, in `ctx`'s transaction; then starts a next round. */
export async function refreshTaskStatus(db: Db, ctx: RequestContext, task: FederationTask, revision: number, now: Date): Promise<FederatedQueryStatus> {
  if (task.status === FederatedQueryStatus.CANCELLED) return task.status;
  const siteTasks = await db.repo(ctx, FederationSiteTask).findBy({ taskId: task.id });
  const status = statusOf(task, siteTasks, now, await secureRoundOpen(db, ctx, task.id));
  await db.repo(ctx, FederationTask).update(task.id, { status, revision });
  await chains.get(db)?.afterStatus(ctx, task, status, now);
  return status;
}

/**
 * The status of a researcher's query from its parts: an AUC query is RUNNING until round 2 settles, and takes round
 * 2's status (INSUFFICIENT already when round 1 is); a BINARY_COUNTS query with a bootstrap is RUNNING while either
 * part runs and takes the counts' status (the bootstrap only adds intervals; rows without replicates from the same
 * sites have none).
 */
export function combinedStatus(kind: FederatedQueryKind, own: FederatedQueryStatus, children: readonly FederationTask[]): FederatedQueryStatus {
  if (own === FederatedQueryStatus.CANCELLED || own === FederatedQueryStatus.INSUFFICIENT) return own;
  if (kind === FederatedQueryKind.AUC) {
    if (own === FederatedQueryStatus.RUNNING) return own;
    const round2 = children.find((c) => c.kind === FederatedQueryKind.PLACEMENT_SUMS);
    return round2 ? round2.status : FederatedQueryStatus.RUNNING;
  }
  if (children.some((c) => c.status === FederatedQueryStatus.RUNNING)) return FederatedQueryStatus.RUNNING;
  return own;
}
