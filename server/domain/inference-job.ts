/** The vocabulary of an inference job's row, shared by its entity, the service that runs it and the API. */

export enum JobStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}

/** The statuses a job may still leave: a worker may run it, and it may be cancelled. */
export const ACTIVE_JOB_STATUSES: readonly JobStatus[] = [JobStatus.QUEUED, JobStatus.RUNNING];

export const isActiveJob = (status: JobStatus): boolean => ACTIVE_JOB_STATUSES.includes(status);

/** One image that could not be used, and why (the job goes on without it). */
export interface JobFailure {
  jointImageId: string;
  reason: string;
}
