import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Db } from '../db/transaction';
import { readPart10 } from '../dicom/reader';
import { ErrorCode, Role, type Modality, type PageRequest } from '../domain';
import { InferenceJob, JobStatus, ModelVersion, type JobFailure } from '../entities';
import { AppError, badInput, notFound } from '../errors/app-error';
import type { ModelManifest } from '../inference/manifest';
import { decodeFrame, preprocess, type Frame, type Region } from '../inference/pixels';
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

type OnnxModelVersion = ModelVersion & { manifest: ModelManifest; sha256: string };
type InferenceSessionHandle = Awaited<ReturnType<SessionCache['get']>>['session'];

/** What a job's NOTIFY carries: the job, and an id of this event. */
interface JobEvent {
  jobId: string;
  event: string;
}

/** The payload of a NOTIFY on JOB_PROGRESS that says `jobId` changed. */
export const jobEvent = (jobId: string): JobEvent => ({ jobId, event: randomUUID() });

/** The worker as the job row shows it. */
const WORKER_NAME = `${hostname()}:${process.pid}`.slice(0, 128);

const isActive = (status: JobStatus) => status === JobStatus.QUEUED || status === JobStatus.RUNNING;

/** A work item's cell: what a prediction is unique by (with the model and feature). */
const cellOf = (w: Pick<WorkItem, 'jointId' | 'modality'>) => `${w.jointId}:${w.modality}`;
/**
 * A work item's place in the job's fixed order: by stored object first, so the two joints of one slice fall in
 * the same batch and the object is read and decoded once; sha256 and uuid are fixed-length, so the text order is
 * the tuple order.
 */
const orderOf = (w: Pick<WorkItem, 'sha256' | 'frame' | 'jointId' | 'modality'>) => `${w.sha256}:${String(w.frame).padStart(5, '0')}:${cellOf(w)}`;
const compareKeys = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** One image a job runs the model on: a joint x modality's joint image, its frame and region, its stored object. */
export interface WorkItem {
  jointImageId: string;
  jointId: string;
  modality: Modality;
  frame: number;
  region: Region;
  sha256: string;
}

/**
 * Inference jobs: started by a mutation (queued in PostgreSQL by pg-boss in the same transaction), run by any
 * worker in batches — decode, preprocess, one session.run per batch — each batch's predictions and counters
 * written in one transaction and announced by NOTIFY. Predictions are upserts per model x joint x modality x
 * feature, so a retried job never duplicates. A cancel clears the job's lease, so its worker stops at the next batch.
 */
