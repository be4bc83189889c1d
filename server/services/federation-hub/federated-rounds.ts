import type { Db } from '../../db/transaction';
import { FederatedQueryKind, FederatedQueryStatus } from '../../domain';
import { FederationResult, FederationSiteTask, FederationTask } from '../../entities';
import { placementSumsQueryOf } from '../../federation/answer-rows';
import { canonicalSha256, type JsonValue } from '../../federation/canonical-json';
import type { ResultPayload, TaskPayload } from '../../federation/protocol';
import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { FEDERATED_QUERY_CHANGED, FEDERATION_TASK_QUEUED } from '../../pubsub/topics';
import { FEDERATION_DEADLINE } from '../../queue/job-catalogue';
import type { JobQueue } from '../../queue/job-queue';
import type { RequestContext } from '../request-context';
import { TASK_KIND } from './task-status';

/*
 * Queries of more than one task at the hub. An AUC query is two rounds: its own task asks every site for score
 * histograms; when that task settles (every site answered, or its deadline passed with at least minSites), the hub
 * pools the histograms into placement tables and starts round 2 (a PLACEMENT_SUMS task, the query's child) with the
 * sites that contributed to round 1 and a deadline as long as round 1's. A BINARY_COUNTS query with a bootstrap has a
 * BOOTSTRAP_SUMS child from the start. A child is a task like any other (claims, results, deadline job); the answer
 * of the researcher's query is read from it and its children together (federated-query.service.ts).
 */

export interface NewTask {
  kind: FederatedQueryKind;
  query: Record<string, JsonValue>;
  sites: string[];
  minSites: number;
  deadline: Date;
  requestedByTokenId: string | null;
  requestedBy: string;
  parentTaskId: string | null;
}

/** Inserts a task and its QUEUED site-tasks, wakes the sites' long-polls on commit and queues its deadline job. */
export async function createTask(db: Db, tx: RequestContext, queue: JobQueue, pubSub: PostgresPubSub, t: NewTask): Promise<FederationTask> {
  const task = await db.repo(tx, FederationTask).save(
    db.repo(tx, FederationTask).create({
      kind: t.kind,
      query: t.query,
      querySha256: canonicalSha256(t.query),
      requestedByTokenId: t.requestedByTokenId,
      requestedBy: t.requestedBy,
      minSites: t.minSites,
      deadline: t.deadline,
      parentTaskId: t.parentTaskId,
    }),
  );
  for (const site of t.sites) {
    const payload: TaskPayload = {
      taskId: task.id,
      kind: TASK_KIND[t.kind],
      site,
      query: t.query,
      deadline: t.deadline.toISOString(),
      minSites: t.minSites,
      sites: t.sites,
    };
    await db.repo(tx, FederationSiteTask).insert({ taskId: task.id, site, payload, taskSha256: canonicalSha256(payload) });
    // Delivered on commit: the site's pending long-poll wakes and claims it.
    await pubSub.publish(FEDERATION_TASK_QUEUED, site, { taskId: task.id }, db.manager(tx));
  }
  await queue.send(tx, FEDERATION_DEADLINE, { taskId: task.id }, { startAfter: t.deadline });
  return task;
}

/** Starts the next round of a multi-round query when its current round settles; tells the query's watchers of a child's changes. */
export class FederatedRounds {
  constructor(
    private readonly db: Db,
    private readonly queue: JobQueue,
    private readonly pubSub: PostgresPubSub,
    /** The hub's minimum group size: round 2 gets no table for a pooled key below it. */
    private readonly minGroupPatients: number,
  ) {}

  /** Runs in the transaction that stored the task's new status (the task row is locked by it). */
  async afterStatus(tx: RequestContext, task: FederationTask, status: FederatedQueryStatus, now: Date): Promise<void> {
    if (task.parentTaskId) await this.pubSub.publish(FEDERATED_QUERY_CHANGED, task.parentTaskId, { taskId: task.parentTaskId }, this.db.manager(tx));
    if (task.kind !== FederatedQueryKind.AUC || (status !== FederatedQueryStatus.COMPLETE && status !== FederatedQueryStatus.PARTIAL)) return;
    const started = await this.db.repo(tx, FederationTask).existsBy({ parentTaskId: task.id, kind: FederatedQueryKind.PLACEMENT_SUMS });
    if (started) return;
    const results = await this.db.repo(tx, FederationResult).find({ where: { taskId: task.id, state: 'SUCCEEDED' }, order: { site: 'ASC' } });
    const sites = results.map((r) => r.site);
    const query = placementSumsQueryOf(
      {
        kind: task.kind,
        query: task.query as JsonValue,
        sites,
        results: results.map((r) => ({ site: r.site, state: r.state, payload: (r.envelope as { payload: ResultPayload }).payload })),
      },
      this.minGroupPatients,
    );
    await createTask(this.db, tx, this.queue, this.pubSub, {
      kind: FederatedQueryKind.PLACEMENT_SUMS,
      query,
      sites,
      minSites: Math.min(task.minSites, sites.length),
      // Round 2 gets as long as round 1 had.
      deadline: new Date(now.getTime() + Math.max(1000, task.deadline.getTime() - task.createdAt.getTime())),
      requestedByTokenId: task.requestedByTokenId,
      requestedBy: task.requestedBy,
      parentTaskId: task.id,
    });
  }
}
