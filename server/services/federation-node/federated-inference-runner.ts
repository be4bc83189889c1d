import type { Db } from '../../db/transaction';
import { ErrorCode, FederationInboxState, isActiveJob, JobStatus, Modality, Role } from '../../domain';
import { FederatedInferenceRun, FederationInboxTask, InferenceJob, ModelVersion } from '../../entities';
import { AppError, conflict, notFound } from '../../errors/app-error';
import { canonicalSha256, type JsonValue } from '../../federation/canonical-json';
import { EnvelopeKind, signEnvelope, type SignedEnvelope } from '../../federation/envelope';
import {
  isFinalPhase,
  modelDownloadUrl,
  modelRequestAuthorization,
  type InferenceAggregate,
  type InferencePhase,
  type InferenceQuery,
  type ProgressPayload,
} from '../../federation/federated-inference';
import { HubRequestError, sleep, type HubClient } from '../../federation/hub-client';
import { FederationTaskKind, type ResultPayload, type TaskPayload } from '../../federation/protocol';
import type { ReleasePolicy } from '../../federation/release-policy';
import { sha256Of } from '../../storage/object-store';
import type { InferenceService } from '../inference-job/inference.service';
import type { ModelService } from '../model.service';
import { requireRole, systemContext, type RequestContext } from '../request-context';
import { FACET_VERSION, HUB_SIGNER, type FederatedInferenceHandler, type FederationNodeService } from './federation-node.service';

/** The largest model file a node downloads (the reference model is about 100 kB; a ResNet-50 about 100 MB). */
const MAX_MODEL_BYTES = 1024 * 1024 * 1024;

/** Progress refusals that a new signature would not change: the report is not sent again until the state changes. */
const PERMANENT_PROGRESS_REFUSALS: ReadonlySet<string> = new Set(['MALFORMED_PROGRESS', 'NOT_ADDRESSEE', 'UNKNOWN_TASK', 'TASK_HASH_MISMATCH']);

/** Codes a node sends for an INFERENCE task it does not run (docs/federation.md section 8). */
export const INFERENCE_REFUSALS = {
  /** The downloaded bytes are not the file the hub's signed task names. */
  MODEL_SHA256_MISMATCH: 'MODEL_SHA256_MISMATCH',
  /** The node's own registration refused the model (manifest, grading scheme, the dummy batch). */
  MODEL_MANIFEST_MISMATCH: 'MODEL_MANIFEST_MISMATCH',
  /** The node holds another file under the model's name and version. */
  MODEL_VERSION_CONFLICT: 'MODEL_VERSION_CONFLICT',
  /** The node's ENGINEER or ADMIN refused to run it. */
  REFUSED_BY_ENGINEER: 'REFUSED_BY_ENGINEER',
} as const;

/** What an engineer at the node sees of a federated inference task. */
export interface FederatedInferenceRunView {
  taskId: string;
  state: FederationInboxState;
  phase: InferencePhase;
  modelSha256: string;
  modelVersionId: string | null;
  inferenceJobId: string | null;
  reason: string | null;
  decidedBy: string | null;
}

/**
 * The node's side of federated inference. `prepare` (in the federation-compute job, after the policy's kind check)
 * downloads the task's model from the hub with a signed request over the outbound channel, refuses bytes whose
 * sha256 is not the one the hub's signed task names, registers them through the node's own registration (manifest
 * and grading-scheme checks, the dummy batch; a model the node already holds by that sha256 is reused, so a model's
 * identity at every node is its sha256), then holds the task for an ENGINEER or ADMIN when the policy wants manual
 * approval, or starts an ordinary inference job over the node's images. The relay (`relayOnce`, looping in the
 * worker) reports the job's counters to the hub in signed PROGRESS envelopes and settles the task when the job ends:
 * a SUCCEEDED result releases only the run's provenance (model sha256, execution provider, Facet version, counts);
 * the predictions stay here and feed the node's statistics (BINARY_COUNTS with the model's sha256 as rater).
 */
export class FederatedInferenceRunner implements FederatedInferenceHandler {
  private relay: { controller: AbortController; done: Promise<void> } | null = null;

  constructor(
    private readonly db: Db,
    private readonly node: FederationNodeService,
    private readonly models: ModelService,
    private readonly inference: InferenceService,
    private readonly hubClient: Pick<HubClient, 'fetchModel' | 'reportProgress'> | null,
  ) {}

