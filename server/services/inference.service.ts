import type { Db } from '../db/transaction';
import { readPart10 } from '../dicom/reader';
import { ErrorCode, Role, type Modality, type PageRequest } from '../domain';
import { InferenceJob, JobStatus, ModelVersion, Prediction, type JobFailure } from '../entities';
import { AppError, badInput, notFound } from '../errors/app-error';
import type { ModelManifest } from '../inference/manifest';
import { decodeFrame, preprocess } from '../inference/pixels';
import { runBatch, type SessionCache } from '../inference/session-cache';
import type { JobQueue } from '../jobs/queue';
import type { PostgresPubSub } from '../pubsub/postgres-pubsub';
import type { ObjectStore } from '../storage/object-store';
import type { AuditService } from './audit.service';
import { argmax } from './model.service';
import { paginate, type Page } from './pagination';
import { requireRole, type RequestContext } from './request-context';
import { restrictToScope, whereIn } from './scope';

export const RUN_INFERENCE = 'run-inference';
export const JOB_PROGRESS = 'JOB_PROGRESS';
/** Failures kept on the job row with their reasons; the count goes on. */
const MAX_FAILURES_KEPT = 100;

export interface StartInferenceJob {
  modelVersionId: string;
  siteIds?: string[] | null;
  modalities?: Modality[] | null;
}

interface WorkItem {
  jointImageId: string;
  jointId: string;
  modality: Modality;
  frame: number;
  roiX: number;
  roiY: number;
  roiWidth: number;
  roiHeight: number;
  sha256: string;
}

/**
 * Inference jobs: started by a mutation (queued in PostgreSQL by pg-boss in the same transaction), run by any
 * worker in batches — decode, preprocess, one session.run per batch — each batch's predictions and counters
 * written in one transaction and announced by NOTIFY. Predictions are upserts per model x joint x modality x
 * feature, so a retried job never duplicates. Cancellation is honoured between batches.
 */
