/**
 * The job catalogue: queue name -> payload (ids only; our own rows hold status, counts and errors).
 * Issue 3 (large ingests) and issue 5 (inference) add their queues here; a name outside this map does not
 * type-check, so a producer and its handler cannot drift apart.
 */
export interface JobCatalogue {
  /** Run (or resume) an inference job: InferenceJob holds its status and counts. */
  'run-inference': { inferenceJobId: string };
  /** A run-inference queue job whose retries are spent (it threw, or its worker died, every time): the job ends FAILED. */
  'inference-failed': { inferenceJobId: string };
}

/** Every queue, a dead-letter queue before the queue that names it (pg-boss needs it to exist). */
export const JOB_NAMES: readonly JobName[] = ['inference-failed', 'run-inference'];

/** Where a queue's jobs go once their retries are spent (pg-boss dead-letter queues). */
export const DEAD_LETTER_QUEUES: Partial<Record<JobName, JobName>> = { 'run-inference': 'inference-failed' };

export type JobName = keyof JobCatalogue & string;
export type JobOf<N extends JobName> = { name: N; data: JobCatalogue[N] };
export type JobItem = { [N in JobName]: JobOf<N> }[JobName];

/** What a handler says of a job it took ('continued': it queued the next slice); throwing instead means "retry". */
export type JobOutcome = 'done' | 'skipped' | 'continued';
/** `failure`: for a dead-letter queue's job, what the last try of the original job left (pg-boss's output). */
export type JobHandler<N extends JobName> = (data: JobCatalogue[N], failure: unknown) => Promise<JobOutcome>;
