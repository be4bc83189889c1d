import { foundOrThrow, type Db } from '../../db/transaction';
import { ACTIVE_JOB_STATUSES, ErrorCode, isActiveJob, JobStatus, Role, type Modality, type PageRequest } from '../../domain';
import { InferenceJob } from '../../entities';
import { AppError } from '../../errors/app-error';
import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { JOB_PROGRESS, type JobProgressEvent } from '../../pubsub/topics';
import { RUN_INFERENCE } from '../../queue/job-catalogue';
import type { JobQueue } from '../../queue/job-queue';
import type { AuditService } from '../audit.service';
import { paginate, type Page } from '../pagination';
import { requireRole, type RequestContext } from '../request-context';
import { announceJobProgress } from './job-progress';
import { onnxModelVersion } from './onnx-model-version';
import { workItems } from './work-items';

export interface StartInferenceJob {
  modelVersionId: string;
  siteIds?: string[] | null;
  modalities?: Modality[] | null;
}

/**
 * Inference jobs as the API sees them: started by a mutation (queued in PostgreSQL by pg-boss in the same
 * transaction), cancelled, read, listed and followed. Workers run them (InferenceRunner); each of their changes
 * reaches `watchJob` and `watchSiteJobs` subscribers through a NOTIFY on JOB_PROGRESS from whichever process made it.
 */
export class InferenceService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly queue: JobQueue,
    private readonly pubSub: PostgresPubSub,
  ) {}

  /** Reads of a job's state in flight, by event id: shared by every subscriber that the same NOTIFY woke. */
  private readonly reading = new Map<string, Promise<InferenceJob>>();

  async startInferenceJob(ctx: RequestContext, input: StartInferenceJob): Promise<InferenceJob> {
    const actor = requireRole(ctx, Role.ENGINEER);
    const model = await onnxModelVersion(this.db, ctx, input.modelVersionId);
    const scope = { siteIds: input.siteIds ?? [], modalities: input.modalities ?? [] };
    const total = (await workItems(this.db, ctx, scope, model.manifest)).length;
    return this.db.transaction(ctx, async (tx) => {
      const repo = this.db.repo(tx, InferenceJob);
      const job = await repo.save(repo.create({ modelVersionId: model.id, scope, total, requestedByTokenId: actor.tokenId }));
      // In this transaction: a rolled-back mutation leaves no job in the queue.
      await this.queue.send(tx, RUN_INFERENCE, { inferenceJobId: job.id });
      await this.audit.record(tx, { action: 'startInferenceJob', entityType: 'InferenceJob', entityId: job.id, details: { modelVersionId: model.id, total } });
      await announceJobProgress(this.db, this.pubSub, job.id, tx);
      return job;
    });
  }

  async cancelJob(ctx: RequestContext, id: string): Promise<InferenceJob> {
    requireRole(ctx, Role.ENGINEER);
    return this.db.transaction(ctx, async (tx) => {
      const repo = this.db.repo(tx, InferenceJob);
      const job = foundOrThrow(await repo.findOne({ where: { id }, lock: { mode: 'pessimistic_write' } }), InferenceJob.name, id);
      if (!isActiveJob(job.status)) throw new AppError(ErrorCode.JOB_NOT_CANCELLABLE, `Job ${id} is ${job.status}`);
      // Cancelled at once, running or not: clearing the lease makes a live run stop at its next batch without
      // writing, and a job whose worker died needs no run to reach CANCELLED.
      Object.assign(job, { status: JobStatus.CANCELLED, finishedAt: new Date(), leaseId: null });
      const saved = await repo.save(job);
      await this.audit.record(tx, { action: 'cancelJob', entityType: 'InferenceJob', entityId: id });
      await announceJobProgress(this.db, this.pubSub, saved.id, tx);
      return saved;
    });
  }

  listJobs(ctx: RequestContext, page: PageRequest): Promise<Page<InferenceJob>> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    return paginate(this.db.repo(ctx, InferenceJob).createQueryBuilder('job'), 'job', page);
  }

  async getJob(ctx: RequestContext, id: string): Promise<InferenceJob> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    return this.db.getEntityOrThrow(ctx, InferenceJob, id);
  }

  /**
   * A job's progress for a subscriber: its current state at once (so a subscriber that connects or reconnects
   * sees it first), then its state after each NOTIFY from whichever worker runs it.
   */
  async *watchJob(ctx: RequestContext, jobId: string): AsyncGenerator<InferenceJob> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    const events = this.pubSub.subscribe(JOB_PROGRESS, jobId);
    yield await this.getJob(ctx, jobId);
    for await (const event of events) yield await this.currentState(event);
  }

  /**
   * The jobs whose scope covers a site (every job when `siteId` is null, or when the job's scope names no site):
   * the queued and running ones at once, then each such job's state after each NOTIFY.
   */
  async *watchSiteJobs(ctx: RequestContext, siteId: string | null): AsyncGenerator<InferenceJob> {
    requireRole(ctx, Role.ENGINEER, Role.STATISTICIAN);
    const events = this.pubSub.subscribeAll(JOB_PROGRESS);
    const covers = (job: InferenceJob) => siteId === null || !job.scope.siteIds.length || job.scope.siteIds.includes(siteId);
    const active = await this.db
      .repo(ctx, InferenceJob)
      .createQueryBuilder('job')
      .where('job.status IN (:...active)', { active: ACTIVE_JOB_STATUSES })
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
   * may predate its commit. Read outside any subscriber's transaction: the read is shared, the context is not.
   */
  private currentState(event: JobProgressEvent): Promise<InferenceJob> {
    let state = this.reading.get(event.event);
    if (!state) {
      state = this.db.getEntityOrThrow({}, InferenceJob, event.jobId).finally(() => this.reading.delete(event.event));
      this.reading.set(event.event, state);
    }
    return state;
  }
}
