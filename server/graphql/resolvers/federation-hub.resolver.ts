import { Arg, Authorized, Ctx, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { FederatedQueryInput } from '../../../schema/inputs/federation-hub.input';
import {
  FederatedAnswerType,
  FederatedQueryType,
  FederationClaimType,
  FederationSiteType,
  FederationSubmissionType,
  HubIdentityType,
  SignedEnvelopeScalar,
} from '../../../schema/types/federation-hub.type';
import { Role } from '../../domain';
import type { FederatedQueryService, FederatedQueryView, FederationHubService } from '../../services';
import type { GraphQLContext } from '../context';

/**
 * The hub's API. The two transport mutations take no bearer token: the signed envelope authenticates the node
 * (docs/federation.md 3.1). The researcher's operations need a STATISTICIAN (or ADMIN) token of the hub.
 */
@Resolver()
export class FederationHubResolver {
  constructor(
    private readonly hub: FederationHubService,
    private readonly queries: FederatedQueryService,
  ) {}

  @Mutation(() => FederationClaimType, { description: 'Long-poll: held until a task for the claiming site exists or waitSeconds (0-25) pass' })
  claimFederationTasks(
    @Ctx() ctx: GraphQLContext,
    @Arg('claim', () => SignedEnvelopeScalar) claim: object,
    @Arg('waitSeconds', () => Int, { defaultValue: 25 }) waitSeconds: number,
  ) {
    return this.hub.claimTasks(ctx, claim, waitSeconds);
  }

  @Mutation(() => FederationSubmissionType, { description: "A node's signed result; accepted with a signed receipt, or refused with a code" })
  submitFederationResult(@Ctx() ctx: GraphQLContext, @Arg('result', () => SignedEnvelopeScalar) result: object) {
    return this.hub.submitResult(ctx, result);
  }

  @Mutation(() => FederationSubmissionType, {
    description: "A node's signed answer in a secure round (masked vector, seed or refusal); accepted with a signed receipt",
  })
  submitFederationRound(@Ctx() ctx: GraphQLContext, @Arg('answer', () => SignedEnvelopeScalar) answer: object) {
    return this.hub.submitRound(ctx, answer);
  }

  @Authorized(Role.STATISTICIAN)
  @Mutation(() => FederatedQueryType, { description: 'Ask the member sites one question; each answers under its own release policy by the deadline' })
  startFederatedQuery(@Ctx() ctx: GraphQLContext, @Arg('input', () => FederatedQueryInput) input: FederatedQueryInput) {
    return this.queries.startQuery(ctx, input);
  }

  @Authorized(Role.STATISTICIAN)
  @Mutation(() => FederatedQueryType, { description: 'Stop a RUNNING query; sites that claimed it hear so in their next claim' })
  cancelFederatedQuery(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.queries.cancelQuery(ctx, id);
  }

  @Authorized(Role.STATISTICIAN)
  @Query(() => FederatedQueryType)
  federatedQuery(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.queries.getQuery(ctx, id);
  }

  @Authorized(Role.STATISTICIAN)
  @Query(() => [FederatedQueryType], { description: 'The latest federated queries first' })
  federatedQueries(@Ctx() ctx: GraphQLContext, @Arg('limit', () => Int, { defaultValue: 50 }) limit: number) {
    return this.queries.listQueries(ctx, limit);
  }

  @Authorized(Role.STATISTICIAN)
  @Query(() => FederatedAnswerType, { description: 'The signed provenance export of an answer, for `facet verify`' })
  async federatedAnswer(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    const { view, export: signed } = await this.queries.exportAnswer(ctx, id);
    return { id: view.id, revision: view.revision, rowsSha256: view.rowsSha256, export: signed };
  }

  @Authorized(Role.STATISTICIAN)
  @Query(() => [FederationSiteType], { description: 'The member registry (sites/) with key ids and last claim times' })
  federationSites(@Ctx() ctx: GraphQLContext) {
    return this.queries.listSites(ctx);
  }

  @Subscription(() => FederatedQueryType, {
    subscribe: ({ args, context }) => (context as GraphQLContext).streams.federatedQuery((args as { id: string }).id),
    description: 'The answer at once, then again whenever it changes: a result, a late result folded in (revision + 1), the deadline, a cancellation',
  })
  federatedQueryUpdated(@Root() query: FederatedQueryView, @Arg('id', () => ID) _id: string): FederatedQueryView {
    return query;
  }

  @Query(() => HubIdentityType, { description: "The hub's public signing key (nodes pin it as FACET_HUB_SIGNING_KEY)" })
  hubIdentity(@Ctx() ctx: GraphQLContext) {
    return this.hub.hubIdentity(ctx);
  }
}
