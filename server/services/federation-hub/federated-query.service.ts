import { In, IsNull, Not } from 'typeorm';
import type { Db } from '../../db/transaction';
import { ErrorCode, FederatedQueryKind, FederatedQueryStatus, FederationSiteTaskState, Role, SiteErrorCode } from '../../domain';
import { FederationResult, FederationSiteContact, FederationSiteTask, FederationTask } from '../../entities';
import { AppError, badInput, conflict } from '../../errors/app-error';
import type { JsonValue } from '../../federation/canonical-json';
import { EnvelopeKind, signEnvelope, type SignedEnvelope } from '../../federation/envelope';
import { federatedAnswerRows, type AnswerPart, type FederatedAnswerRow } from '../../federation/answer-rows';
import { rowsSha256, type AnswerRow } from '../../federation/pool';
import { FederationSiteState, nextSiteState, summarizeTask, type ResultPayload } from '../../federation/protocol';
import type { SecureTranscript } from '../../federation/secure-sum-transport';
import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { FEDERATED_QUERY_CHANGED } from '../../pubsub/topics';
import { FEDERATION_DEADLINE } from '../../queue/job-catalogue';
import type { JobQueue } from '../../queue/job-queue';
import type { AuditService } from '../audit.service';
import { requireRole, type RequestContext } from '../request-context';
import { createTask } from './federated-rounds';
import { presentRows, type AgreementRowView, type AucRowView, type MetricsRowView, type StudyFlowRowView } from './hub-answer';
import { ANSWER_AUDIENCE, HUB_SIGNER, requireHub, type Hub } from './hub-registry';
import { OPEN_PHASES, pooledTotalsOf, secureSumView, secureTranscriptOf, startSecureRoundIfReady, type SecureSumView } from './secure-rounds';
import { combinedStatus, refreshTaskStatus, statusOf, TASK_KIND, taskQueriesOf, type StartFederatedQuery } from './task-status';

export interface SiteTaskView {
  site: string;
  state: FederationSiteTaskState;
  reason: string | null;
  late: boolean;
  claimedAt: Date | null;
  settledAt: Date | null;
}

export interface ContributionView {
  site: string;
  /** The task kind of the part it answered (AUC, PLACEMENT_SUMS, BOOTSTRAP_SUMS…). */
  kind: FederatedQueryKind;
  resultSha256: string;
  aggregateSha256: string;
  manifest: Record<string, unknown>;
}

/** A federated query as a researcher reads it: its per-site states, what is missing and why, and the pooled rows. */
export interface FederatedQueryView {
  id: string;
  kind: FederatedQueryKind;
  status: FederatedQueryStatus;
  query: Record<string, unknown>;
  minSites: number;
  deadline: Date;
  revision: number;
  updated: boolean;
  createdAt: Date;
  requestedBy: string;
  sites: SiteTaskView[];
  missing: { site: string; code: SiteErrorCode; reason: string | null }[];
  /** The parts the hub chained to the query (AUC round 2, the bootstrap), each with its own per-site states. */
  rounds: RoundView[];
  rows: FederatedAnswerRow[];
  rowsSha256: string | null;
  /** The hub's minimum group size, applied to pooled rows. */
  minGroupPatients: number;
  answer: {
    rowsSha256: string | null;
    studyFlow: StudyFlowRowView[];
    metrics: MetricsRowView[];
    auc: AucRowView[];
    agreement: AgreementRowView[];
  };
  contributions: ContributionView[];
  /** The secure round of the pooled rows, null when the site rows were released (secure-rounds.ts). */
  secureSum: SecureSumView | null;
  secureTranscript: SecureTranscript | null;
}

export interface RoundView {
  id: string;
  kind: FederatedQueryKind;
  status: FederatedQueryStatus;
  deadline: Date;
  sites: SiteTaskView[];
}

export interface FederationSiteView {
  code: string;
  name: string;
  keyId: string;
  signingKey: string;
  contactName: string;
  contactEmail: string;
  lastClaimAt: Date | null;
}

/**
 * Federated queries for researchers at the hub: one task per question with a site-task per addressed member, the
 * deadline that turns open site-tasks into a PARTIAL or INSUFFICIENT answer naming the missing sites, and answers
 * pooled on read from the stored signed results (pool.ts), with a signed export for `facet verify`.
 */
