import type { FEDERATION_SUBMIT, JobHandler } from '../queue/job-catalogue';
import type { Services } from '../services';

/** Delivers one signed result to the hub; a throw (hub down, receipt not verified) retries with backoff. */
export const federationSubmitJob =
  (services: Services): JobHandler<typeof FEDERATION_SUBMIT> =>
  async (data) => {
    if (typeof data?.inboxTaskId !== 'string' || !services.federationNode.options) return 'skipped';
    return services.federationNode.submitResult(data.inboxTaskId);
  };
