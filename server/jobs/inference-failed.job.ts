import type { INFERENCE_FAILED, JobHandler } from '../queue/job-catalogue';
import { systemContext, type Services } from '../services';

/**
 * The dead letter of a run-inference job whose retries are spent: the inference job ends FAILED with the last
 * reason, never RUNNING forever (a model that no longer loads, a worker killed on every try).
 */
export const inferenceFailedJob =
  (services: Services): JobHandler<typeof INFERENCE_FAILED> =>
  async (data, failure) => {
    if (typeof data?.inferenceJobId !== 'string') return 'skipped';
    await services.inferenceRunner.failJob(systemContext('worker'), data.inferenceJobId, `Gave up after its retries: ${reasonOf(failure)}`);
    return 'done';
  };

/** The message in what pg-boss recorded of a failed try: a thrown error, or its own expiry notice. */
function reasonOf(output: unknown): string {
  const o = output as { message?: unknown; value?: { message?: unknown } } | null;
  const message = o?.message ?? o?.value?.message;
  return typeof message === 'string' ? message : 'unknown error';
}
