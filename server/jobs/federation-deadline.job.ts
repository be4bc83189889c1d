import type { JobHandler } from '../queue/job-catalogue';
import { FEDERATION_DEADLINE } from '../queue/job-catalogue';
import { systemContext, type Services } from '../services';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A federated query's deadline (sent with startAfter = deadline): its open site-tasks expire and the answer becomes
 * PARTIAL or INSUFFICIENT, naming the silent sites.
 */
export function federationDeadlineJob(services: Services): JobHandler<typeof FEDERATION_DEADLINE> {
  return async (data) => {
    if (typeof data?.taskId !== 'string' || !UUID.test(data.taskId)) return 'skipped';
    // A hub's worker started without FACET_MODE=hub: fail loudly (pg-boss retries) rather than drop a deadline.
    if (!services.federationHub.isHub) throw new Error('a federation-deadline job needs a worker in hub mode (FACET_MODE=hub)');
    return services.federatedQueries.expireAtDeadline(systemContext(FEDERATION_DEADLINE), data.taskId);
  };
}
