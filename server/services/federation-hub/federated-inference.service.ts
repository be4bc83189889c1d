import { In } from 'typeorm';
import type { Db } from '../../db/transaction';
import { ErrorCode, FederatedInferenceSiteState, FederatedQueryKind, FederatedQueryStatus, FederationSiteTaskState, Role } from '../../domain';
import { FederatedInferenceProgress, FederationResult, FederationSiteTask, FederationTask, ModelVersion } from '../../entities';
import { AppError, badInput, forbidden } from '../../errors/app-error';
import { canonicalSha256, type JsonValue } from '../../federation/canonical-json';
import { acceptEnvelope, EnvelopeKind } from '../../federation/envelope';
import {
  envelopeFromAuthorization,
  inferenceTotal,
  isInferenceAggregate,
  parseProgressPayload,
  rateAndEta,
  siteInferenceState,
  type InferencePhase,
  type InferenceQuery,
  type ModelRequestPayload,
  type SiteInferenceFacts,
} from '../../federation/federated-inference';
import { FederationTaskKind, type ResultPayload, type TaskPayload } from '../../federation/protocol';
import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { FEDERATED_QUERY_CHANGED, FEDERATION_TASK_QUEUED } from '../../pubsub/topics';
import { FEDERATION_DEADLINE } from '../../queue/job-catalogue';
import type { JobQueue } from '../../queue/job-queue';
import type { ObjectStore } from '../../storage/object-store';
import type { AuditService } from '../audit.service';
import { requireRole, type RequestContext } from '../request-context';
import { HUB_AUDIENCE, requireHub, type Hub } from './hub-registry';
import { statusOf } from './task-status';

export interface StartFederatedInference {
  modelVersionId: string;
  /** Registry codes; empty or absent: every member. */
  sites?: string[] | null;
  /** Modalities each node runs; empty or absent: every modality the manifest preprocesses. */
  modalities?: string[] | null;
  deadlineSeconds?: number | null;
}

/** What a site's signed SUCCEEDED result says about its run: the provenance of its predictions. */
export interface SiteInferenceResultView {
  modelSha256: string;
  executionProvider: string;
  facetVersion: string;
  total: number;
  done: number;
  failed: number;
  /** sha256 of the site's signed result envelope as the hub stored it. */
  resultSha256: string;
}

/** One row of the live view: a site, where it stands, and its job's counters (0 until the node reports). */
export interface SiteInferenceView {
  site: string;
  state: FederatedInferenceSiteState;
  total: number;
  done: number;
  failed: number;
  /** Images a second, from the node's counters and elapsed time; null before the first image. */
  rate: number | null;
  etaSeconds: number | null;
  executionProvider: string | null;
  /** The site's refusal or failure code (MODEL_SHA256_MISMATCH, REFUSED_BY_ENGINEER, CANCELLED, SITE_UNAVAILABLE…). */
  reason: string | null;
  /** When the hub last heard from the site about this job (a report or its result); null: never. */
  updatedAt: Date | null;
  result: SiteInferenceResultView | null;
}

export interface FederatedInferenceView {
  id: string;
  status: FederatedQueryStatus;
  model: { sha256: string; name: string; version: string; bytes: number };
  modalities: string[];
  requestedBy: string;
  createdAt: Date;
  deadline: Date;
  sites: SiteInferenceView[];
  total: ReturnType<typeof inferenceTotal>;
}

/** A model download the hub allows: the bytes of the task's model, from the object store. */
export interface ModelDownload {
  sha256: string;
  bytes: Buffer;
}

const SHA256 = /^[0-9a-f]{64}$/;
const MAX_DEADLINE_SECONDS = 30 * 86_400;
/** An inference job runs for hours on a large archive: a week unless the engineer says otherwise. */
const DEFAULT_DEADLINE_SECONDS = 7 * 86_400;

/**
 * Federated inference at the hub: "weights move, data stays". An ENGINEER starts one INFERENCE task per site for a
 * model version the hub holds (its ONNX bytes by sha256 and its manifest); each node claims it over its usual
 * long-poll, downloads the bytes with a signed request, registers and runs them under its own policy, and reports
 * its job's counters in signed PROGRESS envelopes, which this service keeps (the latest per site) and relays to
 * `federatedJobProgress` subscribers. Claims, results, receipts, deadlines and cancellation delivery are the
 * federation's ordinary transport (federation-hub.service.ts).
 */
