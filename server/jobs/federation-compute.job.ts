import type { FEDERATION_COMPUTE, JobHandler } from '../queue/job-catalogue';
import type { Services } from '../services';

/** Computes one inbox task under the node's release policy (released, held for a coordinator, or refused). */
export const federationComputeJob =
  (services: Services): JobHandler<typeof FEDERATION_COMPUTE> =>
  async (data) => {
    if (typeof data?.inboxTaskId !== 'string' || !services.federationNode.options) return 'skipped';
    return services.federationNode.computeTask(data.inboxTaskId);
  };
