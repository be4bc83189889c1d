import { federationDeadlineJob } from './federation-deadline.job';
import {
  FEDERATION_DEADLINE,
  FEDERATION_SECURE_STEP,
  FEDERATION_COMPUTE,
  FEDERATION_COMPUTE_FAILED,
  FEDERATION_SUBMIT,
  INFERENCE_FAILED,
  RUN_INFERENCE,
  type JobHandler,
  type JobName,
} from '../queue/job-catalogue';
import type { Services } from '../services';
import { federationComputeFailedJob, federationComputeJob } from './federation-compute.job';
import { federationSecureStepJob } from './federation-secure-step.job';
import { federationSubmitJob } from './federation-submit.job';
import { inferenceFailedJob } from './inference-failed.job';
import { runInferenceJob } from './run-inference.job';

/** Every handler by queue, as a worker runs them. */
export type JobHandlers = { [N in JobName]: JobHandler<N> };

/**
 * Each queue of the catalogue and its handler: a second transport beside the resolvers, calling services with a
 * system context. A queue without a handler here does not type-check.
 */
export function jobHandlers(services: Services): JobHandlers {
  return {
    [RUN_INFERENCE]: runInferenceJob(services),
    [INFERENCE_FAILED]: inferenceFailedJob(services),
    [FEDERATION_DEADLINE]: federationDeadlineJob(services),
    [FEDERATION_SECURE_STEP]: federationSecureStepJob(services),
    [FEDERATION_COMPUTE]: federationComputeJob(services),
    [FEDERATION_SUBMIT]: federationSubmitJob(services),
    [FEDERATION_COMPUTE_FAILED]: federationComputeFailedJob(services),
  };
}

/** Runs every handler of `handlers` on `queue` in this process (the queue is started); the queues' names. */
export async function workEveryQueue(queue: Services['queue'], handlers: JobHandlers): Promise<JobName[]> {
  const work = <N extends JobName>(name: N) => queue.work(name, handlers[name]);
  const names = Object.keys(handlers) as JobName[];
  for (const name of names) await work(name);
  return names;
}
