import type { EntityManager } from 'typeorm';
import type { JobFailure } from '../../domain';

/**
 * The lease SQL of inference_job: the statements by which a run takes a job, proves at each write that it still
 * holds it, and ends it. A run holds the job while `lease_id` is its lease and the status is RUNNING; a retry takes
 * a new lease and a cancel clears it, so a stale run's next statement matches no row and writes nothing.
 * TypeORM answers an UPDATE with [rows, affected].
 */

/** Failures kept on the job row with their reasons; the count goes on. */
export const MAX_FAILURES_KEPT = 100;

export interface Claim {
  jobId: string;
  lease: string;
  worker: string;
  provider: string;
  total: number;
}

/** Takes a queued or running job for `lease`; its cursor (where the last run stopped), or null when the job is no longer active. */
export async function claimJob(m: EntityManager, claim: Claim): Promise<{ cursor: string | null } | null> {
  const [[claimed]]: [Array<{ cursor: string | null }>, number] = await m.query(
    `UPDATE inference_job SET lease_id = $2, worker = $3, provider = $4, status = 'RUNNING', total = $5, attempts = attempts + 1,
       started_at = coalesce(started_at, now()), updated_at = now()
     WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING cursor`,
    [claim.jobId, claim.lease, claim.worker, claim.provider, claim.total],
  );
  return claimed ?? null;
}

export interface BatchCounts {
  done: number;
  failures: JobFailure[];
  /** The order key of the batch's last item. */
  cursor: string;
}

/**
 * Adds a batch's counters and moves the cursor, if `lease` still holds the job: false (nothing written) when it
 * was taken over or cancelled. Run first in the batch's transaction: it locks the job row, so a run that took the
 * job over waits for this batch or finds it gone.
 */
export async function recordBatch(m: EntityManager, jobId: string, lease: string, batch: BatchCounts): Promise<boolean> {
  const [updated]: [unknown[], number] = await m.query(
    `UPDATE inference_job SET done = done + $3, failed = failed + $4, cursor = $5, updated_at = now(),
       failures = CASE WHEN jsonb_array_length(failures) >= ${MAX_FAILURES_KEPT} THEN failures ELSE failures || $6::jsonb END
     WHERE id = $1 AND lease_id = $2 AND status = 'RUNNING' RETURNING id`,
    [jobId, lease, batch.done, batch.failures.length, batch.cursor, JSON.stringify(batch.failures)],
  );
  return updated.length > 0;
}

/** Whether `lease` still holds the job, locking its row until the transaction ends (so it cannot be taken meanwhile). */
export async function holdLease(m: EntityManager, jobId: string, lease: string): Promise<boolean> {
  const held: unknown[] = await m.query(`SELECT id FROM inference_job WHERE id = $1 AND lease_id = $2 AND status = 'RUNNING' FOR UPDATE`, [jobId, lease]);
  return held.length > 0;
}

/** Ends the job held by `lease` as SUCCEEDED; false when the lease no longer holds it (taken over, or cancelled). */
export async function succeedJob(m: EntityManager, jobId: string, lease: string): Promise<boolean> {
  const [, updated]: [unknown[], number] = await m.query(
    `UPDATE inference_job SET status = 'SUCCEEDED', finished_at = now(), updated_at = now() WHERE id = $1 AND lease_id = $2 AND status = 'RUNNING'`,
    [jobId, lease],
  );
  return updated > 0;
}

/** Ends a queued or running job as FAILED with `error` (at most 1000 characters kept), whoever holds it. */
export async function failJob(m: EntityManager, jobId: string, error: string): Promise<void> {
  await m.query(
    `UPDATE inference_job SET status = 'FAILED', error = $2, lease_id = NULL, finished_at = now(), updated_at = now() WHERE id = $1 AND status IN ('QUEUED', 'RUNNING')`,
    [jobId, error.slice(0, 1000)],
  );
}
