/**
 * The job catalogue: every queue's name, spelled once here, with its payload (ids only: our own rows hold status,
 * counts and errors), its dead-letter queue, and the pg-boss policy all of them run under. `JobQueue.send` and
 * `work` are typed by it, so a producer, its payload and its handler cannot drift apart: a name outside this map or a
 * payload of the wrong shape does not type-check.
 */

/** Run (or resume) one slice of an inference job; InferenceJob holds its status, counts and cursor. */
export const RUN_INFERENCE = 'run-inference';
/** A run-inference queue job whose retries are spent (it threw, or its worker died, every time): the job ends FAILED. */
export const INFERENCE_FAILED = 'inference-failed';

/** A federated query's deadline passed (sent with startAfter = deadline): expire its open site-tasks. */
export const FEDERATION_DEADLINE = 'federation-deadline';
/** A secure round's attempt deadline passed (sent with startAfter): restart it without the silent sites, or fail it. */
export const FEDERATION_SECURE_STEP = 'federation-secure-step';
/** Compute a federated task from the node's inbox and release, hold or refuse it by the node's policy. */
export const FEDERATION_COMPUTE = 'federation-compute';
/** A federation-compute job whose retries are spent (an unexpected error every time): the hub gets FAILED (COMPUTE_ERROR). */
export const FEDERATION_COMPUTE_FAILED = 'federation-compute-failed';
/** Deliver a node's signed result to the hub until the hub's signed receipt verifies. */
export const FEDERATION_SUBMIT = 'federation-submit';

export interface JobCatalogue {
  [RUN_INFERENCE]: { inferenceJobId: string };
  [INFERENCE_FAILED]: { inferenceJobId: string };
  [FEDERATION_DEADLINE]: { taskId: string };
  [FEDERATION_SECURE_STEP]: { taskId: string; attempt: number };
  [FEDERATION_COMPUTE]: { inboxTaskId: string };
  [FEDERATION_SUBMIT]: { inboxTaskId: string };
  [FEDERATION_COMPUTE_FAILED]: { inboxTaskId: string };
}

export type JobName = keyof JobCatalogue & string;

/** Where a queue's jobs go once their retries are spent (pg-boss dead-letter queues, named when a job is sent). */
export const DEAD_LETTER_QUEUES: Partial<Record<JobName, JobName>> = { [RUN_INFERENCE]: INFERENCE_FAILED, [FEDERATION_COMPUTE]: FEDERATION_COMPUTE_FAILED };

/** Every queue, each dead-letter queue before the queue that names it (pg-boss needs it to exist first). */
export const JOB_NAMES: readonly JobName[] = [
  INFERENCE_FAILED,
  RUN_INFERENCE,
  FEDERATION_DEADLINE,
  FEDERATION_SECURE_STEP,
  FEDERATION_COMPUTE_FAILED,
  FEDERATION_COMPUTE,
  FEDERATION_SUBMIT,
];

/**
 * Queues whose retries differ from QUEUE_POLICY. A result delivery waits out a hub that is down: exponential
 * backoff (pg-boss doubles the delay from 2 s, with jitter) over 14 tries, about nine hours in all, which outlasts a
 * hub's maintenance window; the task's deadline at the hub decides whether the answer still counts.
 */
export const RETRY_OVERRIDES: Partial<Record<JobName, { retryLimit: number; retryDelay: number; retryBackoff: boolean }>> = {
  [FEDERATION_SUBMIT]: { retryLimit: 14, retryDelay: 2, retryBackoff: true },
};

/** What a handler says of a job it took ('continued': it queued the next slice); throwing instead means "retry". */
export type JobOutcome = 'done' | 'skipped' | 'continued';

/**
 * A queue's handler: the payload as it was sent (handlers still check it: a row written by hand or by an older
 * version may differ) and, for a dead-letter queue's job, what the original job's last try left (pg-boss's output).
 */
export type JobHandler<N extends JobName> = (data: JobCatalogue[N], failure: unknown) => Promise<JobOutcome>;

/**
 * How pg-boss runs our queues. The first four are the defaults of FACET_JOB_EXPIRE_SECONDS, FACET_JOB_RETRY_LIMIT,
 * FACET_QUEUE_MAINTENANCE_SECONDS (docs/configuration.md) and the fixed retry delay; `Config` reads the overrides.
 */
export const QUEUE_POLICY = {
  /**
   * A job still active this long after it started is taken for dead (its worker was killed) and retried. A slice
   * runs FACET_JOB_SLICE_SECONDS (20) plus at most one batch: 16 images take about 25 ms with the reference model
   * and about a second with a ResNet-18-sized one on a CPU (docs/models.md), so 120 s is five times what a live
   * slice needs, and a killed worker's job is picked up again within about two and a half minutes.
   */
  expireInSeconds: 120,
  /**
   * Tries after the first before the job moves to its dead-letter queue: a slice whose worker is killed five times
   * over is called FAILED after at most about 15 minutes (six runs of 120 s expiry plus up to 30 s maintenance), and
   * five throws in a row (a model file that no longer loads) are not a passing fault.
   */
  retryLimit: 5,
  /** A throw is retried after a second: a passing fault (a connection reset) has cleared, and a lasting one fails within seconds. */
  retryDelaySeconds: 1,
  /** How often a supervising process expires dead workers' jobs: adds at most 30 s to the expiry above. */
  maintenanceIntervalSeconds: 30,
  /** How often a worker polls each queue: pg-boss's floor, so a job's next slice starts without a noticeable pause. */
  pollingIntervalSeconds: 0.5,
  /** pg-boss's own pool: the two queues' polls, a send and maintenance at once never wait for a connection. */
  poolSize: 4,
  /**
   * `standard`: any number of queued and active jobs per queue. `singleton` and `stately` allow one active (or one
   * queued) job per queue, which would serialise every inference job of the node behind one another.
   */
  policy: 'standard',
} as const;
