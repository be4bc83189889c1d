import { In } from 'typeorm';
import type { Db } from '../../db/transaction';
import { ErrorCode, FederatedQueryKind, FederatedQueryStatus, FederationSiteTaskState, Role, SiteErrorCode } from '../../domain';
import { FederationResult, FederationSiteContact, FederationSiteTask, FederationTask } from '../../entities';
import type { JsonDocument } from '../../entities/federation-task.entity';
import { AppError, badInput, conflict } from '../../errors/app-error';
import { canonicalSha256, type JsonValue } from '../../federation/canonical-json';
import { acceptEnvelope, EnvelopeKind, signEnvelope, type SignedEnvelope } from '../../federation/envelope';
import { MAX_WAIT_SECONDS } from '../../federation/hub-client';
import { answerRowsOf, checkResultPayload, rowsSha256, type AnswerRow, type ResultCheck } from '../../federation/pool';
import {
  FederationSiteState,
  FederationTaskKind,
  nextSiteState,
  summarizeTask,
  type ClaimPayload,
  type ResultPayload,
  type SiteEvent,
  type TaskPayload,
} from '../../federation/protocol';
import { ReplayGuard } from '../../federation/replay-guard';
import type { SiteRegistry } from '../../federation/site-registry';
import type { BinaryCountsQuery, StudyFlowQuery } from '../../federation/task-kinds';
import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { FEDERATION_TASK_QUEUED } from '../../pubsub/topics';
import { FEDERATION_DEADLINE } from '../../queue/job-catalogue';
import type { JobQueue } from '../../queue/job-queue';
import type { AuditService } from '../audit.service';
import { requireRole, type RequestContext } from '../request-context';
import { presentRows, type MetricsRowView, type StudyFlowRowView } from './hub-answer';
import { HUB_AUDIENCE, HUB_SIGNER, LiveRegistry, type HubOptions } from './hub-registry';
import { PostgresNonceStore } from './postgres-nonce-store';

// The domain's copies of the protocol's enums must not drift from protocol.ts: these fail to compile if they do.
const SAME_STATES: Record<FederationSiteState, FederationSiteTaskState> = FederationSiteTaskState;
const SAME_KINDS: Record<FederatedQueryKind, FederationTaskKind> = {
  STUDY_FLOW: FederationTaskKind.STUDY_FLOW,
  BINARY_COUNTS: FederationTaskKind.BINARY_COUNTS,
};
void SAME_STATES;
void SAME_KINDS;

/** Ten minutes: long enough for a node to compute a study's aggregates, short enough that a dead node's task is offered again soon. */
export const DEFAULT_LEASE_SECONDS = 600;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A claim asks for at most this many tasks per answer (the node's maxTasks is capped here). */
const MAX_TASKS_PER_CLAIM = 20;
/** Nonces are pruned at most once a minute, by whichever request comes first. */
const NONCE_PRUNE_MS = 60_000;

export interface ClaimAnswerView {
  tasks: SignedEnvelope[];
  cancelled: string[];
  serverTime: Date;
}

export interface SubmissionView {
  accepted: boolean;
  code: string | null;
  receipt: SignedEnvelope | null;
}

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
  /** Registry codes; empty or absent: every member. */
  sites?: string[] | null;
  minSites?: number | null;
  deadlineSeconds?: number | null;
}

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
  rows: AnswerRow[];
  rowsSha256: string | null;
  answer: { rowsSha256: string | null; studyFlow: StudyFlowRowView[]; metrics: MetricsRowView[] };
  contributions: ContributionView[];
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
 * The hub: hands each member the tasks addressed to it when its signed long-poll claim comes in, takes its signed
 * results, and pools them into answers with partial-answer semantics (protocol.ts). Nothing here opens a connection
 * to a node. Every envelope is checked (signature against `sites/`, audience, replay) before any write.
 */