export class InferenceService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly objects: ObjectStore,
    private readonly queue: JobQueue,
    private readonly pubSub: PostgresPubSub,
    private readonly sessions: SessionCache,
    private readonly options: { batchSize: number; sliceMs: number } = { batchSize: 16, sliceMs: 20_000 },
  ) {}

  /** Reads of a job's state in flight, by event id: shared by every subscriber that the same NOTIFY woke. */
  private readonly reading = new Map<string, Promise<InferenceJob>>();

  /**
   * A job's work items, in the job's fixed order: the first joint image of each joint x modality in scope that
   * the model has preprocessing for. `createdBy`: only images that existed when the job was created, so a job's
   * work (and its total) is fixed from start to end.
   */
  async workItems(ctx: RequestContext, scope: InferenceJob['scope'], manifest: ModelManifest, createdBy?: Date): Promise<WorkItem[]> {
    const modalities = Object.keys(manifest.preprocessing).filter((m) => !scope.modalities.length || scope.modalities.includes(m));
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
        'ji.roi_x AS "x"',
        'ji.roi_y AS "y"',
        'ji.roi_width AS "width"',
        'ji.roi_height AS "height"',
        'i.sha256 AS "sha256"',
      ])
      .orderBy('ji.joint_id')
      .addOrderBy('se.modality')
      .addOrderBy('ji.id');
    restrictToScope(qb, ctx, 'patient.site_id');
    whereIn(qb, 'patient.site_id', scope.siteIds.length ? scope.siteIds : null);
    whereIn(qb, 'se.modality', modalities);
    if (createdBy) qb.andWhere('ji.created_at <= :createdBy', { createdBy });
    const rows = await qb.getRawMany<Omit<WorkItem, 'region'> & Region>();
    return rows
      .map(({ x, y, width, height, ...w }) => ({ ...w, region: { x, y, width, height }, sha256: w.sha256.trim() }))
      .sort((a, b) => compareKeys(orderOf(a), orderOf(b)));
  }

  private async onnxModel(ctx: RequestContext, id: string): Promise<OnnxModelVersion> {
    const model = await this.db.repo(ctx, ModelVersion).findOneBy({ id });
    if (!model) throw notFound('ModelVersion', id);
    if (!model.sha256 || !model.manifest) throw badInput('This model version has no ONNX file (its predictions are imported)', { field: 'modelVersionId' });
    return model as OnnxModelVersion;
  }

  async startInferenceJob(ctx: RequestContext, input: StartInferenceJob): Promise<InferenceJob> {
    const actor = requireRole(ctx, Role.ENGINEER);
    const model = await this.onnxModel(ctx, input.modelVersionId);
    const scope = { siteIds: input.siteIds ?? [], modalities: input.modalities ?? [] };
    const total = (await this.workItems(ctx, scope, model.manifest)).length;
    return this.db.transaction(ctx, async (tx) => {
      const repo = this.db.repo(tx, InferenceJob);
      const job = await repo.save(repo.create({ modelVersionId: model.id, scope, total, requestedByTokenId: actor.tokenId }));
      // In this transaction: a rolled-back mutation leaves no job in the queue.
      await this.queue.send(tx, RUN_INFERENCE, { inferenceJobId: job.id });
      await this.audit.record(tx, { action: 'startInferenceJob', entityType: 'InferenceJob', entityId: job.id, details: { modelVersionId: model.id, total } });
      await this.announce(job.id, tx);
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
      // Cancelled at once, running or not: clearing the lease makes a live run stop at its next batch without
      // writing, and a job whose worker died needs no run to reach CANCELLED.
      Object.assign(job, { status: JobStatus.CANCELLED, finishedAt: new Date(), leaseId: null });
      const saved = await repo.save(job);
      await this.audit.record(tx, { action: 'cancelJob', entityType: 'InferenceJob', entityId: id });
      await this.announce(saved.id, tx);
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
   * A job's progress for a subscriber: its current state at once (so a subscriber that connects or reconnects
   * sees it first), then its state after each NOTIFY from whichever worker runs it.
   */
  async *watchJob(ctx: RequestContext, jobId: string): AsyncGenerator<InferenceJob> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    const events = this.pubSub.subscribe(JOB_PROGRESS, jobId) as AsyncIterable<JobEvent>;
    yield await this.getJob(ctx, jobId);
    for await (const event of events) yield await this.currentState(event);
  }

  /**
   * The jobs whose scope covers a site (every job when `siteId` is null, or when the job's scope names no site):
   * the queued and running ones at once, then each such job's state after each NOTIFY.
   */
  async *watchSiteJobs(ctx: RequestContext, siteId: string | null): AsyncGenerator<InferenceJob> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    const events = this.pubSub.subscribeAll(JOB_PROGRESS) as AsyncIterable<JobEvent>;
    const covers = (job: InferenceJob) => siteId === null || !job.scope.siteIds.length || job.scope.siteIds.includes(siteId);
    const active = await this.db
      .repo(ctx, InferenceJob)
      .createQueryBuilder('job')
      .where('job.status IN (:...active)', { active: [JobStatus.QUEUED, JobStatus.RUNNING] })
      .orderBy('job.created_at')
      .getMany();
    for (const job of active) if (covers(job)) yield job;
    for await (const event of events) {
      const job = await this.currentState(event);
      if (covers(job)) yield job;
    }
  }

  /**
   * The job's state after `event`: one read per NOTIFY, shared by every subscriber that NOTIFY woke in this process
   * (a thousand dashboards cost one query). A later NOTIFY has another event id, so it never gets a read that
   * may predate its commit.
   */
  private currentState(event: JobEvent): Promise<InferenceJob> {
    let state = this.reading.get(event.event);
    if (!state) {
      state = this.db.dataSource
        .getRepository(InferenceJob)
        .findOneByOrFail({ id: event.jobId })
        .finally(() => this.reading.delete(event.event));
      this.reading.set(event.event, state);
    }
    return state;
  }

  /** NOTIFY of a job's change; with `tx`, sent when that transaction commits. */
  private announce(jobId: string, tx?: RequestContext): Promise<void> {
    return this.pubSub.publishNow(JOB_PROGRESS, jobId, jobEvent(jobId), tx ? this.db.manager(tx) : undefined);
  }

  /**
   * The worker's side: runs one slice of a job (its first, a continuation, or a retry after a worker died).
   *
   * The slice takes the job's lease, then goes on from the job's cursor through the work items in their fixed
   * order (see workItems), a batch at a time; each batch's predictions, counters and cursor are written in one
   * transaction that also checks the lease, so every item is counted exactly once and a stale run (its queue job
   * expired and retried elsewhere while it still ran) stops at its next batch without writing. Items the model
   * has already predicted (an earlier job over the same scope) count as done without running again. After
   * `sliceMs` the slice queues the job's next slice and returns, so no queue job outlives its expiry and a
   * killed worker's job is retried within about `expireInSeconds`.
   */
  async runJob(ctx: RequestContext, jobId: string): Promise<'done' | 'skipped' | 'continued'> {
    const job = await this.db.repo(ctx, InferenceJob).findOneBy({ id: jobId });
    if (!job || !isActive(job.status)) return 'skipped';
    const model = await this.onnxModel(ctx, job.modelVersionId);
    const { session, provider } = await this.sessions.get(model.sha256, () => this.objects.read(model.sha256));
    const items = await this.workItems(ctx, job.scope, model.manifest, job.createdAt);
    const lease = randomUUID();
    // An UPDATE answers [rows, affected] through TypeORM.
    const [[claimed]]: [Array<{ cursor: string | null }>, number] = await this.db.dataSource.query(
      `UPDATE inference_job SET lease_id = $2, worker = $3, provider = $4, status = 'RUNNING', total = $5, attempts = attempts + 1,
         started_at = coalesce(started_at, now()), updated_at = now()
       WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING cursor`,
      [job.id, lease, WORKER_NAME, provider, items.length],
    );
    if (!claimed) return 'skipped';
    // A status change (QUEUED to RUNNING) is news; a next slice or a retry taking over is not.
    if (job.status === JobStatus.QUEUED) await this.announce(job.id);
    const cursor = claimed.cursor;
    const pending = cursor === null ? items : items.filter((w) => compareKeys(orderOf(w), cursor) > 0);
    const sliceEnds = Date.now() + this.options.sliceMs;
    let lastAnnounce = Date.now();
    for (let i = 0; i < pending.length; i += this.options.batchSize) {
      if (i > 0 && Date.now() >= sliceEnds) return this.continueLater(ctx, job.id, lease);
      const batch = pending.slice(i, i + this.options.batchSize);
      const written = await this.predictBatch(ctx, model, session, job.id, lease, batch);
      if (!written) return 'skipped';
      // At most about four progress events a second; the end of the job always announces.
      if (Date.now() - lastAnnounce >= 250) {
        lastAnnounce = Date.now();
        await this.announce(job.id);
      }
    }
    return this.finish(job.id, lease, JobStatus.SUCCEEDED);
  }

  /** Predicts one batch and writes it; false when the lease was taken over (nothing written). */
  private async predictBatch(
    ctx: RequestContext,
    model: OnnxModelVersion,
    session: InferenceSessionHandle,
    jobId: string,
    lease: string,
    batch: WorkItem[],
  ): Promise<boolean> {
    const predicted = await this.alreadyPredicted(model, batch);
    // Every object of the batch read at once (the reads overlap), each read and decoded once however many joints it shows.
    const frames = new Map<string, Promise<Frame>>();
    const frameOf = (item: WorkItem) => {
      const key = `${item.sha256}:${item.frame}`;
      let frame = frames.get(key);
      if (!frame) {
        frame = this.objects.read(item.sha256).then((bytes) => decodeFrame(readPart10(bytes), item.frame));
        frames.set(key, frame);
      }
      return frame;
    };
    const prepared = await Promise.all(
      batch
        .filter((item) => !predicted.has(cellOf(item)))
        .map(async (item) => {
          try {
            const spec = model.manifest.preprocessing[item.modality];
            if (!spec) throw new Error(`No preprocessing for ${item.modality}`);
            return { item, input: preprocess(await frameOf(item), item.region, spec) };
          } catch (error) {
            return { item, error: (error as Error).message.slice(0, 300) };
          }
        }),
    );
    const ready = prepared.filter((p): p is { item: WorkItem; input: Float32Array } => 'input' in p);
    const failures: JobFailure[] = prepared.flatMap((p) => ('error' in p ? [{ jointImageId: p.item.jointImageId, reason: p.error as string }] : []));
    const outputs = ready.length
      ? await runBatch(
          session,
          model.manifest,
          ready.map((r) => r.input),
        )
      : new Map<string, number[][]>();
    return this.db.transaction(ctx, async (tx) => {
      // The lease first: it locks the job row, so a run that took the job over waits for this batch or finds it gone.
      // An UPDATE answers [rows, affected] through TypeORM.
      const [updated]: [unknown[], number] = await this.db.manager(tx).query(
        `UPDATE inference_job SET done = done + $3, failed = failed + $4, cursor = $5, updated_at = now(),
           failures = CASE WHEN jsonb_array_length(failures) >= ${MAX_FAILURES_KEPT} THEN failures ELSE failures || $6::jsonb END
         WHERE id = $1 AND lease_id = $2 AND status = 'RUNNING' RETURNING id`,
        [jobId, lease, batch.length - failures.length, failures.length, orderOf(batch[batch.length - 1]), JSON.stringify(failures)],
      );
      if (!updated.length) return false;
      const rows = ready.flatMap(({ item }, k) =>
        model.manifest.outputs.map((o) => {
          const p = (outputs.get(o.feature) as number[][])[k];
          return { joint_id: item.jointId, modality: item.modality, feature: o.feature, p, grade: argmax(p) };
        }),
      );
      if (rows.length) {
        // One statement with one JSON parameter for the whole batch, however many rows.
        await this.db.manager(tx).query(
          `INSERT INTO prediction (model_version_id, joint_id, modality, feature, probabilities, predicted_grade)
           SELECT $1, r.joint_id, r.modality::modality, r.feature, ARRAY(SELECT jsonb_array_elements_text(r.p)::float8), r.grade
           FROM jsonb_to_recordset($2::jsonb) AS r(joint_id uuid, modality text, feature text, p jsonb, grade smallint)
           ON CONFLICT (model_version_id, joint_id, modality, feature)
           DO UPDATE SET probabilities = EXCLUDED.probabilities, predicted_grade = EXCLUDED.predicted_grade`,
          [model.id, JSON.stringify(rows)],
        );
      }
      return true;
    });
  }

  /** The batch's items the model has predicted for every output already. */
  private async alreadyPredicted(model: OnnxModelVersion, batch: WorkItem[]): Promise<Set<string>> {
    const rows: Array<{ k: string }> = await this.db.dataSource.query(
      `SELECT joint_id || ':' || modality AS k FROM prediction WHERE model_version_id = $1 AND joint_id = ANY($2)
       GROUP BY joint_id, modality HAVING count(*) >= $3`,
      [model.id, batch.map((w) => w.jointId), model.manifest.outputs.length],
    );
    return new Set(rows.map((r) => r.k));
  }

  /** Queues the job's next slice, in a transaction that still holds the lease. */
  private async continueLater(ctx: RequestContext, jobId: string, lease: string): Promise<'continued' | 'skipped'> {
    return this.db.transaction(ctx, async (tx) => {
      const held: unknown[] = await this.db
        .manager(tx)
        .query(`SELECT id FROM inference_job WHERE id = $1 AND lease_id = $2 AND status = 'RUNNING' FOR UPDATE`, [jobId, lease]);
      if (!held.length) return 'skipped' as const;
      await this.queue.send(tx, RUN_INFERENCE, { inferenceJobId: jobId });
      return 'continued' as const;
    });
  }

  /** Ends a queued or running job as FAILED with `error` (its queue job's retries are spent). */
  async failJob(ctx: RequestContext, jobId: string, error: string): Promise<void> {
    await this.db
      .manager(ctx)
      .query(
        `UPDATE inference_job SET status = 'FAILED', error = $2, lease_id = NULL, finished_at = now(), updated_at = now() WHERE id = $1 AND status IN ('QUEUED', 'RUNNING')`,
        [jobId, error.slice(0, 1000)],
      );
    await this.announce(jobId);
  }

  private async finish(jobId: string, lease: string, status: JobStatus.SUCCEEDED | JobStatus.CANCELLED): Promise<'done' | 'skipped'> {
    const [, updated] = await this.db.dataSource.query(
      `UPDATE inference_job SET status = $3, finished_at = now(), updated_at = now() WHERE id = $1 AND lease_id = $2 AND status = 'RUNNING'`,
      [jobId, lease, status],
    );
    if (!updated) return 'skipped';
    await this.announce(jobId);
    return 'done';
  }
}
