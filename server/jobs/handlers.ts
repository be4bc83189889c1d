import type { JobHandler, JobName } from './job-types';

/** Each queue of the catalogue and the handler a worker runs for it (handlers call services, like resolvers). */
export const JOB_HANDLERS: { [N in JobName]: JobHandler<N> } = {};