export class FederationHubService {
  private readonly hub: (HubOptions & { live: LiveRegistry; replay: ReplayGuard; leaseMs: number }) | null;
  /** A site's pending long-poll, ended when the same site claims again (one pending claim per site and server). */
  private readonly pending = new Map<string, AbortController>();
  private nextPrune = 0;

  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly queue: JobQueue,
    private readonly pubSub: PostgresPubSub,
    hub: HubOptions | null,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.hub = hub
      ? {
          ...hub,
          live: new LiveRegistry(hub.sitesDir, hub.registry, hub.onRegistryProblem),
          replay: new ReplayGuard(new PostgresNonceStore(db), { clock }),
          leaseMs: (hub.leaseSeconds ?? DEFAULT_LEASE_SECONDS) * 1000,
        }
      : null;
  }

  /** Whether this deployment runs as a hub (`serve --hub`, FACET_MODE=hub). */
  get isHub(): boolean {
    return this.hub !== null;
  }

  private requireHub() {
    if (!this.hub) throw new AppError(ErrorCode.NOT_A_HUB, 'This deployment is not a federation hub (start it with `facet serve --hub`)');
    return this.hub;
  }

  /** The hub's public signing key, as nodes pin it. */
  hubIdentity(_ctx: RequestContext): { signer: string; signingKey: string; keyId: string } {
    const hub = this.requireHub();
    return { signer: HUB_SIGNER, signingKey: hub.identity.public.signingKey, keyId: hub.identity.public.keyId };
  }

  private registry(): Promise<SiteRegistry> {
    return this.requireHub().live.current();
  }

  private async pruneNonces(): Promise<void> {
    const now = this.clock().getTime();
    if (now < this.nextPrune) return;
    this.nextPrune = now + NONCE_PRUNE_MS;
    await this.requireHub().replay.forgetExpired();
  }

  // ---- transport: claims ----

  /**
   * A node's long-poll: the QUEUED site-tasks of the claiming site (SELECT … FOR UPDATE SKIP LOCKED, so two claims
   * never take one task) become CLAIMED with a lease and go back as freshly signed TASK envelopes; with none, the
   * claim waits for a task to be queued for the site (LISTEN, through the pub/sub) for up to `waitSeconds`.
   */
  async claimTasks(ctx: RequestContext, raw: unknown, waitSeconds: number): Promise<ClaimAnswerView> {
    const hub = this.requireHub();
    const registry = await this.registry();
    const checked = await acceptEnvelope<ClaimPayload>(raw, {
      kind: EnvelopeKind.CLAIM,
      audience: HUB_AUDIENCE,
      keys: registry.signingKeyOf,
      replay: hub.replay,
    });
    if (!checked.ok) throw new AppError(ErrorCode.UNAUTHENTICATED, `The claim was refused: ${checked.message}`, { reason: checked.code });
    const { signer, payload } = checked.envelope;
    if (!payload || typeof payload !== 'object' || payload.site !== signer) {
      throw new AppError(ErrorCode.UNAUTHENTICATED, 'A claim is signed by the site it claims for', { reason: 'WRONG_SITE' });
    }
    await this.pruneNonces();
    const site = signer;
    const maxTasks = Number.isInteger(payload.maxTasks) && payload.maxTasks > 0 ? Math.min(payload.maxTasks, MAX_TASKS_PER_CLAIM) : 1;
    const working = Array.isArray(payload.working) ? payload.working.filter((id): id is string => typeof id === 'string' && UUID.test(id)) : [];
    await this.db.repo(ctx, FederationSiteContact).upsert({ site, lastClaimAt: this.clock() }, ['site']);

    // A newer claim from the same site ends this server's older pending one (it answers empty).
    this.pending.get(site)?.abort();
    const superseded = new AbortController();
    this.pending.set(site, superseded);
    // Listen before the first look, so a task queued in between wakes this claim.
    const events = this.pubSub.subscribe(FEDERATION_TASK_QUEUED, site)[Symbol.asyncIterator]();
    const until = Date.now() + Math.max(0, Math.min(MAX_WAIT_SECONDS, waitSeconds)) * 1000;
    try {
      // A client that went away must not take tasks it will never see (they would wait for the lease to lapse).
      const stop = ctx.signal ? AbortSignal.any([superseded.signal, ctx.signal]) : superseded.signal;
      for (;;) {
        const answer = await this.claimOnce(ctx, site, maxTasks, working);
        if (answer.tasks.length > 0 || answer.cancelled.length > 0 || stop.aborted || Date.now() >= until) return answer;
        await nextOrTimeout(events, until - Date.now(), stop);
        if (stop.aborted) return { tasks: [], cancelled: [], serverTime: this.clock() };
      }
    } finally {
      if (this.pending.get(site) === superseded) this.pending.delete(site);
      void events.return?.();
    }
  }

  private async claimOnce(ctx: RequestContext, site: string, maxTasks: number, working: string[]): Promise<ClaimAnswerView> {
    const hub = this.requireHub();
    const now = this.clock();
    const leaseUntil = new Date(now.getTime() + hub.leaseMs);
    const { payloads, cancelled } = await this.db.transaction(ctx, async (tx) => {
      const m = this.db.manager(tx);
      // A lapsed lease (the node died after claiming) offers the task again: CLAIMED -LEASE_LAPSED-> QUEUED.
      await m.query(
        `UPDATE federation_site_task st SET state = 'QUEUED', lease_until = NULL, updated_at = now()
         FROM federation_task t WHERE t.id = st.task_id AND st.site = $1 AND st.state = 'CLAIMED' AND st.lease_until < $2
           AND t.status = 'RUNNING' AND t.deadline > $2`,
        [site, now],
      );
      if (working.length > 0) {
        await m.query(
          `UPDATE federation_site_task SET lease_until = $3, updated_at = now() WHERE site = $1 AND state = 'CLAIMED' AND task_id = ANY($2::uuid[])`,
          [site, working, leaseUntil],
        );
      }
      const picked: { id: string }[] = await m.query(
        `SELECT st.id FROM federation_site_task st JOIN federation_task t ON t.id = st.task_id
         WHERE st.site = $1 AND st.state = 'QUEUED' AND t.status = 'RUNNING' AND t.deadline > $2
         ORDER BY st.created_at, st.id LIMIT $3 FOR UPDATE OF st SKIP LOCKED`,
        [site, now, maxTasks],
      );
      let claimed: { payload: TaskPayload }[] = [];
      if (picked.length > 0) {
        [claimed] = await m.query(
          `UPDATE federation_site_task SET state = 'CLAIMED', claimed_at = COALESCE(claimed_at, $2), lease_until = $3, updated_at = now()
           WHERE id = ANY($1::uuid[]) RETURNING payload`,
          [picked.map((p) => p.id), now, leaseUntil],
        );
      }
      const [stopped]: [{ task_id: string }[], number] = await m.query(
        `UPDATE federation_site_task st SET cancel_delivered = true FROM federation_task t
         WHERE t.id = st.task_id AND st.site = $1 AND t.status = 'CANCELLED' AND st.claimed_at IS NOT NULL AND NOT st.cancel_delivered
         RETURNING st.task_id`,
        [site],
      );
      return { payloads: claimed.map((c) => c.payload), cancelled: stopped.map((s) => s.task_id) };
    });
    const tasks = payloads.map((payload) =>
      signEnvelope(hub.identity, { kind: EnvelopeKind.TASK, signer: HUB_SIGNER, audience: site, payload: payload as JsonValue }, this.clock()),
    );
    return { tasks, cancelled, serverTime: this.clock() };
  }

  // ---- transport: results ----

  /**
   * A node's signed result: checked (signature against `sites/`, audience "hub", replay, signer = the task's site,
   * taskSha256 = the task's hash, manifest and aggregate), moved by protocol.ts, stored with a signed RECEIPT. A
   * re-signed retry of a result already stored gets the stored receipt; any other second result ALREADY_SETTLED.
   */
  async submitResult(ctx: RequestContext, raw: unknown): Promise<SubmissionView> {
    const hub = this.requireHub();
    const registry = await this.registry();
    const refused = (code: string): SubmissionView => ({ accepted: false, code, receipt: null });
    const checked = await acceptEnvelope<ResultPayload>(raw, {
      kind: EnvelopeKind.RESULT,
      audience: HUB_AUDIENCE,
      keys: registry.signingKeyOf,
      replay: hub.replay,
    });
    if (!checked.ok) return refused(checked.code);
    await this.pruneNonces();
    const envelope = checked.envelope;
    const result: ResultCheck = checkResultPayload(envelope.payload);
    if (!result.ok) return refused(result.code);
    const payload = envelope.payload;
    if (payload.site !== envelope.signer) return refused('NOT_ADDRESSEE');
    const outcome = await this.db.transaction(ctx, async (tx) => {
      const m = this.db.manager(tx);
      const task = await m.getRepository(FederationTask).findOne({ where: { id: payload.taskId }, lock: { mode: 'pessimistic_write' } });
      if (!task) return refused('UNKNOWN_TASK');
      const siteTask = await m.getRepository(FederationSiteTask).findOneBy({ taskId: task.id, site: envelope.signer });
      if (!siteTask) return refused('NOT_ADDRESSEE');
      const stored = await m.getRepository(FederationResult).findOneBy({ siteTaskId: siteTask.id });
      if (stored) {
        // The node did not get our answer and re-signed the same result: it gets the receipt it missed.
        if (stored.payloadSha256 === envelope.payloadSha256) return { accepted: true, code: null, receipt: stored.receipt as unknown as SignedEnvelope };
        return refused('ALREADY_SETTLED');
      }
      if (payload.taskSha256 !== siteTask.taskSha256) return refused('TASK_HASH_MISMATCH');
      if (task.status === FederatedQueryStatus.CANCELLED) return refused('TASK_CANCELLED');
      const aggregateCheck = answerRowsOf(task.kind, [{ site: envelope.signer, state: payload.state, payload }]);
      if (!aggregateCheck.ok) return refused('BAD_AGGREGATE');
      const event: SiteEvent = payload.state === 'SUCCEEDED' ? 'RESULT_SUCCEEDED' : payload.state === 'REFUSED' ? 'RESULT_REFUSED' : 'RESULT_FAILED';
      // A result for a task the hub re-queued after its lease lapsed: the node evidently had it, so it counts as claimed.
      const from =
        siteTask.state === FederationSiteTaskState.QUEUED
          ? nextSiteState(FederationSiteState.QUEUED, 'CLAIM')
          : (siteTask.state as string as FederationSiteState);
      const to = from ? nextSiteState(from, event) : null;
      if (!to) return refused('ALREADY_SETTLED');
      const now = this.clock();
      const late = now.getTime() > task.deadline.getTime();
      const envelopeSha256 = canonicalSha256(envelope as unknown as JsonValue);
      const receipt = signEnvelope(
        hub.identity,
        { kind: EnvelopeKind.RECEIPT, signer: HUB_SIGNER, audience: envelope.signer, payload: { taskId: task.id, resultSha256: envelopeSha256 } },
        now,
      );
      await m.getRepository(FederationResult).insert({
        siteTaskId: siteTask.id,
        taskId: task.id,
        site: envelope.signer,
        state: payload.state,
        envelope: envelope as unknown as JsonDocument,
        envelopeSha256,
        payloadSha256: envelope.payloadSha256,
        aggregateSha256: canonicalSha256(payload.aggregate),
        receipt: receipt as unknown as JsonDocument,
      });
      await m.getRepository(FederationSiteTask).update(siteTask.id, {
        state: to as FederationSiteState as unknown as FederationSiteTaskState,
        claimedAt: siteTask.claimedAt ?? now,
        leaseUntil: null,
        settledAt: now,
        late,
        reason: payload.state === 'SUCCEEDED' ? null : (payload.reason ?? payload.state),
      });
      // A result after the deadline changes an answer already given: a new revision, marked updated.
      await this.refreshStatus(tx, task, late ? task.revision + 1 : task.revision);
      return { accepted: true, code: null, receipt };
    });
    return outcome;
  }

  /** Recomputes and stores the task's status (and revision) from its site-tasks. */
  private async refreshStatus(ctx: RequestContext, task: FederationTask, revision: number): Promise<FederatedQueryStatus> {
    if (task.status === FederatedQueryStatus.CANCELLED) return task.status;
    const siteTasks = await this.db.repo(ctx, FederationSiteTask).findBy({ taskId: task.id });
    const status = statusOf(task, siteTasks, this.clock());
    await this.db.repo(ctx, FederationTask).update(task.id, { status, revision });
    return status;
  }

  // ---- researchers ----

  /** Starts a federated query: one task, a site-task per addressed member (QUEUED), a deadline job, a wake-up per site. */
  async startQuery(ctx: RequestContext, input: StartFederatedQuery): Promise<FederatedQueryView> {
    const actor = requireRole(ctx, Role.STATISTICIAN);
    const registry = await this.registry();
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
    const query = taskQueryOf(input) as unknown as Record<string, JsonValue>;
    const deadline = new Date(this.clock().getTime() + deadlineSeconds * 1000);
    const id = await this.db.transaction(ctx, async (tx) => {
      const task = await this.db.repo(tx, FederationTask).save(
        this.db.repo(tx, FederationTask).create({
          kind: input.kind,
          query,
          querySha256: canonicalSha256(query),
          requestedByTokenId: actor.tokenId,
          requestedBy: actor.name,
          minSites,
          deadline,
        }),
      );
      for (const site of sites) {
        const payload: TaskPayload = {
          taskId: task.id,
          kind: SAME_KINDS[input.kind],
          site,
          query,
          deadline: deadline.toISOString(),
          minSites,
          sites,
        };
        await this.db.repo(tx, FederationSiteTask).insert({ taskId: task.id, site, payload, taskSha256: canonicalSha256(payload) });
        // Delivered on commit: the site's pending long-poll wakes and claims it.
        await this.pubSub.publish(FEDERATION_TASK_QUEUED, site, { taskId: task.id }, this.db.manager(tx));
      }
      await this.queue.send(tx, FEDERATION_DEADLINE, { taskId: task.id }, { startAfter: deadline });
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
    this.requireHub();
    const task = await this.db.getEntityOrThrow(ctx, FederationTask, id);
    return this.viewOf(ctx, task);
  }

  /** The latest queries first. */
  async listQueries(ctx: RequestContext, limit = 100): Promise<FederatedQueryView[]> {
    requireRole(ctx, Role.STATISTICIAN);
    this.requireHub();
    const tasks = await this.db.repo(ctx, FederationTask).find({ order: { createdAt: 'DESC', id: 'ASC' }, take: Math.max(1, Math.min(500, limit)) });
    return Promise.all(tasks.map((task) => this.viewOf(ctx, task)));
  }

  /** Stops a query: its open site-tasks expire (reason CANCELLED), and sites that claimed one hear it in their next claim answer. */
  async cancelQuery(ctx: RequestContext, id: string): Promise<FederatedQueryView> {
    requireRole(ctx, Role.STATISTICIAN);
    this.requireHub();
    await this.db.transaction(ctx, async (tx) => {
      const task = await this.db
        .manager(tx)
        .getRepository(FederationTask)
        .findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!task) throw new AppError(ErrorCode.NOT_FOUND, `FederationTask ${id} was not found`, { entity: 'FederationTask', id });
      if (task.status !== FederatedQueryStatus.RUNNING) throw conflict(`The query is ${task.status}; only a RUNNING query can be cancelled`);
      await this.db.repo(tx, FederationTask).update(task.id, { status: FederatedQueryStatus.CANCELLED });
      await this.db
        .repo(tx, FederationSiteTask)
        .update(
          { taskId: task.id, state: In([FederationSiteTaskState.QUEUED, FederationSiteTaskState.CLAIMED]) },
          { state: FederationSiteTaskState.EXPIRED, reason: 'CANCELLED', settledAt: this.clock(), leaseUntil: null },
        );
      await this.audit.record(tx, { action: 'cancelFederatedQuery', entityType: 'FederationTask', entityId: task.id });
    });
    return this.getQuery(ctx, id);
  }

  /** The registry with each member's key id and when it last claimed. */
  async listSites(ctx: RequestContext): Promise<FederationSiteView[]> {
    requireRole(ctx, Role.STATISTICIAN);
    const registry = await this.registry();
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
    this.requireHub();
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
      await this.refreshStatus(tx, task, task.revision);
      return 'done';
    });
  }

  // ---- answers ----

  private async viewOf(ctx: RequestContext, task: FederationTask): Promise<FederatedQueryView> {
    const siteTasks = await this.db.repo(ctx, FederationSiteTask).find({ where: { taskId: task.id }, order: { site: 'ASC' } });
    const results = await this.db.repo(ctx, FederationResult).find({ where: { taskId: task.id }, order: { site: 'ASC' } });
    const now = this.clock();
    const status = task.status === FederatedQueryStatus.CANCELLED ? task.status : statusOf(task, siteTasks, now);
    const summary = summarizeTask(
      siteTasks.map((s) => ({ site: s.site, state: s.state as string as FederationSiteState, detail: s.reason, everClaimed: s.claimedAt !== null })),
      { minSites: task.minSites, deadlinePassed: now.getTime() >= task.deadline.getTime() },
    );
    const succeeded = results.filter((r) => r.state === 'SUCCEEDED');
    const pooled = answerRowsOf(
      task.kind,
      succeeded.map((r) => ({ site: r.site, state: r.state, payload: (r.envelope as { payload: ResultPayload }).payload })),
    );
    // INSUFFICIENT: too few sites to say anything pooled; only the per-site states are shown.
    const rows = pooled.ok && status !== FederatedQueryStatus.INSUFFICIENT ? pooled.rows : [];
    return {
      id: task.id,
      kind: task.kind,
      status,
      query: task.query as Record<string, unknown>,
      minSites: task.minSites,
      deadline: task.deadline,
      revision: task.revision,
      updated: task.revision > 1,
      createdAt: task.createdAt,
      requestedBy: task.requestedBy,
      sites: siteTasks.map((s) => ({ site: s.site, state: s.state, reason: s.reason, late: s.late, claimedAt: s.claimedAt, settledAt: s.settledAt })),
      missing:
        status === FederatedQueryStatus.RUNNING
          ? []
          : summary.missing.map((m) => ({
              site: m.site,
              code: m.reason as SiteErrorCode,
              reason: m.reason === 'SITE_REFUSED' || m.reason === 'SITE_FAILED' ? m.detail : null,
            })),
      rows,
      rowsSha256: rows.length > 0 ? rowsSha256(rows) : null,
      answer: { rowsSha256: rows.length > 0 ? rowsSha256(rows) : null, ...presentRows(task.kind, rows) },
      contributions: succeeded.map((r) => {
        const payload = (r.envelope as { payload: ResultPayload }).payload;
        return { site: r.site, resultSha256: r.envelopeSha256, aggregateSha256: r.aggregateSha256, manifest: payload.manifest };
      }),
    };
  }

  /**
   * The provenance export (`facet verify` checks it): a hub-signed ANSWER envelope holding, per site, its task signed
   * by the hub, every result envelope exactly as the site signed it, the rows and their sha256.
   */
  async exportAnswer(ctx: RequestContext, id: string): Promise<{ view: FederatedQueryView; export: SignedEnvelope }> {
    const hub = this.requireHub();
    const view = await this.getQuery(ctx, id);
    const siteTasks = await this.db.repo(ctx, FederationSiteTask).find({ where: { taskId: id }, order: { site: 'ASC' } });
    const results = await this.db.repo(ctx, FederationResult).find({ where: { taskId: id }, order: { site: 'ASC' } });
    const now = this.clock();
    const payload = {
      format: 'facet-federated-answer/1',
      taskId: view.id,
      kind: view.kind,
      query: view.query as JsonValue,
      minSites: view.minSites,
      deadline: view.deadline.toISOString(),
      status: view.status,
      revision: view.revision,
      tasks: siteTasks.map(
        (s) =>
          signEnvelope(
            hub.identity,
            { kind: EnvelopeKind.TASK, signer: HUB_SIGNER, audience: s.site, payload: s.payload as JsonValue },
            now,
          ) as unknown as JsonValue,
      ),
      results: results.map((r) => r.envelope as JsonValue),
      missing: view.missing as unknown as JsonValue,
      rows: view.rows as unknown as JsonValue,
      rowsSha256: view.rowsSha256,
    };
    const answer = signEnvelope(hub.identity, { kind: EnvelopeKind.ANSWER, signer: HUB_SIGNER, audience: 'public', payload }, now);
    await this.audit.record(ctx, { action: 'exportFederatedAnswer', entityType: 'FederationTask', entityId: id, details: { rowsSha256: view.rowsSha256 } });
    return { view, export: answer as unknown as SignedEnvelope };
  }
}

