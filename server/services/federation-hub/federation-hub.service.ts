import type { Db } from '../../db/transaction';
import { ErrorCode, FederatedQueryKind, FederatedQueryStatus, FederationSiteTaskState } from '../../domain';
import { FederationResult, FederationSiteContact, FederationSiteTask, FederationTask } from '../../entities';
import type { JsonDocument } from '../../entities/federation-task.entity';
import { AppError } from '../../errors/app-error';
import { canonicalSha256, type JsonValue } from '../../federation/canonical-json';
import { acceptEnvelope, EnvelopeKind, signEnvelope, type SignedEnvelope } from '../../federation/envelope';
import { MAX_WAIT_SECONDS } from '../../federation/hub-client';
import { answerRowsOf, checkResultPayload, type ResultCheck } from '../../federation/pool';
import { FederationSiteState, nextSiteState, type ClaimPayload, type ResultPayload, type SiteEvent, type TaskPayload } from '../../federation/protocol';
import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { FEDERATED_QUERY_CHANGED, FEDERATION_TASK_QUEUED } from '../../pubsub/topics';
import type { RequestContext } from '../request-context';
import { inferenceResultAcceptable } from './federated-inference-result';
import { HUB_AUDIENCE, HUB_SIGNER, requireHub, type Hub } from './hub-registry';
import { refreshTaskStatus } from './task-status';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A claim asks for at most this many tasks per answer (the node's maxTasks is capped here). */
const MAX_TASKS_PER_CLAIM = 20;

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

/**
 * The hub's transport: hands each member the tasks addressed to it when its signed long-poll claim comes in, and
 * takes its signed results with a signed receipt. Nothing here opens a connection to a node. Every envelope is
 * checked (signature against `sites/`, audience, replay) before any write.
 */
export class FederationHubService {
  /** A site's pending long-poll, ended when the same site claims again (one pending claim per site and server). */
  private readonly pending = new Map<string, AbortController>();

  constructor(
    private readonly db: Db,
    private readonly pubSub: PostgresPubSub,
    private readonly hub: Hub | null,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Whether this deployment runs as a hub (`serve --hub`, FACET_MODE=hub). */
  get isHub(): boolean {
    return this.hub !== null;
  }

  /** The hub's public signing key, as nodes pin it. */
  hubIdentity(_ctx: RequestContext): { signer: string; signingKey: string; keyId: string } {
    const { identity } = requireHub(this.hub);
    return { signer: HUB_SIGNER, signingKey: identity.public.signingKey, keyId: identity.public.keyId };
  }

  /**
   * A node's long-poll: the QUEUED site-tasks of the claiming site (SELECT … FOR UPDATE SKIP LOCKED, so two claims
   * never take one task) become CLAIMED with a lease and go back as freshly signed TASK envelopes; with none, the
   * claim waits for a task to be queued for the site (LISTEN, through the pub/sub) for up to `waitSeconds`.
   */
  async claimTasks(ctx: RequestContext, raw: unknown, waitSeconds: number): Promise<ClaimAnswerView> {
    const hub = requireHub(this.hub);
    const registry = await hub.registry();
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
    await hub.pruneNonces();
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
        if (stop.aborted) return { tasks: [], cancelled: [], serverTime: this.clock() };
        const answer = await this.claimOnce(ctx, site, maxTasks, working);
        if (answer.tasks.length > 0 || answer.cancelled.length > 0 || Date.now() >= until) return answer;
        await nextOrTimeout(events, until - Date.now(), stop);
      }
    } finally {
      if (this.pending.get(site) === superseded) this.pending.delete(site);
      void events.return?.();
    }
  }

  private async claimOnce(ctx: RequestContext, site: string, maxTasks: number, working: string[]): Promise<ClaimAnswerView> {
    const hub = requireHub(this.hub);
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
    const hub = requireHub(this.hub);
    const registry = await hub.registry();
    const refused = (code: string): SubmissionView => ({ accepted: false, code, receipt: null });
    const checked = await acceptEnvelope<ResultPayload>(raw, {
      kind: EnvelopeKind.RESULT,
      audience: HUB_AUDIENCE,
      keys: registry.signingKeyOf,
      replay: hub.replay,
    });
    if (!checked.ok) return refused(checked.code);
    await hub.pruneNonces();
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
      const aggregateCheck =
        task.kind === FederatedQueryKind.INFERENCE
          ? { ok: inferenceResultAcceptable(payload, task.query) }
          : answerRowsOf(task.kind, [{ site: envelope.signer, state: payload.state, payload }]);
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
      await refreshTaskStatus(this.db, tx, task, late ? task.revision + 1 : task.revision, now);
      await this.pubSub.publish(FEDERATED_QUERY_CHANGED, task.id, { taskId: task.id }, m);
      return { accepted: true, code: null, receipt };
    });
    return outcome;
  }
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