  // ---- the compute job's side ------------------------------------------------------------------------------------

  async prepare(tx: RequestContext, row: FederationInboxTask, payload: TaskPayload, policy: ReleasePolicy): Promise<void> {
    const query = inferenceQueryOf(payload.query);
    if (!query)
      return this.node.answer(tx, row, { state: 'FAILED', reason: 'BAD_QUERY', detail: 'the INFERENCE task does not name a model, manifest and modalities' });
    const bytes = await this.download(row, query);
    if (bytes === null) return this.node.answer(tx, row, { state: 'FAILED', reason: 'MODEL_UNAVAILABLE', detail: 'the hub refused the model download' });
    const sha256 = await sha256Of(bytes);
    if (sha256 !== query.model.sha256) {
      return this.node.answer(tx, row, {
        state: 'REFUSED',
        reason: INFERENCE_REFUSALS.MODEL_SHA256_MISMATCH,
        detail: `the downloaded bytes hash to ${sha256}, not the ${query.model.sha256} the hub's signed task names`,
      });
    }
    const registered = await this.register(tx, bytes, query);
    if (typeof registered === 'string')
      return this.node.answer(tx, row, { state: 'REFUSED', reason: registered, detail: `registration refused the model (${registered})` });
    const run = await this.db
      .repo(tx, FederatedInferenceRun)
      .save(this.db.repo(tx, FederatedInferenceRun).create({ inboxTaskId: row.id, modelSha256: sha256, modelVersionId: registered.id }));
    row.provenance = { splitVersionId: null, modelSha256: sha256, referenceSnapshotSha256: null };
    if (policy.manualApproval) {
      row.state = FederationInboxState.HELD;
      await this.db.repo(tx, FederationInboxTask).save(row);
      return;
    }
    await this.db.repo(tx, FederationInboxTask).save(row);
    await this.startJob(tx, run, query);
  }

  /** The model's bytes from the hub, or null when the hub refuses the download for good (a 4xx); other failures throw (the job retries). */
  private async download(row: FederationInboxTask, query: InferenceQuery): Promise<Buffer | null> {
    if (!this.hubClient || !this.node.options) throw new Error('this node is not a federation member');
    const identity = await this.node.identity();
    const request = signEnvelope(identity, {
      kind: EnvelopeKind.MODEL_REQUEST,
      signer: this.node.options.site,
      audience: HUB_SIGNER,
      payload: { site: this.node.options.site, taskId: row.taskId, modelSha256: query.model.sha256 },
    });
    try {
      const url = modelDownloadUrl(this.node.options.hubUrl, query.model.sha256);
      return await this.hubClient.fetchModel(url, modelRequestAuthorization(request), MAX_MODEL_BYTES);
    } catch (error) {
      const status = error instanceof HubRequestError ? error.details.status : undefined;
      if (status !== undefined && status >= 400 && status < 500 && status !== 429) return null;
      throw error;
    }
  }

  /** This node's model version of those bytes: the one it holds by sha256, or one registered now; else a refusal code. */
  private async register(tx: RequestContext, bytes: Buffer, query: InferenceQuery): Promise<ModelVersion | string> {
    const held = await this.db.repo(tx, ModelVersion).findOneBy({ sha256: query.model.sha256 });
    if (held) return held;
    try {
      return await this.models.registerModelVersion(tx, bytes, query.manifest);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      const code = error.extensions.code;
      if (code === ErrorCode.CONFLICT) return INFERENCE_REFUSALS.MODEL_VERSION_CONFLICT;
      if (code === ErrorCode.MODEL_MANIFEST_MISMATCH || code === ErrorCode.BAD_USER_INPUT) return INFERENCE_REFUSALS.MODEL_MANIFEST_MISMATCH;
      throw error;
    }
  }

  private async startJob(tx: RequestContext, run: FederatedInferenceRun, query: InferenceQuery): Promise<void> {
    const modalities = query.modalities.filter((m): m is Modality => (Object.values(Modality) as string[]).includes(m));
    const job = await this.inference.startInferenceJob(tx, { modelVersionId: run.modelVersionId as string, modalities });
    run.inferenceJobId = job.id;
    await this.db.repo(tx, FederatedInferenceRun).save(run);
  }

  // ---- the engineer's decision -----------------------------------------------------------------------------------