/** The order of grouping dimensions in a task query (the node's MetricsGroupBy order). */
const GROUP_ORDER = ['SITE', 'FEATURE', 'MODALITY', 'LEVEL', 'SIDE', 'SPLIT'] as const;

/** The task query (task-kinds.ts) a researcher's input asks every site: lists sorted and deduplicated, defaults filled. */
export function taskQueryOf(input: StartFederatedQuery): StudyFlowQuery | BinaryCountsQuery {
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
    if (input.rater || input.groupBy?.length || input.threshold != null)
      throw badInput('A STUDY_FLOW query takes only a scope (no rater, groupBy or threshold)');
    return { scope };
  }
  const modelSha256 = input.rater?.modelSha256 ?? null;
  const readerSlot = input.rater?.readerSlot ?? null;
  if ((modelSha256 === null) === (readerSlot === null)) throw badInput('A BINARY_COUNTS query needs exactly one rater: modelSha256 or readerSlot');
  if (readerSlot !== null && readerSlot !== 'FIRST' && readerSlot !== 'SECOND') throw badInput('readerSlot is FIRST or SECOND');
  const groups = new Set(['SITE', ...(input.groupBy ?? [])]);
  const unknown = [...groups].filter((g) => !(GROUP_ORDER as readonly string[]).includes(g));
  if (unknown.length > 0) throw badInput(`Unknown grouping: ${unknown.join(', ')}`);
  return {
    rater: modelSha256 !== null ? { modelSha256 } : { readerSlot: readerSlot as 'FIRST' | 'SECOND' },
    scope,
    groupBy: GROUP_ORDER.filter((g) => groups.has(g)),
    threshold: input.threshold ?? 1,
  };
}

/** The answer's status from its site-tasks (protocol.ts summarizeTask), at `now`. */
export function statusOf(task: FederationTask, siteTasks: readonly FederationSiteTask[], now: Date): FederatedQueryStatus {
  if (task.status === FederatedQueryStatus.CANCELLED) return task.status;
  const summary = summarizeTask(
    siteTasks.map((s) => ({ site: s.site, state: s.state as string as FederationSiteState, detail: s.reason, everClaimed: s.claimedAt !== null })),
    { minSites: task.minSites, deadlinePassed: now.getTime() >= task.deadline.getTime() },
  );
  return summary.status as FederatedQueryStatus;
}

/** Resolves on the next event, after `ms`, or when `signal` aborts; whichever is first. */
async function nextOrTimeout(events: AsyncIterator<unknown>, ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      events.next(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
        onAbort = resolve;
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
