import type { JobHandler, RUN_INFERENCE } from '../queue/job-catalogue';
import { systemContext, type Services } from '../services';

/** Runs one slice of an inference job; 'continued' when the slice queued the job's next one. */
export const runInferenceJob =
  (services: Services): JobHandler<typeof RUN_INFERENCE> =>
  async (data) => {
    if (typeof data?.inferenceJobId !== 'string') return 'skipped';
    return services.inferenceRunner.runSlice(systemContext('worker'), data.inferenceJobId);
  };