  /** Runs a held model (ENGINEER or ADMIN); the policy's kinds are checked again, since it may have changed meanwhile. */
  async approve(ctx: RequestContext, taskId: string): Promise<FederatedInferenceRunView> {
    const by = this.decider(ctx);
    await this.db.transaction(ctx, async (tx) => {
      const { row, run } = await this.lockHeld(tx, taskId);
      row.decidedBy = by;
      const policy = await this.node.currentPolicy(tx);
      if (!policy.taskKinds.includes(FederationTaskKind.INFERENCE)) {
        await this.node.answer(tx, row, { state: 'REFUSED', reason: 'TASK_KIND_NOT_ALLOWED', detail: 'this node no longer runs INFERENCE tasks' });
        return;
      }
      row.state = FederationInboxState.COMPUTING;
      await this.db.repo(tx, FederationInboxTask).save(row);
      const query = inferenceQueryOf((row.taskEnvelope as unknown as SignedEnvelope<TaskPayload>).payload.query) as InferenceQuery;
      await this.startJob(tx, run, query);
    });
    return this.getRun(ctx, taskId);
  }

  /** Refuses a held model: REFUSED (REFUSED_BY_ENGINEER) goes to the hub; the note stays here. */
  async refuse(ctx: RequestContext, taskId: string, note: string): Promise<FederatedInferenceRunView> {
    const by = this.decider(ctx);
    if (note.length > 2000) throw new AppError(ErrorCode.BAD_USER_INPUT, 'The reason is at most 2000 characters', { field: 'reason' });
    await this.db.transaction(ctx, async (tx) => {
      const { row } = await this.lockHeld(tx, taskId);
      row.decidedBy = by;
      await this.node.answer(tx, row, { state: 'REFUSED', reason: INFERENCE_REFUSALS.REFUSED_BY_ENGINEER, detail: note });
    });
    return this.getRun(ctx, taskId);
  }

  async listRuns(ctx: RequestContext): Promise<FederatedInferenceRunView[]> {
    requireRole(ctx, Role.ENGINEER);
    const rows = await this.db.repo(ctx, FederationInboxTask).find({ where: { kind: FederationTaskKind.INFERENCE }, order: { createdAt: 'DESC' }, take: 200 });
    return Promise.all(rows.map((row) => this.viewOf(ctx, row)));
  }

  async getRun(ctx: RequestContext, taskId: string): Promise<FederatedInferenceRunView> {
    requireRole(ctx, Role.ENGINEER);
    const row = await this.db.repo({ ...ctx, manager: undefined }, FederationInboxTask).findOneBy({ taskId, kind: FederationTaskKind.INFERENCE });
    if (!row) throw notFound('FederatedInferenceRun', taskId);
    return this.viewOf({ ...ctx, manager: undefined }, row);
  }

  private decider(ctx: RequestContext): string {
    const actor = requireRole(ctx, Role.ENGINEER);
    return `${actor.name} (${actor.role}${actor.tokenId ? ` token ${actor.tokenId}` : ''})`;
  }

  private async lockHeld(tx: RequestContext, taskId: string): Promise<{ row: FederationInboxTask; run: FederatedInferenceRun }> {
    const row = await this.db
      .repo(tx, FederationInboxTask)
      .findOne({ where: { taskId, kind: FederationTaskKind.INFERENCE }, lock: { mode: 'pessimistic_write' } });
    if (!row) throw notFound('FederatedInferenceRun', taskId);
    if (row.state !== FederationInboxState.HELD) throw conflict(`Task ${taskId} is ${row.state}, not held for approval`, { state: row.state });
    const run = await this.db.repo(tx, FederatedInferenceRun).findOneByOrFail({ inboxTaskId: row.id });
    return { row, run };
  }

  private async viewOf(ctx: RequestContext, row: FederationInboxTask): Promise<FederatedInferenceRunView> {
    const run = await this.db.repo(ctx, FederatedInferenceRun).findOneBy({ inboxTaskId: row.id });
    const job = run?.inferenceJobId ? await this.db.repo(ctx, InferenceJob).findOneBy({ id: run.inferenceJobId }) : null;
    const query = inferenceQueryOf((row.taskEnvelope as unknown as SignedEnvelope<TaskPayload>).payload.query);
    return {
      taskId: row.taskId,
      state: row.state,
      phase: phaseOf(row, job),
      modelSha256: run?.modelSha256 ?? query?.model.sha256 ?? '',
      modelVersionId: run?.modelVersionId ?? null,
      inferenceJobId: run?.inferenceJobId ?? null,
      reason: row.reason,
      decidedBy: row.decidedBy,
    };
  }