export class FederatedInferenceService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly queue: JobQueue,
    private readonly pubSub: PostgresPubSub,
    private readonly hub: Hub | null,
    private readonly objects: ObjectStore,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async startInference(ctx: RequestContext, input: StartFederatedInference): Promise<FederatedInferenceView> {
    const actor = requireRole(ctx, Role.ENGINEER);
    const registry = await requireHub(this.hub).registry();
    const model = await this.db.getEntityOrThrow(ctx, ModelVersion, input.modelVersionId);
    if (!model.sha256 || !model.manifest)
      throw badInput('This model version has no ONNX file at the hub (its predictions are imported)', { field: 'modelVersionId' });
    if (!(await this.objects.has(model.sha256)))
      throw new AppError(ErrorCode.NOT_FOUND, `The hub has no file for model ${model.sha256}`, { sha256: model.sha256 });
    const members = registry.sites.map((s) => s.code);
    const sites = input.sites && input.sites.length > 0 ? [...new Set(input.sites)].sort() : members;
    const unknown = sites.filter((s) => !members.includes(s));
    if (unknown.length > 0) throw badInput(`Not members of this hub: ${unknown.join(', ')}`, { sites: unknown });
    if (sites.length === 0) throw badInput('This hub has no member sites (facet site add)');
    const deadlineSeconds = input.deadlineSeconds ?? DEFAULT_DEADLINE_SECONDS;
    if (!Number.isInteger(deadlineSeconds) || deadlineSeconds < 1 || deadlineSeconds > MAX_DEADLINE_SECONDS)
      throw badInput('deadlineSeconds must be from 1 to 2592000 (30 days)');
    const preprocessed = Object.keys((model.manifest as { preprocessing?: object }).preprocessing ?? {});
    const modalities = [...new Set(input.modalities ?? [])].sort();
    const missing = modalities.filter((m) => !preprocessed.includes(m));
    if (missing.length > 0) throw badInput(`The manifest has no preprocessing for ${missing.join(', ')}`, { modalities: missing });
    const bytes = (await this.objects.read(model.sha256)).length;
    const query: InferenceQuery = {
      model: { sha256: model.sha256, name: model.name, version: model.version, bytes },
      manifest: model.manifest as { [field: string]: JsonValue },
      modalities,
    };
    const deadline = new Date(this.clock().getTime() + deadlineSeconds * 1000);
    const id = await this.db.transaction(ctx, async (tx) => {
      const task = await this.db.repo(tx, FederationTask).save(
        this.db.repo(tx, FederationTask).create({
          kind: FederatedQueryKind.INFERENCE,
          query,
          querySha256: canonicalSha256(query),
          requestedByTokenId: actor.tokenId,
          requestedBy: actor.name,
          // Each site's job stands alone: there is nothing pooled that k of n would protect.
          minSites: 1,
          deadline,
        }),
      );
      for (const site of sites) {
        const payload: TaskPayload = { taskId: task.id, kind: FederationTaskKind.INFERENCE, site, query, deadline: deadline.toISOString(), minSites: 1, sites };
        await this.db.repo(tx, FederationSiteTask).insert({ taskId: task.id, site, payload, taskSha256: canonicalSha256(payload) });
        await this.pubSub.publish(FEDERATION_TASK_QUEUED, site, { taskId: task.id }, this.db.manager(tx));
      }
      await this.queue.send(tx, FEDERATION_DEADLINE, { taskId: task.id }, { startAfter: deadline });
      await this.audit.record(tx, {
        action: 'startFederatedInference',
        entityType: 'FederationTask',
        entityId: task.id,
        details: { modelVersionId: model.id, modelSha256: model.sha256, sites, modalities },
      });
      return task.id;
    });
    return this.getInference(ctx, id);
  }

  async getInference(ctx: RequestContext, id: string): Promise<FederatedInferenceView> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    requireHub(this.hub);
    return this.viewOf(ctx, await this.inferenceTask(ctx, id));
  }

  async listInferences(ctx: RequestContext, limit = 50): Promise<FederatedInferenceView[]> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    requireHub(this.hub);
    const tasks = await this.db
      .repo(ctx, FederationTask)
      .find({ where: { kind: FederatedQueryKind.INFERENCE }, order: { createdAt: 'DESC', id: 'ASC' }, take: Math.max(1, Math.min(500, limit)) });
    return Promise.all(tasks.map((task) => this.viewOf(ctx, task)));
  }

  /**
   * The job at once, then after every change from any site: a progress report, a result, the deadline, a
   * cancellation (each publishes FEDERATED_QUERY_CHANGED with the task id; every event re-reads the rows).
   */
  async *watchInference(ctx: RequestContext, id: string): AsyncGenerator<FederatedInferenceView> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    const events = this.pubSub.subscribe(FEDERATED_QUERY_CHANGED, id);
    yield await this.getInference(ctx, id);
    for await (const event of events) yield await this.getInference(ctx, event.taskId);
  }

  /**
   * Stops the job everywhere: open site-tasks expire (CANCELLED); each site that claimed its task hears so in the
   * answer to its next claim, and a site whose long-poll is pending hears it now (the claim is woken).
   */
  async cancelInference(ctx: RequestContext, id: string): Promise<FederatedInferenceView> {
    requireRole(ctx, Role.ENGINEER);
    requireHub(this.hub);
    await this.db.transaction(ctx, async (tx) => {
      const task = await this.db
        .manager(tx)
        .getRepository(FederationTask)
        .findOne({ where: { id, kind: FederatedQueryKind.INFERENCE }, lock: { mode: 'pessimistic_write' } });
      if (!task) throw new AppError(ErrorCode.NOT_FOUND, `Federated inference ${id} was not found`, { entity: 'FederatedInference', id });
      const status = statusOf(task, await this.db.repo(tx, FederationSiteTask).findBy({ taskId: id }), this.clock());
      if (status !== FederatedQueryStatus.RUNNING) throw new AppError(ErrorCode.JOB_NOT_CANCELLABLE, `Federated inference ${id} is ${status}`);
      await this.db.repo(tx, FederationTask).update(task.id, { status: FederatedQueryStatus.CANCELLED });
      await this.db
        .repo(tx, FederationSiteTask)
        .update(
          { taskId: task.id, state: In([FederationSiteTaskState.QUEUED, FederationSiteTaskState.CLAIMED]) },
          { state: FederationSiteTaskState.EXPIRED, reason: 'CANCELLED', settledAt: this.clock(), leaseUntil: null },
        );
      for (const siteTask of await this.db.repo(tx, FederationSiteTask).findBy({ taskId: task.id })) {
        if (siteTask.claimedAt) await this.pubSub.publish(FEDERATION_TASK_QUEUED, siteTask.site, { taskId: task.id }, this.db.manager(tx));
      }
      await this.audit.record(tx, { action: 'cancelFederatedInference', entityType: 'FederationTask', entityId: task.id });
      await this.pubSub.publish(FEDERATED_QUERY_CHANGED, task.id, { taskId: task.id }, this.db.manager(tx));
    });
    return this.getInference(ctx, id);
  }

  /**
   * A node's signed PROGRESS report (no bearer token: the envelope authenticates it). Refused with a code, writing
   * nothing: an envelope check code, MALFORMED_PROGRESS, NOT_ADDRESSEE, UNKNOWN_TASK, TASK_HASH_MISMATCH. A report
   * older than the one held (a lower sequence) is accepted and changes nothing.
   */
  async receiveProgress(ctx: RequestContext, raw: unknown): Promise<{ accepted: boolean; code: string | null; receipt: null }> {
    const hub = requireHub(this.hub);
    const registry = await hub.registry();
    const refused = (code: string) => ({ accepted: false, code, receipt: null });
    const checked = await acceptEnvelope(raw, { kind: EnvelopeKind.PROGRESS, audience: HUB_AUDIENCE, keys: registry.signingKeyOf, replay: hub.replay });
    if (!checked.ok) return refused(checked.code);
    await hub.pruneNonces();
    const progress = parseProgressPayload(checked.envelope.payload);
    if (!progress) return refused('MALFORMED_PROGRESS');
    if (progress.site !== checked.envelope.signer) return refused('NOT_ADDRESSEE');
    const task = await this.db.repo(ctx, FederationTask).findOneBy({ id: progress.taskId, kind: FederatedQueryKind.INFERENCE });
    if (!task) return refused('UNKNOWN_TASK');
    const siteTask = await this.db.repo(ctx, FederationSiteTask).findOneBy({ taskId: task.id, site: progress.site });
    if (!siteTask) return refused('NOT_ADDRESSEE');
    if (siteTask.taskSha256 !== progress.taskSha256) return refused('TASK_HASH_MISMATCH');
    await this.db.transaction(ctx, async (tx) => {
      await this.db.manager(tx).query(
        `INSERT INTO federated_inference_progress (task_id, site, sequence, phase, total, done, failed, elapsed_seconds, execution_provider, payload_sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (task_id, site) DO UPDATE SET sequence = EXCLUDED.sequence, phase = EXCLUDED.phase, total = EXCLUDED.total, done = EXCLUDED.done,
           failed = EXCLUDED.failed, elapsed_seconds = EXCLUDED.elapsed_seconds, execution_provider = EXCLUDED.execution_provider,
           payload_sha256 = EXCLUDED.payload_sha256, updated_at = now()
         WHERE federated_inference_progress.sequence < EXCLUDED.sequence`,
        [
          task.id,
          progress.site,
          progress.sequence,
          progress.phase,
          progress.total,
          progress.done,
          progress.failed,
          progress.elapsedSeconds,
          progress.executionProvider,
          checked.envelope.payloadSha256,
        ],
      );
      await this.pubSub.publish(FEDERATED_QUERY_CHANGED, task.id, { taskId: task.id }, this.db.manager(tx));
    });
    return { accepted: true, code: null, receipt: null };
  }

  /**
   * Checks a model download's signed MODEL_REQUEST (in its Authorization header): a registered site, for a task of
   * kind INFERENCE it has claimed and that is still running, naming that task's model. UNAUTHENTICATED for an
   * envelope that does not verify, FORBIDDEN for a request the site may not make, NOT_FOUND when the file is gone.
   */
  async authorizeModelDownload(ctx: RequestContext, authorization: string | undefined, sha256: string): Promise<ModelDownload> {
    const hub = requireHub(this.hub);
    const registry = await hub.registry();
    const raw = envelopeFromAuthorization(authorization);
    if (raw === null) throw new AppError(ErrorCode.UNAUTHENTICATED, 'A model download needs a signed model request (Authorization: Facet-Envelope …)');
    const checked = await acceptEnvelope<ModelRequestPayload>(raw, {
      kind: EnvelopeKind.MODEL_REQUEST,
      audience: HUB_AUDIENCE,
      keys: registry.signingKeyOf,
      replay: hub.replay,
    });
    if (!checked.ok) throw new AppError(ErrorCode.UNAUTHENTICATED, `The model request was refused: ${checked.message}`, { reason: checked.code });
    const request = checked.envelope.payload;
    if (
      !request ||
      typeof request !== 'object' ||
      request.site !== checked.envelope.signer ||
      typeof request.taskId !== 'string' ||
      request.modelSha256 !== sha256
    )
      throw forbidden('The model request names another site or model than the one downloaded');
    if (!SHA256.test(sha256)) throw badInput('Not a sha256', { field: 'sha256' });
    const siteTask = await this.db.repo(ctx, FederationSiteTask).findOneBy({ taskId: request.taskId, site: request.site });
    const task = siteTask ? await this.db.repo(ctx, FederationTask).findOneBy({ id: siteTask.taskId, kind: FederatedQueryKind.INFERENCE }) : null;
    const named = task ? (task.query as InferenceQuery).model.sha256 : null;
    if (!siteTask || !task || siteTask.state !== FederationSiteTaskState.CLAIMED || task.status !== FederatedQueryStatus.RUNNING || named !== sha256)
      throw forbidden('Only a site holding a running INFERENCE task may download that task’s model');
    if (!(await this.objects.has(sha256))) throw new AppError(ErrorCode.NOT_FOUND, `The hub has no file for model ${sha256}`, { sha256 });
    // Audited as the site: the signed request is its authentication (there is no token behind it).
    const asSite: RequestContext = {
      ...ctx,
      actor: { tokenId: null, name: `federation site ${request.site}`, role: Role.HUB, siteId: null, readerId: null, readerRole: null },
    };
    await this.audit.record(asSite, {
      action: 'federation.model.download',
      entityType: 'FederationTask',
      entityId: task.id,
      details: { site: request.site, sha256 },
    });
    return { sha256, bytes: await this.objects.read(sha256) };
  }

  private async inferenceTask(ctx: RequestContext, id: string): Promise<FederationTask> {
    const task = await this.db.repo(ctx, FederationTask).findOneBy({ id, kind: FederatedQueryKind.INFERENCE });
    if (!task) throw new AppError(ErrorCode.NOT_FOUND, `Federated inference ${id} was not found`, { entity: 'FederatedInference', id });
    return task;
  }

  private async viewOf(ctx: RequestContext, task: FederationTask): Promise<FederatedInferenceView> {
    const siteTasks = await this.db.repo(ctx, FederationSiteTask).find({ where: { taskId: task.id }, order: { site: 'ASC' } });
    const reports = new Map((await this.db.repo(ctx, FederatedInferenceProgress).findBy({ taskId: task.id })).map((p) => [p.site, p]));
    const results = new Map((await this.db.repo(ctx, FederationResult).findBy({ taskId: task.id })).map((r) => [r.site, r]));
    const cancelled = task.status === FederatedQueryStatus.CANCELLED;
    const sites = siteTasks.map((siteTask): SiteInferenceView => {
      const report = reports.get(siteTask.site) ?? null;
      const result = results.get(siteTask.site) ?? null;
      const facts: SiteInferenceFacts = {
        siteTaskState: siteTask.state as SiteInferenceFacts['siteTaskState'],
        reason: siteTask.reason,
        taskCancelled: cancelled,
        phase: (report?.phase as InferencePhase | undefined) ?? null,
      };
      const state = siteInferenceState(facts) as FederatedInferenceSiteState;
      const aggregate = result ? (result.envelope as { payload: ResultPayload }).payload.aggregate : null;
      const released = result?.state === 'SUCCEEDED' && isInferenceAggregate(aggregate) ? aggregate : null;
      // The signed result's counts are the site's last word; until it arrives, the latest report's.
      const counts = released ? released.job : (report ?? { total: 0, done: 0, failed: 0 });
      const { rate, etaSeconds } = report ? rateAndEta({ ...counts, elapsedSeconds: report.elapsedSeconds }) : { rate: null, etaSeconds: null };
      const heard = [report?.updatedAt, result?.createdAt].filter((d): d is Date => d instanceof Date);
      return {
        site: siteTask.site,
        state,
        total: counts.total,
        done: counts.done,
        failed: counts.failed,
        rate: state === FederatedInferenceSiteState.RUNNING || state === FederatedInferenceSiteState.FINISHED ? rate : null,
        etaSeconds: state === FederatedInferenceSiteState.RUNNING ? etaSeconds : state === FederatedInferenceSiteState.FINISHED ? 0 : null,
        executionProvider: released?.executionProvider ?? report?.executionProvider ?? null,
        reason: state === FederatedInferenceSiteState.FINISHED ? null : siteTask.reason,
        updatedAt: heard.length > 0 ? new Date(Math.max(...heard.map((d) => d.getTime()))) : null,
        result: released
          ? {
              modelSha256: released.modelSha256,
              executionProvider: released.executionProvider,
              facetVersion: released.facetVersion,
              total: released.job.total,
              done: released.job.done,
              failed: released.job.failed,
              resultSha256: (result as FederationResult).envelopeSha256,
            }
          : null,
      };
    });
    const query = task.query as InferenceQuery;
    return {
      id: task.id,
      status: statusOf(task, siteTasks, this.clock()),
      model: { sha256: query.model.sha256, name: query.model.name, version: query.model.version, bytes: query.model.bytes },
      modalities: query.modalities,
      requestedBy: task.requestedBy,
      createdAt: task.createdAt,
      deadline: task.deadline,
      sites,
      total: inferenceTotal(sites),
    };
  }
}