export class FederatedQueryService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly queue: JobQueue,
    private readonly pubSub: PostgresPubSub,
    private readonly hub: Hub | null,
    private readonly clock: () => Date = () => new Date(),
    /** The hub's minimum group size on pooled rows (FACET_MIN_GROUP_PATIENTS). */
    readonly minGroupPatients = 5,
  ) {}

  /** Starts a federated query: one task, a site-task per addressed member (QUEUED), a deadline job, a wake-up per site. */
  async startQuery(ctx: RequestContext, input: StartFederatedQuery): Promise<FederatedQueryView> {
    const actor = requireRole(ctx, Role.STATISTICIAN);
    const registry = await requireHub(this.hub).registry();
    const members = registry.sites.map((s) => s.code);
    const sites = input.sites && input.sites.length > 0 ? [...new Set(input.sites)].sort() : members;
    const unknown = sites.filter((s) => !members.includes(s));
    if (unknown.length > 0) throw badInput(`Not members of this hub: ${unknown.join(', ')}`, { sites: unknown });
    if (sites.length === 0) throw badInput('This hub has no member sites (facet site add)');
    const minSites = input.minSites ?? 1;
    if (!Number.isInteger(minSites) || minSites < 1 || minSites > sites.length) throw badInput(`minSites must be from 1 to ${sites.length}, the sites asked`);
    const deadlineSeconds = input.deadlineSeconds ?? 3600;
    if (!Number.isInteger(deadlineSeconds) || deadlineSeconds < 1 || deadlineSeconds > 30 * 86_400)
      throw badInput('deadlineSeconds must be from 1 to 2592000 (30 days)');
    const { query, bootstrap } = taskQueriesOf(input);
    const deadline = new Date(this.clock().getTime() + deadlineSeconds * 1000);
    const id = await this.db.transaction(ctx, async (tx) => {
      const common = { sites, minSites, deadline, requestedByTokenId: actor.tokenId, requestedBy: actor.name };
      const task = await createTask(this.db, tx, this.queue, this.pubSub, { ...common, kind: input.kind, query, parentTaskId: null });
      // The bootstrap's replicate sums are asked beside the counts, of the same sites, by the same deadline.
      if (bootstrap) {
        await createTask(this.db, tx, this.queue, this.pubSub, { ...common, kind: FederatedQueryKind.BOOTSTRAP_SUMS, query: bootstrap, parentTaskId: task.id });
      }
      await this.audit.record(tx, {
        action: 'startFederatedQuery',
        entityType: 'FederationTask',
        entityId: task.id,
        details: { kind: input.kind, sites, minSites },
      });
      return task.id;
    });
    return this.getQuery(ctx, id);
  }

  async getQuery(ctx: RequestContext, id: string): Promise<FederatedQueryView> {
    requireRole(ctx, Role.STATISTICIAN);
    requireHub(this.hub);
    const task = await this.db.getEntityOrThrow(ctx, FederationTask, id);
    return this.viewOf(ctx, task);
  }

  /**
   * The query's answer at once, then again whenever it changes (a result, a late result folded in, the deadline, a
   * cancellation), from whichever server or worker changed it (NOTIFY carries only the id; each event re-reads).
   */
  async *watchQuery(ctx: RequestContext, id: string): AsyncGenerator<FederatedQueryView> {
    requireRole(ctx, Role.STATISTICIAN);
    const events = this.pubSub.subscribe(FEDERATED_QUERY_CHANGED, id);
    yield await this.getQuery(ctx, id);
    for await (const event of events) yield await this.getQuery(ctx, event.taskId);
  }

  /** The latest queries first. */
  async listQueries(ctx: RequestContext, limit = 100): Promise<FederatedQueryView[]> {
    requireRole(ctx, Role.STATISTICIAN);
    requireHub(this.hub);
    // Federated inference jobs have their own list (federatedInferences): they answer no question; a query's parts are in it.
    const tasks = await this.db.repo(ctx, FederationTask).find({
      where: { kind: Not(FederatedQueryKind.INFERENCE), parentTaskId: IsNull() },
      order: { createdAt: 'DESC', id: 'ASC' },
      take: Math.max(1, Math.min(500, limit)),
    });
    return Promise.all(tasks.map((task) => this.viewOf(ctx, task)));
  }

  /** Stops a query: its open site-tasks expire (reason CANCELLED), and sites that claimed one hear it in their next claim answer. */
  async cancelQuery(ctx: RequestContext, id: string): Promise<FederatedQueryView> {
    requireRole(ctx, Role.STATISTICIAN);
    requireHub(this.hub);
    await this.db.transaction(ctx, async (tx) => {
      const task = await this.db
        .manager(tx)
        .getRepository(FederationTask)
        .findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!task) throw new AppError(ErrorCode.NOT_FOUND, `FederationTask ${id} was not found`, { entity: 'FederationTask', id });
      const running = await this.db.repo(tx, FederationTask).existsBy({ parentTaskId: task.id, status: FederatedQueryStatus.RUNNING });
      if (task.status !== FederatedQueryStatus.RUNNING && !(running && task.status !== FederatedQueryStatus.CANCELLED))
        throw conflict(`The query is ${task.status}; only a RUNNING query can be cancelled`);
      // The query's parts (a running AUC round 2, the bootstrap) stop with it.
      const parts = await this.db.repo(tx, FederationTask).findBy({ parentTaskId: task.id });
      for (const id of [task.id, ...parts.map((p) => p.id)]) {
        await this.db.repo(tx, FederationTask).update(id, { status: FederatedQueryStatus.CANCELLED });
        await this.db
          .repo(tx, FederationSiteTask)
          .update(
            { taskId: id, state: In([FederationSiteTaskState.QUEUED, FederationSiteTaskState.CLAIMED]) },
            { state: FederationSiteTaskState.EXPIRED, reason: 'CANCELLED', settledAt: this.clock(), leaseUntil: null },
          );
      }
      await this.audit.record(tx, { action: 'cancelFederatedQuery', entityType: 'FederationTask', entityId: task.id });
      await this.pubSub.publish(FEDERATED_QUERY_CHANGED, task.id, { taskId: task.id }, this.db.manager(tx));
    });
    return this.getQuery(ctx, id);
  }

  /** The registry with each member's key id and when it last claimed. */
  async listSites(ctx: RequestContext): Promise<FederationSiteView[]> {
    requireRole(ctx, Role.STATISTICIAN);
    const registry = await requireHub(this.hub).registry();
    const contacts = await this.db.repo(ctx, FederationSiteContact).find();
    const last = new Map(contacts.map((c) => [c.site, c.lastClaimAt]));
    return registry.sites.map((s) => ({
      code: s.code,
      name: s.name,
      keyId: s.keyId,
      signingKey: s.signingKey,
      contactName: s.contact.name,
      contactEmail: s.contact.email,
      lastClaimAt: last.get(s.code) ?? null,
    }));
  }

  // ---- deadlines ----

  /**
   * The deadline job: open site-tasks (QUEUED, CLAIMED) expire, and the task's status becomes PARTIAL or
   * INSUFFICIENT (or COMPLETE), naming each missing site with why. 'skipped' when the task is gone or cancelled,
   * or when the job came early by this server's clock (it is sent again for the deadline).
   */
  async expireAtDeadline(ctx: RequestContext, taskId: string): Promise<'done' | 'skipped'> {
    requireHub(this.hub);
    return this.db.transaction(ctx, async (tx) => {
      const task = await this.db
        .manager(tx)
        .getRepository(FederationTask)
        .findOne({ where: { id: taskId }, lock: { mode: 'pessimistic_write' } });
      if (!task || task.status === FederatedQueryStatus.CANCELLED) return 'skipped';
      const now = this.clock();
      // Early by this server's clock (pg-boss times startAfter by the database's): come back at the deadline.
      if (now.getTime() < task.deadline.getTime()) {
        await this.queue.send(tx, FEDERATION_DEADLINE, { taskId }, { startAfter: task.deadline });
        return 'skipped';
      }
      const open = await this.db.repo(tx, FederationSiteTask).findBy({ taskId, state: In([FederationSiteTaskState.QUEUED, FederationSiteTaskState.CLAIMED]) });
      for (const siteTask of open) {
        const to = nextSiteState(siteTask.state as string as FederationSiteState, 'DEADLINE');
        if (!to) continue;
        await this.db.repo(tx, FederationSiteTask).update(siteTask.id, {
          state: to as FederationSiteState as unknown as FederationSiteTaskState,
          reason: siteTask.claimedAt ? 'SITE_TIMEOUT' : 'SITE_UNAVAILABLE',
          settledAt: now,
          leaseUntil: null,
        });
      }
      // A secure task's round starts now with the sites that answered.
      await startSecureRoundIfReady({ db: this.db, queue: this.queue, pubSub: this.pubSub, hub: requireHub(this.hub), clock: this.clock }, tx, task);
      await refreshTaskStatus(this.db, tx, task, task.revision, now);
      await this.pubSub.publish(FEDERATED_QUERY_CHANGED, task.id, { taskId: task.id }, this.db.manager(tx));
      return 'done';
    });
  }

  // ---- answers ----

  /** A task's site-tasks, results, status at `now` and summary: one part of a query. */
  private async partOf(ctx: RequestContext, task: FederationTask, now: Date) {
    const siteTasks = await this.db.repo(ctx, FederationSiteTask).find({ where: { taskId: task.id }, order: { site: 'ASC' } });
    const results = await this.db.repo(ctx, FederationResult).find({ where: { taskId: task.id }, order: { site: 'ASC' } });
    const transcript = await secureTranscriptOf(this.db, ctx, task.id);
    const roundOpen = transcript !== null && OPEN_PHASES.includes(transcript.phase);
    const status = task.status === FederatedQueryStatus.CANCELLED ? task.status : statusOf(task, siteTasks, now, roundOpen);
    const summary = summarizeTask(
      siteTasks.map((s) => ({ site: s.site, state: s.state as string as FederationSiteState, detail: s.reason, everClaimed: s.claimedAt !== null })),
      { minSites: task.minSites, deadlinePassed: now.getTime() >= task.deadline.getTime() },
    );
    const stated = results.map((r) => ({ site: r.site, state: r.state, payload: (r.envelope as { payload: ResultPayload }).payload }));
    const answerPart: AnswerPart = {
      kind: task.kind,
      query: task.query as JsonValue,
      sites: siteTasks.map((s) => s.site),
      results: stated,
      // Secure-summed pooled rows come from the round's transcript (the hub holds no site's numbers for them).
      totals: pooledTotalsOf(TASK_KIND[task.kind], transcript, stated),
    };
    return { task, siteTasks, results, status, summary, answerPart, transcript };
  }

  /** The query's own task and the parts chained to it, oldest first. */
  private async partsOf(ctx: RequestContext, task: FederationTask, now: Date) {
    const children = await this.db.repo(ctx, FederationTask).find({ where: { parentTaskId: task.id }, order: { createdAt: 'ASC', id: 'ASC' } });
    return Promise.all([task, ...children].map((t) => this.partOf(ctx, t, now)));
  }

  private async viewOf(ctx: RequestContext, task: FederationTask): Promise<FederatedQueryView> {
    const now = this.clock();
    const parts = await this.partsOf(ctx, task, now);
    const [own, ...chained] = parts;
    const status = combinedStatus(
      task.kind,
      own.status,
      chained.map((p) => Object.assign(new FederationTask(), p.task, { status: p.status })),
    );
    const pooled = federatedAnswerRows(
      task.kind,
      parts.map((p) => p.answerPart),
      { minGroupPatients: this.minGroupPatients },
    );
    // INSUFFICIENT: too few sites to say anything pooled; only the per-site states are shown. RUNNING AUC: no rows before round 2.
    const rows =
      pooled.ok && status !== FederatedQueryStatus.INSUFFICIENT && !(task.kind === FederatedQueryKind.AUC && status === FederatedQueryStatus.RUNNING)
        ? pooled.rows
        : [];
    const siteView = (s: FederationSiteTask): SiteTaskView => ({
      site: s.site,
      state: s.state,
      reason: s.reason,
      late: s.late,
      claimedAt: s.claimedAt,
      settledAt: s.settledAt,
    });
    // A site missing from any part is missing from the answer (named once, by the first part it is missing from).
    const missing = new Map<string, { site: string; code: SiteErrorCode; reason: string | null }>();
    if (status !== FederatedQueryStatus.RUNNING) {
      for (const part of parts) {
        if (part.status === FederatedQueryStatus.RUNNING) continue;
        for (const m of part.summary.missing) {
          if (missing.has(m.site)) continue;
          // A bootstrap refused by a site leaves the counts whole: only the intervals of rows with that site lack replicates.
          if (part.task.kind === FederatedQueryKind.BOOTSTRAP_SUMS) continue;
          missing.set(m.site, {
            site: m.site,
            code: m.reason as SiteErrorCode,
            reason: m.reason === 'SITE_REFUSED' || m.reason === 'SITE_FAILED' ? m.detail : null,
          });
        }
      }
    }
    const sha256 = rows.length > 0 ? rowsSha256(rows as AnswerRow[]) : null;
    return {
      id: task.id,
      kind: task.kind,
      status,
      query: task.query as Record<string, unknown>,
      minSites: task.minSites,
      deadline: task.deadline,
      revision: task.revision + chained.reduce((s, p) => s + p.task.revision - 1, 0),
      updated: task.revision > 1 || chained.some((p) => p.task.revision > 1),
      createdAt: task.createdAt,
      requestedBy: task.requestedBy,
      sites: own.siteTasks.map(siteView),
      missing: [...missing.values()],
      rounds: chained.map((p) => ({ id: p.task.id, kind: p.task.kind, status: p.status, deadline: p.task.deadline, sites: p.siteTasks.map(siteView) })),
      rows,
      rowsSha256: sha256,
      minGroupPatients: this.minGroupPatients,
      answer: { rowsSha256: sha256, ...presentRows(task.kind, rows, task.query as Record<string, unknown>) },
      contributions: parts.flatMap((p) =>
        p.results
          .filter((r) => r.state === 'SUCCEEDED')
          .map((r) => {
            const payload = (r.envelope as { payload: ResultPayload }).payload;
            return { site: r.site, kind: p.task.kind, resultSha256: r.envelopeSha256, aggregateSha256: r.aggregateSha256, manifest: payload.manifest };
          }),
      ),
      secureSum: own.transcript ? secureSumView(own.transcript) : null,
      secureTranscript: own.transcript,
    };
  }

  /**
   * The provenance export (`facet verify` checks it): a hub-signed ANSWER envelope holding, per site, its task signed
   * by the hub, every result envelope exactly as the site signed it, the rows and their sha256.
   */
  async exportAnswer(ctx: RequestContext, id: string): Promise<{ view: FederatedQueryView; export: SignedEnvelope }> {
    const hub = requireHub(this.hub);
    const view = await this.getQuery(ctx, id);
    const task = await this.db.getEntityOrThrow(ctx, FederationTask, id);
    const now = this.clock();
    // Each part as the sites saw it: its tasks signed by the hub, and every result envelope exactly as its site signed it.
    const parts = (await this.partsOf(ctx, task, now)).map((p) => ({
      taskId: p.task.id,
      kind: p.task.kind,
      query: p.task.query as JsonValue,
      tasks: p.siteTasks.map(
        (s) =>
          signEnvelope(
            hub.identity,
            { kind: EnvelopeKind.TASK, signer: HUB_SIGNER, audience: s.site, payload: s.payload as JsonValue },
            now,
          ) as unknown as JsonValue,
      ),
      results: p.results.map((r) => r.envelope as JsonValue),
    }));
    const [own, ...rounds] = parts;
    const payload = {
      format: 'facet-federated-answer/1',
      taskId: view.id,
      kind: view.kind,
      query: view.query as JsonValue,
      minSites: view.minSites,
      deadline: view.deadline.toISOString(),
      status: view.status,
      revision: view.revision,
      tasks: own.tasks,
      results: own.results,
      // The parts the hub chained to the query (AUC round 2, the bootstrap), checked by `facet verify` like the first.
      rounds: rounds as unknown as JsonValue,
      // The pooled rows' disclosure rule, which verify applies when it recomputes them.
      minGroupPatients: view.minGroupPatients,
      missing: view.missing as unknown as JsonValue,
      rows: view.rows as unknown as JsonValue,
      rowsSha256: view.rowsSha256,
      // The secure round's signed masked vectors and seeds: `facet verify` recomputes the pooled totals from them.
      secureSum: view.secureTranscript,
    };
    const answer = signEnvelope(hub.identity, { kind: EnvelopeKind.ANSWER, signer: HUB_SIGNER, audience: ANSWER_AUDIENCE, payload }, now);
    await this.audit.record(ctx, { action: 'exportFederatedAnswer', entityType: 'FederationTask', entityId: id, details: { rowsSha256: view.rowsSha256 } });
    return { view, export: answer as unknown as SignedEnvelope };
  }
}