  // ---- cancellation from the hub -----------------------------------------------------------------------------------

  /**
   * Stops the jobs of tasks the hub cancelled: a running job is cancelled (its runner stops before its next batch
   * writes), a held or preparing task ends too; each ends FAILED (CANCELLED), which the relay reports to the hub.
   */
  async cancel(taskIds: string[]): Promise<void> {
    const ctx = systemContext('federation cancel');
    for (const taskId of taskIds) {
      await this.db.transaction(ctx, async (tx) => {
        const row = await this.db
          .repo(tx, FederationInboxTask)
          .findOne({ where: { taskId, kind: FederationTaskKind.INFERENCE }, lock: { mode: 'pessimistic_write' } });
        if (!row || ![FederationInboxState.RECEIVED, FederationInboxState.COMPUTING, FederationInboxState.HELD].includes(row.state)) return;
        const run = await this.db.repo(tx, FederatedInferenceRun).findOneBy({ inboxTaskId: row.id });
        const job = run?.inferenceJobId ? await this.db.repo(tx, InferenceJob).findOneBy({ id: run.inferenceJobId }) : null;
        if (job && isActiveJob(job.status)) await this.inference.cancelJob(tx, job.id);
        await this.node.answer(tx, row, { state: 'FAILED', reason: 'CANCELLED', detail: 'cancelled at the hub' });
      });
    }
  }

  // ---- the relay: progress to the hub, results when jobs end -------------------------------------------------------

  /** Starts relaying in this process (the worker): every `intervalMs`, until stopped. */
  startRelay(intervalMs = 500, onError: (error: unknown) => void = () => undefined): void {
    if (this.relay || !this.hubClient || !this.node.options) return;
    const controller = new AbortController();
    const done = (async () => {
      while (!controller.signal.aborted) {
        await this.relayOnce(onError).catch(onError);
        await sleep(intervalMs, controller.signal);
      }
    })();
    this.relay = { controller, done };
  }

  async stopRelay(): Promise<void> {
    this.relay?.controller.abort();
    await this.relay?.done;
    this.relay = null;
  }

  /**
   * One pass: settles tasks whose job ended (SUCCEEDED: the provenance released; FAILED, or cancelled here: FAILED
   * with a code), then sends each open task's state to the hub when it changed since the last report the hub
   * accepted. Several workers may relay at once: settling locks the inbox row, and the hub keeps the highest sequence.
   */
  async relayOnce(
    onError: (error: unknown) => void = (error) => {
      throw error;
    },
  ): Promise<void> {
    const ctx = systemContext('federation inference relay');
    const open = await this.db.repo(ctx, FederatedInferenceRun).find({ where: { closed: false }, order: { createdAt: 'ASC' }, take: 100 });
    // One task's trouble (the hub unreachable, a refused report) does not hold up the others.
    for (const run of open) await this.relayRun(ctx, run).catch(onError);
  }

  private async relayRun(ctx: RequestContext, run: FederatedInferenceRun): Promise<void> {
    await this.settleIfEnded(run);
    const row = await this.db.repo(ctx, FederationInboxTask).findOneByOrFail({ id: run.inboxTaskId });
    const job = run.inferenceJobId ? await this.db.repo(ctx, InferenceJob).findOneBy({ id: run.inferenceJobId }) : null;
    const report = reportOf(row, job);
    const final = isFinalPhase(report.phase);
    if (run.reported && sameReport(run.reported, report)) {
      if (final) await this.db.repo(ctx, FederatedInferenceRun).update(run.id, { closed: true });
      return;
    }
    const [[{ sequence }]] = await this.db
      .manager(ctx)
      .query(`UPDATE federated_inference_run SET sequence = sequence + 1, updated_at = now() WHERE id = $1 RETURNING sequence`, [run.id]);
    const payload: ProgressPayload = { taskId: row.taskId, taskSha256: row.taskSha256, site: this.node.options!.site, sequence, ...report };
    const envelope = signEnvelope(await this.node.identity(), { kind: EnvelopeKind.PROGRESS, signer: payload.site, audience: HUB_SIGNER, payload });
    const answer = await this.hubClient!.reportProgress(envelope);
    const { elapsedSeconds: _elapsed, ...compared } = report;
    // A refusal for good (the hub does not know the task, or not from this node) is not sent again until the state
    // changes; the task still settles when its job ends. An envelope refusal (a clock out of the window) is retried.
    const settled = answer.accepted || PERMANENT_PROGRESS_REFUSALS.has(answer.code ?? '');
    if (settled) await this.db.repo(ctx, FederatedInferenceRun).update(run.id, { reported: compared as never, closed: final });
    if (!answer.accepted) throw new Error(`the hub refused a progress report of task ${row.taskId}: ${answer.code ?? 'no code'}`);
  }

