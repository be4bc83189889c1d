import type { FEDERATION_COMPUTE, FEDERATION_COMPUTE_FAILED, JobHandler } from '../queue/job-catalogue';
import type { Services } from '../services';

/** Computes one inbox task under the node's release policy (released, held for a coordinator, or refused). */
export const federationComputeJob =
  (services: Services): JobHandler<typeof FEDERATION_COMPUTE> =>
  async (data) => {
    if (typeof data?.inboxTaskId !== 'string' || !services.federationNode.options) return 'skipped';
    return services.federationNode.computeTask(data.inboxTaskId);
  };

/**
 * The dead letter of a federation-compute job whose retries are spent: the task ends FAILED (COMPUTE_ERROR) and the
 * hub is told, rather than the site going silent until the deadline. The error itself stays in the node's log.
 */
export const federationComputeFailedJob =
  (services: Services): JobHandler<typeof FEDERATION_COMPUTE_FAILED> =>
  async (data) => {
    if (typeof data?.inboxTaskId !== 'string' || !services.federationNode.options) return 'skipped';
    return services.federationNode.failTask(data.inboxTaskId);
  };
