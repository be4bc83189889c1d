import { randomUUID } from 'node:crypto';
import type { InferenceJob } from '../entities';
import type { Actor, RequestContext, Services } from '../services';
import { createLoaders, type Loaders } from './loaders';

/** The GraphQL context: the services' RequestContext plus this request's loaders. */
export interface GraphQLContext extends RequestContext {
  loaders: Loaders;
  /** Event streams for subscriptions whose first event is the current state (built with the request's actor). */
  streams: { jobProgress(jobId: string): AsyncIterable<InferenceJob>; siteJobs(siteId: string | null): AsyncIterable<InferenceJob> };
}

/**
 * `known.actor`: the caller as the HTTP gate already authenticated it (no second lookup); `known.clientRequestId`:
 * the client's own request id, recorded beside the server's `requestId`.
 */
export async function buildContext(
  services: Services,
  authorization: unknown,
  requestId: string = randomUUID(),
  known: { actor?: Actor | null; clientRequestId?: string | null } = {},
): Promise<GraphQLContext> {
  const actor = known.actor !== undefined ? known.actor : await services.tokens.authenticateAuthorization(authorization);
  const ctx: RequestContext = { requestId, clientRequestId: known.clientRequestId ?? null, actor };
  return Object.assign(ctx, {
    loaders: createLoaders(services, ctx),
    streams: {
      jobProgress: (jobId: string) => services.inference.watchJob(ctx, jobId),
      siteJobs: (siteId: string | null) => services.inference.watchSiteJobs(ctx, siteId),
    },
  });
}
