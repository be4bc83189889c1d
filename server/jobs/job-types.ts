/**
 * The job catalogue: queue name -> payload (ids only; our own rows hold status, counts and errors).
 * Issue 3 (large ingests) and issue 5 (inference) add their queues here; a name outside this map does not
 * type-check, so a producer and its handler cannot drift apart.
 */
export interface JobCatalogue {
  /** Run (or resume) an inference job: InferenceJob holds its status and counts. */
  'run-inference': { inferenceJobId: string };
}

export type JobName = keyof JobCatalogue & string;
export type JobOf<N extends JobName> = { name: N; data: JobCatalogue[N] };
export type JobItem = { [N in JobName]: JobOf<N> }[JobName];

/** What a handler says of a job it took ('continued': it queued the next slice); throwing instead means "retry". */
export type JobOutcome = 'done' | 'skipped' | 'continued';
export type JobHandler<N extends JobName> = (data: JobCatalogue[N], attempt: { lastTry: boolean }) => Promise<JobOutcome>;
