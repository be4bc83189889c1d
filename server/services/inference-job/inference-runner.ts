import { predictions } from '../../telemetry/metrics';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Db } from '../../db/transaction';
import { readPart10 } from '../../dicom/reader';
import { isActiveJob, JobStatus, type JobFailure } from '../../domain';
import { InferenceJob } from '../../entities';
import { decodeFrame, preprocess, type Frame } from '../../inference/pixels';
import { runBatch, type SessionCache } from '../../inference/session-cache';
import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { RUN_INFERENCE, type JobOutcome } from '../../queue/job-catalogue';
import type { JobQueue } from '../../queue/job-queue';
import type { ObjectStore } from '../../storage/object-store';
import { argmax } from '../model.service';
import type { RequestContext } from '../request-context';
import { claimJob, failJob, holdLease, recordBatch, succeedJob } from './job-lease.sql';
import { announceJobProgress } from './job-progress';
import { onnxModelVersion, type OnnxModelVersion } from './onnx-model-version';
import { insertPredictions, predictedCells, type PredictionRow } from './prediction.sql';
import { cellOf, itemsAfter, orderOf, workItems, type WorkItem } from './work-items';

type InferenceSessionHandle = Awaited<ReturnType<SessionCache['get']>>['session'];

/** The worker as the job row shows it. */
const WORKER_NAME = `${hostname()}:${process.pid}`.slice(0, 128);

/** At most about four progress events a second per job; the end of a slice or job always announces. */
const ANNOUNCE_EVERY_MS = 250;

export interface RunnerOptions {
  /** Work items per session.run and per transaction. */
  batchSize: number;
  /** How long one slice runs before it queues the job's next slice. */
  sliceMs: number;
}

/**
 * The worker's side of inference jobs: runs a job a slice at a time, in batches — decode, preprocess, one
 * session.run per batch — each batch's predictions and counters written in one transaction that checks the job's
 * lease (job-lease.sql.ts) and announced by NOTIFY. Predictions are written once per model x joint x modality x
 * feature and never rewritten, so a retried job neither duplicates nor changes them.
 */
export class InferenceRunner {
  constructor(
    private readonly db: Db,
    private readonly objects: ObjectStore,
    private readonly queue: JobQueue,
    private readonly pubSub: PostgresPubSub,
    private readonly sessions: SessionCache,
    private readonly options: RunnerOptions = { batchSize: 16, sliceMs: 20_000 },
  ) {}

  /**
   * Runs one slice of a job (its first, a continuation, or a retry after a worker died).
   *
   * The slice takes the job's lease, then goes on from the job's cursor through the work items in their fixed
   * order (work-items.ts), a batch at a time; each batch's predictions, counters and cursor are written in one
   * transaction that also checks the lease, so every item is counted exactly once and a stale run (its queue job
   * expired and retried elsewhere while it still ran) stops at its next batch without writing. Items the model
   * has already predicted (an earlier job over the same scope) count as done without running again. After
   * `sliceMs` the slice queues the job's next slice and returns, so no queue job outlives its expiry and a
   * killed worker's job is retried within about `expireInSeconds`.
   */
  async runSlice(ctx: RequestContext, jobId: string): Promise<JobOutcome> {
    const job = await this.db.repo(ctx, InferenceJob).findOneBy({ id: jobId });
    if (!job || !isActiveJob(job.status)) return 'skipped';
    const model = await onnxModelVersion(this.db, ctx, job.modelVersionId);
    const { session, provider } = await this.sessions.get(model.sha256, () => this.objects.read(model.sha256));
    const items = await workItems(this.db, ctx, job.scope, model.manifest, job.createdAt);
    const lease = randomUUID();
    const claimed = await claimJob(this.db.manager(ctx), { jobId: job.id, lease, worker: WORKER_NAME, provider, total: items.length });
    if (!claimed) return 'skipped';
    // A status change (QUEUED to RUNNING) is news; a next slice or a retry taking over is not.
    if (job.status === JobStatus.QUEUED) await this.announce(job.id);
    const pending = itemsAfter(items, claimed.cursor);
    const sliceEnds = Date.now() + this.options.sliceMs;
    let lastAnnounce = Date.now();
    for (let i = 0; i < pending.length; i += this.options.batchSize) {
      if (i > 0 && Date.now() >= sliceEnds) return this.continueLater(ctx, job.id, lease);
      const batch = pending.slice(i, i + this.options.batchSize);
      const written = await this.predictBatch(ctx, model, session, job.id, lease, batch);
      if (!written) return 'skipped';
      if (Date.now() - lastAnnounce >= ANNOUNCE_EVERY_MS) {
        lastAnnounce = Date.now();
        await this.announce(job.id);
      }
    }
    return this.finish(ctx, job.id, lease);
  }

  /** Ends a queued or running job as FAILED with `error` (its queue job's retries are spent). */
  async failJob(ctx: RequestContext, jobId: string, error: string): Promise<void> {
    await failJob(this.db.manager(ctx), jobId, error);
    await this.announce(jobId);
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
    const predicted = await predictedCells(
      this.db.manager(ctx),
      model.id,
      batch.map((w) => w.jointId),
      model.manifest.outputs.length,
    );
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
    const rows: PredictionRow[] = ready.flatMap(({ item }, k) =>
      model.manifest.outputs.map((o) => {
        const p = (outputs.get(o.feature) as number[][])[k];
        return { joint_id: item.jointId, modality: item.modality, feature: o.feature, p, grade: argmax(p) };
      }),
    );
    return this.db
      .transaction(ctx, async (tx) => {
        const m = this.db.manager(tx);
        // The lease first: it locks the job row, so a run that took the job over waits for this batch or finds it gone.
        const held = await recordBatch(m, jobId, lease, { done: batch.length - failures.length, failures, cursor: orderOf(batch[batch.length - 1]) });
        if (!held) return false;
        await insertPredictions(m, model.id, rows);
        return true;
      })
      .then((held) => {
        // Counted once the batch committed: a batch whose lease was lost wrote nothing.
        if (held) predictions.inc(rows.length);
        return held;
      });
  }

  /** Queues the job's next slice, in a transaction that still holds the lease. */
  private async continueLater(ctx: RequestContext, jobId: string, lease: string): Promise<'continued' | 'skipped'> {
    return this.db.transaction(ctx, async (tx) => {
      if (!(await holdLease(this.db.manager(tx), jobId, lease))) return 'skipped' as const;
      await this.queue.send(tx, RUN_INFERENCE, { inferenceJobId: jobId });
      return 'continued' as const;
    });
  }

  private async finish(ctx: RequestContext, jobId: string, lease: string): Promise<'done' | 'skipped'> {
    if (!(await succeedJob(this.db.manager(ctx), jobId, lease))) return 'skipped';
    await this.announce(jobId);
    return 'done';
  }

  private announce(jobId: string): Promise<void> {
    return announceJobProgress(this.db, this.pubSub, jobId);
  }
}
