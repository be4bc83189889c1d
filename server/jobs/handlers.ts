import { systemContext, type Services } from '../services';
import type { JobHandler, JobName } from './job-types';

/** Each queue of the catalogue and its handler (handlers call services, like resolvers; a throw means retry). */
export function jobHandlers(services: Services): { [N in JobName]: JobHandler<N> } {
  return {
    'run-inference': async (data) => {
      if (typeof data?.inferenceJobId !== 'string') return 'skipped';
      return services.inference.runJob(systemContext('worker'), data.inferenceJobId);
    },
    'inference-failed': async (data, failure) => {
      if (typeof data?.inferenceJobId !== 'string') return 'skipped';
      // The job ends FAILED with the last reason, never RUNNING forever (a model that no longer loads, a worker killed on every try).
      await services.inference.failJob(systemContext('worker'), data.inferenceJobId, `Gave up after its retries: ${reasonOf(failure)}`);
      return 'done';
    },
  };
}

/** The message in what pg-boss recorded of a failed try: a thrown error, or its own expiry notice. */
function reasonOf(output: unknown): string {
  const o = output as { message?: unknown; value?: { message?: unknown } } | null;
  const message = o?.message ?? o?.value?.message;
  return typeof message === 'string' ? message : 'unknown error';
}