export class InferenceService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly objects: ObjectStore,
    private readonly queue: JobQueue,
    private readonly pubSub: PostgresPubSub,
    private readonly sessions: SessionCache,
    private readonly batchSize = 16,
  ) {}

  private async items(ctx: RequestContext, job: Pick<InferenceJob, 'scope'>, manifest: ModelManifest): Promise<WorkItem[]> {
    const modalities = Object.keys(manifest.preprocessing).filter((m) => !job.scope.modalities.length || job.scope.modalities.includes(m));
    const qb = this.db.dataSource
      .createQueryBuilder()
      .from('joint_image', 'ji')
      .innerJoin('instance', 'i', 'i.id = ji.instance_id')
      .innerJoin('series', 'se', 'se.id = i.series_id')
      .innerJoin('joint', 'j', 'j.id = ji.joint_id')
      .innerJoin('patient', 'patient', 'patient.id = j.patient_id')
      .select([
        'DISTINCT ON (ji.joint_id, se.modality) ji.id AS "jointImageId"',
        'ji.joint_id AS "jointId"',
        'se.modality AS "modality"',
        'ji.frame AS "frame"',
        'ji.roi_x AS "roiX"',
        'ji.roi_y AS "roiY"',
        'ji.roi_width AS "roiWidth"',
        'ji.roi_height AS "roiHeight"',
        'i.sha256 AS "sha256"',
      ])
      .orderBy('ji.joint_id')
      .addOrderBy('se.modality')
      .addOrderBy('ji.id');
    restrictToScope(qb, ctx, 'patient.site_id');
    whereIn(qb, 'patient.site_id', job.scope.siteIds.length ? job.scope.siteIds : null);
    whereIn(qb, 'se.modality', modalities);
    return (await qb.getRawMany<WorkItem>()).map((w) => ({ ...w, sha256: w.sha256.trim() }));
  }

  private async onnxModel(ctx: RequestContext, id: string): Promise<ModelVersion & { manifest: ModelManifest; sha256: string }> {
    const model = await this.db.repo(ctx, ModelVersion).findOneBy({ id });
    if (!model) throw notFound('ModelVersion', id);
    if (!model.sha256 || !model.manifest) throw badInput('This model version has no ONNX file (its predictions are imported)', { field: 'modelVersionId' });
    return model as ModelVersion & { manifest: ModelManifest; sha256: string };
  }

  async startInferenceJob(ctx: RequestContext, input: StartInferenceJob): Promise<InferenceJob> {
    const actor = requireRole(ctx, Role.ENGINEER);
    const model = await this.onnxModel(ctx, input.modelVersionId);
    const scope = { siteIds: input.siteIds ?? [], modalities: input.modalities ?? [] };
    const total = (await this.items(ctx, { scope }, model.manifest)).length;
    return this.db.transaction(ctx, async (tx) => {
      const repo = this.db.repo(tx, InferenceJob);
      const job = await repo.save(repo.create({ modelVersionId: model.id, scope, total, requestedByTokenId: actor.tokenId }));
      // In this transaction: a rolled-back mutation leaves no job in the queue.
      await this.queue.send(tx, RUN_INFERENCE, { inferenceJobId: job.id });
      await this.audit.record(tx, { action: 'startInferenceJob', entityType: 'InferenceJob', entityId: job.id, details: { modelVersionId: model.id, total } });
      return job;
    });
  }

  async cancelJob(ctx: RequestContext, id: string): Promise<InferenceJob> {
    requireRole(ctx, Role.ENGINEER);
    return this.db.transaction(ctx, async (tx) => {
      const repo = this.db.repo(tx, InferenceJob);
      const job = await repo.findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!job) throw notFound('InferenceJob', id);
      if (job.status !== JobStatus.QUEUED && job.status !== JobStatus.RUNNING) {
        throw new AppError(ErrorCode.JOB_NOT_CANCELLABLE, `Job ${id} is ${job.status}`);
      }
      job.cancelRequested = true;
      if (job.status === JobStatus.QUEUED) Object.assign(job, { status: JobStatus.CANCELLED, finishedAt: new Date() });
      const saved = await repo.save(job);
      await this.audit.record(tx, { action: 'cancelJob', entityType: 'InferenceJob', entityId: id });
      await this.announce(saved.id);
      return saved;
    });
  }

  listJobs(ctx: RequestContext, page: PageRequest): Promise<Page<InferenceJob>> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    return paginate(this.db.repo(ctx, InferenceJob).createQueryBuilder('job'), 'job', page);
  }

  async getJob(ctx: RequestContext, id: string): Promise<InferenceJob> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    const job = await this.db.repo(ctx, InferenceJob).findOneBy({ id });
    if (!job) throw notFound('InferenceJob', id);
    return job;
  }

  /**
   * A job's progress events for a subscriber: the job's id at once (so a subscriber that connects or reconnects
   * sees the current state first), then one per NOTIFY. Each event is re-read by the resolver.
   */
  watchJob(ctx: RequestContext, jobId: string): AsyncIterable<string> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    const events = this.pubSub.subscribe(JOB_PROGRESS, jobId) as AsyncIterable<string>;
    return (async function* () {
      yield jobId;
      yield* events;
    })();
  }

  private announce(jobId: string): Promise<void> {
    return this.pubSub.publishNow(JOB_PROGRESS, jobId, jobId);
  }

  /**
   * The worker's side: runs (or resumes) a job. Items already predicted for every output are skipped, so a
   * job retried after a crash goes on where it stopped. Returns 'skipped' for a job that is no longer runnable.
   */
  async runJob(ctx: RequestContext, jobId: string): Promise<'done' | 'skipped'> {
    const job = await this.db.repo(ctx, InferenceJob).findOneBy({ id: jobId });
    if (!job || job.status === JobStatus.SUCCEEDED || job.status === JobStatus.CANCELLED || job.status === JobStatus.FAILED) return 'skipped';
    const model = await this.onnxModel(ctx, job.modelVersionId);
    const { session, provider } = await this.sessions.get(model.sha256, () => this.objects.read(model.sha256));
    const items = await this.items(ctx, job, model.manifest);
    const predicted = new Set(
      (
        await this.db.dataSource.query(
          `SELECT joint_id || ':' || modality AS k FROM prediction WHERE model_version_id = $1 GROUP BY joint_id, modality HAVING count(*) >= $2`,
          [model.id, model.manifest.outputs.length],
        )
      ).map((r: { k: string }) => r.k),
    );
    const pending = items.filter((w) => !predicted.has(`${w.jointId}:${w.modality}`));
    // A resumed job counts what earlier runs predicted as done and tries their failures again.
    await this.db
      .repo(ctx, InferenceJob)
      .update(job.id, { status: JobStatus.RUNNING, provider, startedAt: job.startedAt ?? new Date(), total: items.length, done: items.length - pending.length, failed: 0, failures: [] });
    await this.announce(job.id);
    let lastAnnounce = Date.now();
    for (let i = 0; i < pending.length; i += this.batchSize) {
      const current = await this.db.repo(ctx, InferenceJob).findOneByOrFail({ id: job.id });
      if (current.cancelRequested) {
        await this.db.repo(ctx, InferenceJob).update(job.id, { status: JobStatus.CANCELLED, finishedAt: new Date() });
        await this.announce(job.id);
        return 'done';
      }
      const batch = pending.slice(i, i + this.batchSize);
      const ready: Array<{ item: WorkItem; input: Float32Array }> = [];
      const failures: JobFailure[] = [];
      for (const item of batch) {
        try {
          const spec = model.manifest.preprocessing[item.modality];
          if (!spec) throw new Error(`No preprocessing for ${item.modality}`);
          const frame = await decodeFrame(readPart10(await this.objects.read(item.sha256)), item.frame);
          ready.push({ item, input: preprocess(frame, { x: item.roiX, y: item.roiY, width: item.roiWidth, height: item.roiHeight }, spec) });
        } catch (error) {
          failures.push({ jointImageId: item.jointImageId, reason: (error as Error).message.slice(0, 300) });
        }
      }
      const outputs = ready.length ? await runBatch(session, model.manifest, ready.map((r) => r.input)) : new Map<string, number[][]>();
      await this.db.transaction(ctx, async (tx) => {
        const rows = ready.flatMap(({ item }, k) =>
          model.manifest.outputs.map((o) => {
            const probabilities = (outputs.get(o.feature) as number[][])[k];
            return { modelVersionId: model.id, jointId: item.jointId, modality: item.modality, feature: o.feature, probabilities, predictedGrade: argmax(probabilities) };
          }),
        );
        if (rows.length) {
          await this.db
            .manager(tx)
            .createQueryBuilder()
            .insert()
            .into(Prediction)
            .values(rows)
            .orUpdate(['probabilities', 'predicted_grade'], ['model_version_id', 'joint_id', 'modality', 'feature'])
            .execute();
        }
        await this.db
          .manager(tx)
          .query(
            `UPDATE inference_job SET done = done + $2, failed = failed + $3, updated_at = now(),
               failures = CASE WHEN jsonb_array_length(failures) >= ${MAX_FAILURES_KEPT} THEN failures ELSE failures || $4::jsonb END
             WHERE id = $1`,
            [job.id, ready.length, failures.length, JSON.stringify(failures)],
          );
      });
      // At most about four progress events a second; the last batch always announces below.
      if (Date.now() - lastAnnounce >= 250) {
        lastAnnounce = Date.now();
        await this.announce(job.id);
      }
    }
    await this.db.repo(ctx, InferenceJob).update(job.id, { status: JobStatus.SUCCEEDED, finishedAt: new Date() });
    await this.announce(job.id);
    return 'done';
  }
}
