import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { MoreThan } from 'typeorm';
import type { Db } from '../../db/transaction';
import { ErrorCode, FederationInboxState, Role } from '../../domain';
import { AuditEvent, FederationInboxTask, FederationReleasePolicy } from '../../entities';
import { AppError, badInput, conflict, forbidden, notFound } from '../../errors/app-error';
import { canonicalJson, canonicalSha256, type JsonValue } from '../../federation/canonical-json';
import { ComputeError } from '../../federation/compute-query';
import { acceptEnvelope, EnvelopeKind, signEnvelope, verifyEnvelope, type SignedEnvelope } from '../../federation/envelope';
import type { HubClient } from '../../federation/hub-client';
import { keyIdOf, loadOrCreateNodeIdentity, publicKeyFromBase64, type NodeIdentity } from '../../federation/identity';
import { FederationTaskKind, type ProvenanceManifest, type ResultPayload, type TaskPayload } from '../../federation/protocol';
import {
  aggregateVocabulary,
  decideRelease,
  DEFAULT_RELEASE_POLICY,
  parseReleasePolicy,
  PolicyError,
  type ReleasePolicy,
} from '../../federation/release-policy';
import { MemoryNonceStore, ReplayGuard } from '../../federation/replay-guard';
import { FEDERATION_COMPUTE, FEDERATION_SUBMIT } from '../../queue/job-catalogue';
import type { JobQueue } from '../../queue/job-queue';
import type { AuditService } from '../audit.service';
import { requireRole, systemContext, type RequestContext } from '../request-context';
import { differencingRefusal, recordPopulations } from './differencing';
import type { FederationComputeService } from './federation-compute.service';

const REPO_ROOT = path.resolve(__dirname, __dirname.split(path.sep).includes('dist') ? '../../../..' : '../../..');
/** The Facet version a provenance manifest names. */
export const FACET_VERSION: string = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version;

/** What a node needs to be a member: its site code, the pinned hub key, the data directory of its identity. */
export interface FederationNodeOptions {
  site: string;
  hubUrl: string;
  hubSigningKey: string;
  dataDir: string;
}

/** Audit actions: a release is counted by the budget; a refusal or failure sent is audited too, and not counted. */
export const AUDIT_RELEASE = 'federation.release';
export const AUDIT_ANSWER = 'federation.answer';
export const AUDIT_TASK_REJECTED = 'federation.task.rejected';
export const AUDIT_POLICY = 'federation.policy.set';

/** The signer name of the hub in its TASK and RECEIPT envelopes. */
export const HUB_SIGNER = 'hub';

/** Runs INFERENCE tasks (federated-inference-runner.ts): the node service hands them over after the policy's kind check. */
export interface FederatedInferenceHandler {
  /** In the compute job's transaction, with the inbox row locked: fetch, verify and register the model, then hold or start. */
  prepare(tx: RequestContext, row: FederationInboxTask, payload: TaskPayload, policy: ReleasePolicy): Promise<void>;
  /** The hub cancelled these tasks (its claim answer's `cancelled`): stop their jobs. */
  cancel(taskIds: string[]): Promise<void>;
}

export type ReceiveOutcome = { stored: true; taskId: string; duplicate: boolean } | { stored: false; code: string };

/** A held or answered task as a coordinator sees it: exactly the bytes that would leave or left, and their sha256. */
export interface InboxEntry {
  taskId: string;
  kind: string;
  state: FederationInboxState;
  reason: string | null;
  detail: string | null;
  taskSha256: string;
  /** The canonical JSON of the aggregate held (HELD) or released (RELEASED, SUBMITTED after a release). */
  aggregateJson: string | null;
  aggregateSha256: string | null;
  decidedBy: string | null;
  receivedAt: Date;
  updatedAt: Date;
}

/**
 * The node side of the federation: verifies tasks from the hub against the pinned key and stores them; computes
 * them under the node's release policy; holds them for a coordinator when the policy says so; signs results with
 * their provenance; delivers them until the hub's signed receipt verifies. Every release is audited with the
 * sha256 of exactly what left, and the budget counts those audit rows.
 */
