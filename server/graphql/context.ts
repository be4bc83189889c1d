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

/** `Authorization: Bearer <secret>` (HTTP header, or the graphql-ws connection param of the same name). */
export function bearerSecret(header: unknown): string | null {
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match ? match[1] : null;
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
  const secret = bearerSecret(authorization);
  const actor = known.actor !== undefined ? known.actor : secret ? await services.tokens.authenticate(secret) : null;
  const ctx: RequestContext = { requestId, clientRequestId: known.clientRequestId ?? null, actor };
  return Object.assign(ctx, {
    loaders: createLoaders(services, ctx),
    streams: {
      jobProgress: (jobId: string) => services.inference.watchJob(ctx, jobId),
      siteJobs: (siteId: string | null) => services.inference.watchSiteJobs(ctx, siteId),
    },
  });
}
