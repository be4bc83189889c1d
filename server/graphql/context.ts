import { randomUUID } from 'node:crypto';
import type { InferenceJob } from '../entities';
import type { IngestProgressEvent } from '../pubsub/topics';
import type { Actor, FederatedInferenceView, FederatedQueryView, RequestContext, Services } from '../services';
import { createLoaders, type Loaders } from './loaders';

/**
 * What subscriptions stream, bound to the request's actor: each is a service's watch method, which checks access
 * and decides what comes first (the current state, for jobs). A `@Subscription` reaches it through `subscribe:`,
 * since type-graphql hands that function the context but not the resolver instance.
 */
export interface SubscriptionStreams {
  jobProgress(jobId: string): AsyncIterable<InferenceJob>;
  siteJobs(siteId: string | null): AsyncIterable<InferenceJob>;
  ingestProgress(siteId: string): AsyncIterable<IngestProgressEvent>;
  federatedQuery(id: string): AsyncIterable<FederatedQueryView>;
  federatedJobProgress(id: string): AsyncIterable<FederatedInferenceView>;
}

/** The GraphQL context: the services' RequestContext plus this request's loaders and subscription streams. */
export interface GraphQLContext extends RequestContext {
  loaders: Loaders;
  streams: SubscriptionStreams;
}

/**
 * `known.actor`: the caller as the HTTP gate already authenticated it (no second lookup); `known.clientRequestId`:
 * the client's own request id, recorded beside the server's `requestId`.
 */
export async function buildContext(
  services: Services,
  authorization: unknown,
  requestId: string = randomUUID(),
  known: { actor?: Actor | null; clientRequestId?: string | null; signal?: AbortSignal } = {},
): Promise<GraphQLContext> {
  const actor = known.actor !== undefined ? known.actor : await services.tokens.authenticateAuthorization(authorization);
  const ctx: RequestContext = { requestId, clientRequestId: known.clientRequestId ?? null, actor, signal: known.signal };
  const streams: SubscriptionStreams = {
    jobProgress: (jobId) => services.inference.watchJob(ctx, jobId),
    siteJobs: (siteId) => services.inference.watchSiteJobs(ctx, siteId),
    ingestProgress: (siteId) => services.ingest.watchIngest(ctx, siteId),
    federatedQuery: (id) => services.federatedQueries.watchQuery(ctx, id),
    federatedJobProgress: (id) => services.federatedInference.watchInference(ctx, id),
  };
  return Object.assign(ctx, { loaders: createLoaders(services, ctx), streams });
}