export class FederationNodeService {
  private identityPromise: Promise<NodeIdentity> | null = null;
  private readonly hubKey: KeyObject | null;
  private readonly replay = new ReplayGuard(new MemoryNonceStore());
  private inference: FederatedInferenceHandler | null = null;

  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly queue: JobQueue,
    private readonly compute: FederationComputeService,
    readonly options: FederationNodeOptions | null,
    private readonly hubClient: Pick<HubClient, 'submitResult' | 'close'> | null,
  ) {
    this.hubKey = options ? publicKeyFromBase64('ed25519', options.hubSigningKey) : null;
  }

  identity(): Promise<NodeIdentity> {
    if (!this.options) throw new AppError(ErrorCode.CONFLICT, 'This node is not a federation member (FACET_HUB_URL is unset)');
    this.identityPromise ??= loadOrCreateNodeIdentity(this.options.dataDir);
    return this.identityPromise;
  }

  private member(): FederationNodeOptions {
    if (!this.options) throw new AppError(ErrorCode.CONFLICT, 'This node is not a federation member (FACET_HUB_URL is unset)');
    return this.options;
  }

  /** The pinned hub key, and only for the signer name "hub": a task signed by any other key is not executed. */
  private readonly hubKeys = (signer: string, keyId: string): KeyObject | null =>
    this.hubKey && this.options && signer === HUB_SIGNER && keyId === keyIdOf(this.options.hubSigningKey) ? this.hubKey : null;

  /** Wires the runner of INFERENCE tasks (built after this service: it settles through it). */
  useInference(handler: FederatedInferenceHandler): void {
    this.inference = handler;
  }

  /** Tasks the hub cancelled: their inference jobs stop (other kinds have nothing running to stop). */
  async cancelTasks(taskIds: string[]): Promise<void> {
    await this.inference?.cancel(taskIds);
  }

  /** Closes the connections that deliver results (at shutdown). */
  async close(): Promise<void> {
    await this.hubClient?.close();
  }

  // ---- release policy -------------------------------------------------------------------------------------------

  async getReleasePolicy(ctx: RequestContext): Promise<ReleasePolicy> {
    requireRole(ctx);
    return this.currentPolicy(ctx);
  }

  /** The policy with its sha256 (what manifests name). */
  async describeReleasePolicy(ctx: RequestContext): Promise<ReleasePolicy & { sha256: string }> {
    const policy = await this.getReleasePolicy(ctx);
    return { ...policy, sha256: canonicalSha256(policy as never) };
  }

  async currentPolicy(ctx: RequestContext): Promise<ReleasePolicy> {
    const row = await this.db.repo(ctx, FederationReleasePolicy).findOneBy({ id: 1 });
    return row ? parseReleasePolicy(row.policy) : { ...DEFAULT_RELEASE_POLICY };
  }

  /** ADMIN only; fields left out take the defaults; audited with the policy's sha256 (what manifests quote). */
  async setReleasePolicy(ctx: RequestContext, raw: unknown): Promise<ReleasePolicy & { sha256: string }> {
    requireRole(ctx);
    let policy: ReleasePolicy;
    try {
      // GraphQL hands absent fields as undefined: those take the defaults (explicit null stays: budget: null is "none").
      const given =
        raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)) : raw;
      policy = parseReleasePolicy(given);
    } catch (error) {
      if (error instanceof PolicyError) throw badInput(error.message, { field: error.field });
      throw error;
    }
    return this.db.transaction(ctx, async (tx) => {
      await this.db.repo(tx, FederationReleasePolicy).upsert({ id: 1, policy: policy as never }, ['id']);
      const sha256 = canonicalSha256(policy as never);
      await this.audit.record(tx, { action: AUDIT_POLICY, entityType: 'FederationReleasePolicy', details: { policySha256: sha256 } });
      return { ...policy, sha256 };
    });
  }

  // ---- inbox for coordinators ---------------------------------------------------------------------------------

  async listInbox(ctx: RequestContext, state: FederationInboxState | null): Promise<InboxEntry[]> {
    requireRole(ctx, Role.COORDINATOR);
    const rows = await this.db.repo(ctx, FederationInboxTask).find({ where: state ? { state } : {}, order: { createdAt: 'DESC' }, take: 500 });
    return rows.map((row) => {
      const released = row.resultPayload && row.reason === null ? (row.resultPayload.aggregate as JsonValue) : null;
      const aggregate = row.heldAggregate ?? released;
      return {
        taskId: row.taskId,
        kind: row.kind,
        state: row.state,
        reason: row.reason,
        detail: row.detail,
        taskSha256: row.taskSha256,
        aggregateJson: aggregate ? canonicalJson(aggregate) : null,
        aggregateSha256: aggregate ? canonicalSha256(aggregate) : null,
        decidedBy: row.decidedBy,
        receivedAt: row.createdAt,
        updatedAt: row.updatedAt,
      };
    });
  }

  /** A coordinator of one of this node's sites, or an ADMIN; a coordinator token bound to no site decides nothing. */
  private decider(ctx: RequestContext): string {
    const actor = requireRole(ctx, Role.COORDINATOR);
    if (actor.role === Role.COORDINATOR && !actor.siteId) throw forbidden('Only a coordinator of this node’s site may release or refuse a federated result');
    return `${actor.name} (${actor.role}${actor.tokenId ? ` token ${actor.tokenId}` : ''})`;
  }

  private async lockHeld(tx: RequestContext, taskId: string): Promise<FederationInboxTask> {
    const row = await this.db.repo(tx, FederationInboxTask).findOne({ where: { taskId }, lock: { mode: 'pessimistic_write' } });
    if (!row) throw notFound('FederationInboxTask', taskId);
    if (row.state !== FederationInboxState.HELD) throw conflict(`Task ${taskId} is ${row.state}, not held for approval`, { state: row.state });
    // A held model is the engineer's to run or refuse (approveFederatedInference), not a release of numbers.
    if (row.kind === FederationTaskKind.INFERENCE)
      throw conflict(`Task ${taskId} is a federated inference job: approveFederatedInference or refuseFederatedInference decide it`);
    return row;
  }

  /** Releases exactly the held aggregate (the policy's budget and kinds are checked again now). */
  async approveRelease(ctx: RequestContext, taskId: string): Promise<InboxEntry> {
    const by = this.decider(ctx);
    await this.db.transaction(ctx, async (tx) => {
      const row = await this.lockHeld(tx, taskId);
      row.decidedBy = by;
      // The policy may have changed while the result waited: the kind and the budget are checked again now.
      const policy = await this.currentPolicy(tx);
      if (!policy.taskKinds.includes(row.kind as FederationTaskKind)) {
        await this.answer(tx, row, { state: 'REFUSED', reason: 'TASK_KIND_NOT_ALLOWED', detail: `this node no longer answers ${row.kind} tasks` });
      } else if (policy.budget && (await this.releasesInWindow(tx, policy)) >= policy.budget.releases) {
        await this.answer(tx, row, {
          state: 'REFUSED',
          reason: 'BUDGET_EXHAUSTED',
          detail: `${policy.budget.releases} releases in ${policy.budget.periodDays} days already made`,
        });
      } else {
        await this.release(tx, row, row.heldAggregate as JsonValue, row.heldAggregateSha256 as string);
      }
    });
    return this.entry(ctx, taskId);
  }

  /** Refuses a held result: a REFUSED answer with REFUSED_BY_COORDINATOR goes to the hub; the note stays here. */
  async refuseRelease(ctx: RequestContext, taskId: string, note: string): Promise<InboxEntry> {
    const by = this.decider(ctx);
    if (note.length > 2000) throw badInput('The reason is at most 2000 characters', { field: 'reason' });
    await this.db.transaction(ctx, async (tx) => {
      const row = await this.lockHeld(tx, taskId);
      row.decidedBy = by;
      await this.answer(tx, row, { state: 'REFUSED', reason: 'REFUSED_BY_COORDINATOR', detail: note });
    });
    return this.entry(ctx, taskId);
  }

  private async entry(ctx: RequestContext, taskId: string): Promise<InboxEntry> {
    const entry = (await this.listInbox({ ...ctx, manager: undefined }, null)).find((e) => e.taskId === taskId);
    if (!entry) throw notFound('FederationInboxTask', taskId);
    return entry;
  }

  // ---- the claim loop's side: receiving tasks ---------------------------------------------------------------------

  /**
   * Verifies one TASK envelope (pinned hub key, audience = this site, replay window) and stores it with its compute
   * job in one transaction; a task id already stored is a redelivery and changes nothing. A refused envelope is
   * audited with its code and never executed.
   */
  async receiveTask(raw: unknown): Promise<ReceiveOutcome> {
    const { site } = this.member();
    const ctx = systemContext('federation claim loop');
    const checked = await acceptEnvelope<TaskPayload>(raw, { kind: EnvelopeKind.TASK, audience: site, keys: this.hubKeys, replay: this.replay });
    const refuse = async (code: string): Promise<ReceiveOutcome> => {
      await this.audit.record(ctx, { action: AUDIT_TASK_REJECTED, entityType: 'FederationInboxTask', details: { code } });
      return { stored: false, code };
    };
    if (!checked.ok) return refuse(checked.code);
    const payload = checked.envelope.payload;
    if (payload === null || typeof payload !== 'object' || typeof payload.taskId !== 'string' || payload.taskId.length === 0 || payload.taskId.length > 200)
      return refuse('MALFORMED_TASK');
    if (payload.site !== site) return refuse('NOT_ADDRESSEE');
    if (typeof payload.kind !== 'string') return refuse('MALFORMED_TASK');
    return this.db.transaction(ctx, async (tx) => {
      const inserted = await this.db
        .repo(tx, FederationInboxTask)
        .createQueryBuilder()
        .insert()
        .values({
          taskId: payload.taskId,
          taskEnvelope: checked.envelope as never,
          taskSha256: canonicalSha256(payload),
          kind: payload.kind.slice(0, 32),
          state: FederationInboxState.RECEIVED,
        })
        .orIgnore()
        .returning(['id'])
        .execute();
      const id = (inserted.raw as Array<{ id: string }>)[0]?.id;
      if (!id) return { stored: true as const, taskId: payload.taskId, duplicate: true };
      await this.queue.send(tx, FEDERATION_COMPUTE, { inboxTaskId: id });
      return { stored: true as const, taskId: payload.taskId, duplicate: false };
    });
  }

  /** Task ids this node is still working on (listed in each claim, which extends their leases at the hub). */
  async workingTaskIds(): Promise<string[]> {
    const rows = await this.db.repo(systemContext(), FederationInboxTask).find({
      select: { taskId: true },
      where: [{ state: FederationInboxState.RECEIVED }, { state: FederationInboxState.COMPUTING }, { state: FederationInboxState.HELD }],
      take: 100,
    });
    return rows.map((r) => r.taskId);
  }

  // ---- the federation-compute job --------------------------------------------------------------------------------

  /** Computes a received task, then releases, holds or refuses it by the policy; 'skipped' when already past that. */
  async computeTask(inboxTaskId: string): Promise<'done' | 'skipped'> {
    const ctx = systemContext('federation compute');
    // Visible to coordinators while it runs; a worker that dies here leaves it COMPUTING, and the retry computes again.
    await this.db.repo(ctx, FederationInboxTask).update({ id: inboxTaskId, state: FederationInboxState.RECEIVED }, { state: FederationInboxState.COMPUTING });
    return this.db.transaction(ctx, async (tx) => {
      const row = await this.db.repo(tx, FederationInboxTask).findOne({ where: { id: inboxTaskId }, lock: { mode: 'pessimistic_write' } });
      if (!row || (row.state !== FederationInboxState.RECEIVED && row.state !== FederationInboxState.COMPUTING)) return 'skipped';
      const payload = (row.taskEnvelope as unknown as SignedEnvelope<TaskPayload>).payload;
      const policy = await this.currentPolicy(tx);
      // The kind is checked before anything is computed: a node that does not answer a kind does not even run it.
      if (!policy.taskKinds.includes(payload.kind)) {
        await this.answer(tx, row, { state: 'REFUSED', reason: 'TASK_KIND_NOT_ALLOWED', detail: `this node does not answer ${payload.kind} tasks` });
        return 'done';
      }
      if (payload.kind === FederationTaskKind.INFERENCE) {
        if (!this.inference) throw new Error('no federated inference runner is wired');
        await this.inference.prepare(tx, row, payload, policy);
        return 'done';
      }
      let computed;
      try {
        computed = await this.compute.computeAggregate(tx, payload.kind, payload.query);
      } catch (error) {
        if (!(error instanceof ComputeError)) throw error;
        await this.answer(tx, row, { state: 'FAILED', reason: error.code, detail: error.message });
        return 'done';
      }
      const differencing = await differencingRefusal(this.db, tx, computed, policy);
      if (differencing !== null) {
        await this.answer(tx, row, { state: 'REFUSED', reason: 'DIFFERENCING', detail: differencing });
        return 'done';
      }
      const decision = decideRelease({
        policy,
        request: { kind: payload.kind, arrayLengths: computed.arrayLengths, scoreBins: computed.scoreBins },
        aggregate: computed.aggregate,
        vocabulary: aggregateVocabulary(computed.vocabulary),
        releasesInPeriod: await this.releasesInWindow(tx, policy),
      });
      row.provenance = {
        splitVersionId: computed.splitVersionId,
        modelSha256: computed.modelSha256,
        referenceSnapshotSha256: computed.referenceSnapshotSha256,
      };
      if (decision.decision !== 'REFUSE') await recordPopulations(this.db, tx, row.id, computed, policy);
      if (decision.decision === 'REFUSE') {
        await this.answer(tx, row, { state: 'REFUSED', reason: decision.reason, detail: decision.detail });
      } else if (decision.decision === 'HOLD_FOR_APPROVAL') {
        row.state = FederationInboxState.HELD;
        row.heldAggregate = decision.aggregate as unknown as Record<string, unknown>;
        row.heldAggregateSha256 = decision.sha256;
        await this.db.repo(tx, FederationInboxTask).save(row);
      } else {
        await this.release(tx, row, decision.aggregate as unknown as JsonValue, decision.sha256);
      }
      return 'done';
    });
  }

  /** After the compute job's retries are spent: a FAILED result (COMPUTE_ERROR) unless the task was settled meanwhile. */
  async failTask(inboxTaskId: string): Promise<'done' | 'skipped'> {
    return this.db.transaction(systemContext('federation compute failed'), async (tx) => {
      const row = await this.db.repo(tx, FederationInboxTask).findOne({ where: { id: inboxTaskId }, lock: { mode: 'pessimistic_write' } });
      if (!row || (row.state !== FederationInboxState.RECEIVED && row.state !== FederationInboxState.COMPUTING)) return 'skipped';
      await this.answer(tx, row, { state: 'FAILED', reason: 'COMPUTE_ERROR', detail: 'the computation failed on every try (see the worker log)' });
      return 'done';
    });
  }

  /** Releases in the policy's window: the audit rows of releases (the audit log is the budget's ledger). */
  private async releasesInWindow(tx: RequestContext, policy: ReleasePolicy): Promise<number> {
    if (!policy.budget) return 0;
    const since = new Date(Date.now() - policy.budget.periodDays * 86_400_000);
    return this.db.repo(tx, AuditEvent).count({ where: { action: AUDIT_RELEASE, createdAt: MoreThan(since) } });
  }

  private async manifest(tx: RequestContext, row: FederationInboxTask, aggregateSha256: string): Promise<ProvenanceManifest> {
    // A refusal before anything was computed (a kind the node does not answer) states no inputs.
    const parts = row.provenance ?? { splitVersionId: null, modelSha256: null, referenceSnapshotSha256: null };
    return {
      facetVersion: FACET_VERSION,
      taskSha256: row.taskSha256,
      splitVersionId: parts.splitVersionId,
      modelSha256: parts.modelSha256,
      referenceSnapshotSha256: parts.referenceSnapshotSha256,
      policySha256: canonicalSha256((await this.currentPolicy(tx)) as never),
      aggregateSha256,
    };
  }

  /** A SUCCEEDED result of exactly `aggregate`: stored, audited (counted by the budget), queued for delivery. */
  async release(tx: RequestContext, row: FederationInboxTask, aggregate: JsonValue, aggregateSha256: string): Promise<void> {
    const payload: ResultPayload = {
      taskId: row.taskId,
      taskSha256: row.taskSha256,
      site: this.member().site,
      state: 'SUCCEEDED',
      reason: null,
      aggregate,
      manifest: await this.manifest(tx, row, aggregateSha256),
    };
    await this.settle(tx, row, payload, FederationInboxState.RELEASED, AUDIT_RELEASE);
  }

  /** A REFUSED or FAILED result: the code goes to the hub, the detail stays here. */
  async answer(tx: RequestContext, row: FederationInboxTask, outcome: { state: 'REFUSED' | 'FAILED'; reason: string; detail: string }): Promise<void> {
    row.reason = outcome.reason;
    row.detail = outcome.detail;
    const payload: ResultPayload = {
      taskId: row.taskId,
      taskSha256: row.taskSha256,
      site: this.member().site,
      state: outcome.state,
      reason: outcome.reason,
      aggregate: null,
      manifest: await this.manifest(tx, row, canonicalSha256(null)),
    };
    await this.settle(tx, row, payload, outcome.state === 'REFUSED' ? FederationInboxState.REFUSED : FederationInboxState.FAILED, AUDIT_ANSWER);
  }

  private async settle(tx: RequestContext, row: FederationInboxTask, payload: ResultPayload, state: FederationInboxState, action: string): Promise<void> {
    const payloadSha256 = canonicalSha256(payload);
    row.state = state;
    row.resultPayload = payload as unknown as Record<string, unknown>;
    row.resultPayloadSha256 = payloadSha256;
    await this.db.repo(tx, FederationInboxTask).save(row);
    await this.audit.record(tx, {
      action,
      entityType: 'FederationInboxTask',
      entityId: row.id,
      details: {
        taskId: row.taskId,
        taskSha256: row.taskSha256,
        state: payload.state,
        reason: payload.reason,
        resultPayloadSha256: payloadSha256,
        aggregateSha256: payload.manifest.aggregateSha256,
      },
    });
    await this.queue.send(tx, FEDERATION_SUBMIT, { inboxTaskId: row.id });
  }

  // ---- the federation-submit job ---------------------------------------------------------------------------------

  /**
   * Delivers a settled result, signed afresh for this attempt (a retry is never a replay), and keeps the hub's
   * receipt once it verifies against the pinned key and names this result. A network failure or a receipt that does
   * not verify throws, so the queue retries with backoff; a hub that refuses the result for good ends the delivery.
   */
  async submitResult(inboxTaskId: string): Promise<'done' | 'skipped'> {
    const { site } = this.member();
    const ctx = systemContext('federation submit');
    const row = await this.db.repo(ctx, FederationInboxTask).findOneBy({ id: inboxTaskId });
    if (!row || !row.resultPayload || row.state === FederationInboxState.SUBMITTED || row.resultPayloadSha256 === null) return 'skipped';
    const client = this.hubClient;
    if (!client) return 'skipped';
    const identity = await this.identity();
    const envelope = signEnvelope(identity, {
      kind: EnvelopeKind.RESULT,
      signer: site,
      audience: HUB_SIGNER,
      payload: row.resultPayload as unknown as JsonValue,
    });
    await this.db.repo(ctx, FederationInboxTask).increment({ id: row.id }, 'deliveryAttempts', 1);
    const answer = await client.submitResult(envelope);
    if (!answer.accepted) {
      // The hub already holds this site's answer (an earlier attempt's reply was lost): nothing is left to deliver.
      // TASK_CANCELLED: the hub stopped the task (a federated inference job it cancelled); it takes no answer to it.
      if (answer.code === 'ALREADY_SETTLED' || answer.code === 'TASK_CANCELLED') {
        await this.db.repo(ctx, FederationInboxTask).update(
          { id: row.id },
          {
            state: FederationInboxState.SUBMITTED,
            detail: answer.code === 'ALREADY_SETTLED' ? 'the hub already held an answer' : 'the hub cancelled the task',
          },
        );
        return 'done';
      }
      throw new Error(`the hub did not accept the result: ${answer.code ?? 'no code'}`);
    }
    const receipt = verifyEnvelope<{ taskId: string; resultSha256: string }>(answer.receipt, {
      kind: EnvelopeKind.RECEIPT,
      audience: site,
      keys: this.hubKeys,
    });
    if (!receipt.ok) throw new Error(`the hub's receipt does not verify: ${receipt.code}`);
    const named = receipt.envelope.payload;
    if (named?.taskId !== row.taskId || (named.resultSha256 !== canonicalSha256(envelope) && named.resultSha256 !== envelope.payloadSha256)) {
      throw new Error('the hub’s receipt names another result');
    }
    await this.db.repo(ctx, FederationInboxTask).update({ id: row.id }, { state: FederationInboxState.SUBMITTED, receipt: receipt.envelope as never });
    await this.audit.record(ctx, {
      action: 'federation.receipt',
      entityType: 'FederationInboxTask',
      entityId: row.id,
      details: { taskId: row.taskId, resultPayloadSha256: row.resultPayloadSha256, receiptPayloadSha256: receipt.envelope.payloadSha256 },
    });
    return 'done';
  }

  /** A CLAIM for the long-poll, signed afresh each time (new nonce); `working` extends those tasks' leases. */
  makeClaim(identity: NodeIdentity, waitSeconds: number, working: string[]): SignedEnvelope {
    const { site } = this.member();
    return signEnvelope(identity, {
      kind: EnvelopeKind.CLAIM,
      signer: site,
      audience: HUB_SIGNER,
      payload: { site, maxTasks: 10, waitSeconds, facetVersion: FACET_VERSION, working },
    });
  }
}
