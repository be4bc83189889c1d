import type { JobHandler } from '../queue/job-catalogue';
import { FEDERATION_SECURE_STEP } from '../queue/job-catalogue';
import { systemContext, type Services } from '../services';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A secure round's attempt deadline (sent with startAfter): restart without the sites whose vectors are missing, or fail. */
export function federationSecureStepJob(services: Services): JobHandler<typeof FEDERATION_SECURE_STEP> {
  return async (data) => {
    if (typeof data?.taskId !== 'string' || !UUID.test(data.taskId) || !Number.isInteger(data.attempt)) return 'skipped';
    if (!services.federationHub.isHub) throw new Error('a federation-secure-step job needs a worker in hub mode (FACET_MODE=hub)');
    return services.federationHub.expireSecureAttempt(systemContext(FEDERATION_SECURE_STEP), data.taskId, data.attempt);
  };
}
