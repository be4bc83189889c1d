import { systemContext, type Services } from '../services';
import type { JobHandler, JobName } from './job-types';

/** Each queue of the catalogue and its handler (handlers call services, like resolvers; a throw means retry). */
export function jobHandlers(services: Services): { [N in JobName]: JobHandler<N> } {
  return {
    'run-inference': async (data, { lastTry }) => {
      if (typeof data?.inferenceJobId !== 'string') return 'skipped';
      try {
        return await services.inference.runJob(systemContext('worker'), data.inferenceJobId);
      } catch (error) {
        // Retries exhausted (a model that no longer loads, say): the job ends FAILED with the reason, not RUNNING forever.
        if (lastTry) await services.inference.failJob(systemContext('worker'), data.inferenceJobId, (error as Error).message);
        throw error;
      }
    },
  };
}
