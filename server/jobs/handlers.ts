import { systemContext, type Services } from '../services';
import type { JobHandler, JobName } from './job-types';

/** Each queue of the catalogue and its handler (handlers call services, like resolvers; a throw means retry). */
export function jobHandlers(services: Services): { [N in JobName]: JobHandler<N> } {
  return {
    'run-inference': async (data) => {
      if (typeof data?.inferenceJobId !== 'string') return 'skipped';
      return services.inference.runJob(systemContext('worker'), data.inferenceJobId);
    },
  };
}