  /** A job that ended settles its inbox task once (under the row's lock, so two relays never both do). */
  private async settleIfEnded(run: FederatedInferenceRun): Promise<void> {
    if (!run.inferenceJobId) return;
    await this.db.transaction(systemContext('federation inference settle'), async (tx) => {
      const row = await this.db.repo(tx, FederationInboxTask).findOne({ where: { id: run.inboxTaskId }, lock: { mode: 'pessimistic_write' } });
      if (!row || row.state !== FederationInboxState.COMPUTING) return;
      const job = await this.db.repo(tx, InferenceJob).findOneByOrFail({ id: run.inferenceJobId as string });
      if (job.status === JobStatus.SUCCEEDED) {
        const aggregate: InferenceAggregate = {
          modelSha256: run.modelSha256,
          executionProvider: job.provider ?? 'cpu',
          facetVersion: FACET_VERSION,
          job: { status: job.status, total: job.total, done: job.done, failed: job.failed },
        };
        await this.node.release(tx, row, aggregate as unknown as JsonValue, canonicalSha256(aggregate));
      } else if (job.status === JobStatus.FAILED) {
        await this.node.answer(tx, row, { state: 'FAILED', reason: 'INFERENCE_FAILED', detail: (job.error ?? 'the job failed').slice(0, 500) });
      } else if (job.status === JobStatus.CANCELLED) {
        await this.node.answer(tx, row, { state: 'FAILED', reason: 'CANCELLED', detail: 'the job was cancelled at this node' });
      }
    });
  }
}

/** The INFERENCE query as the hub's signed task states it, or null when it is not one. */
export function inferenceQueryOf(raw: unknown): InferenceQuery | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const query = raw as Partial<InferenceQuery>;
  const model = query.model;
  if (!model || typeof model !== 'object' || typeof model.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(model.sha256)) return null;
  if (typeof model.name !== 'string' || typeof model.version !== 'string') return null;
  if (!query.manifest || typeof query.manifest !== 'object' || Array.isArray(query.manifest)) return null;
  if (!Array.isArray(query.modalities) || query.modalities.some((m) => typeof m !== 'string')) return null;
  return query as InferenceQuery;
}

/** Where a task stands at this node, from its inbox row and its job. */
function phaseOf(row: FederationInboxTask, job: InferenceJob | null): InferencePhase {
  const result = row.resultPayload as ResultPayload | null;
  if (result) {
    if (result.state === 'SUCCEEDED') return 'FINISHED';
    if (result.state === 'REFUSED') return 'REFUSED';
    return result.reason === 'CANCELLED' ? 'CANCELLED' : 'FAILED';
  }
  if (row.state === FederationInboxState.HELD) return 'APPROVING';
  return job?.status === JobStatus.RUNNING ? 'RUNNING' : 'QUEUED';
}

/** A report's content (the payload without its task, site and sequence). */
interface Report {
  phase: InferencePhase;
  total: number;
  done: number;
  failed: number;
  elapsedSeconds: number;
  executionProvider: string | null;
}

function reportOf(row: FederationInboxTask, job: InferenceJob | null): Report {
  const started = job?.startedAt?.getTime() ?? null;
  const until = job?.finishedAt?.getTime() ?? Date.now();
  return {
    phase: phaseOf(row, job),
    total: job?.total ?? 0,
    done: job?.done ?? 0,
    failed: job?.failed ?? 0,
    elapsedSeconds: started === null ? 0 : Math.max(0, (until - started) / 1000),
    executionProvider: job?.provider ?? null,
  };
}

const sameReport = (reported: Record<string, unknown>, report: Report): boolean =>
  ['phase', 'total', 'done', 'failed', 'executionProvider'].every((k) => reported[k] === report[k as keyof Report]);
