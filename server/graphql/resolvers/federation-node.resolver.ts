import { Arg, Authorized, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import { ReleasePolicyInput } from '../../../schema/inputs/federation-node.input';
import { FederationInboxEntryType, ReleasePolicyType } from '../../../schema/types/federation-node.type';
import { FederationInboxState, Role } from '../../domain';
import type { FederationNodeService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver()
export class FederationNodeResolver {
  constructor(private readonly federationNode: FederationNodeService) {}

  @Authorized(Role.ADMIN)
  @Query(() => ReleasePolicyType, { description: 'This node’s federation release policy (the default until an ADMIN sets one)' })
  releasePolicy(@Ctx() ctx: GraphQLContext) {
    return this.federationNode.describeReleasePolicy(ctx);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => ReleasePolicyType, { description: 'Replaces the release policy (audited with its sha256)' })
  setReleasePolicy(@Ctx() ctx: GraphQLContext, @Arg('policy') policy: ReleasePolicyInput) {
    return this.federationNode.setReleasePolicy(ctx, policy);
  }

  @Authorized(Role.COORDINATOR)
  @Query(() => [FederationInboxEntryType], { description: 'Tasks from the hub, newest first; HELD ones with exactly the bytes that would leave' })
  federationInbox(@Ctx() ctx: GraphQLContext, @Arg('state', () => FederationInboxState, { nullable: true }) state: FederationInboxState | null) {
    return this.federationNode.listInbox(ctx, state ?? null);
  }

  @Authorized(Role.COORDINATOR)
  @Mutation(() => FederationInboxEntryType, { description: 'Releases a held result: exactly its held aggregate is signed and sent' })
  approveFederationRelease(@Ctx() ctx: GraphQLContext, @Arg('taskId') taskId: string) {
    return this.federationNode.approveRelease(ctx, taskId);
  }

  @Authorized(Role.COORDINATOR)
  @Mutation(() => FederationInboxEntryType, { description: 'Refuses a held result: the hub gets REFUSED (REFUSED_BY_COORDINATOR); the reason stays here' })
  refuseFederationRelease(@Ctx() ctx: GraphQLContext, @Arg('taskId') taskId: string, @Arg('reason') reason: string) {
    return this.federationNode.refuseRelease(ctx, taskId, reason);
  }
}
