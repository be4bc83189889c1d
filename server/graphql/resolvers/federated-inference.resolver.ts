import { Arg, Authorized, Ctx, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { FederatedInferenceInput } from '../../../schema/inputs/federated-inference.input';
import { FederatedInferenceRunType, FederatedInferenceType } from '../../../schema/types/federated-inference.type';
import { FederationSubmissionType, SignedEnvelopeScalar } from '../../../schema/types/federation-hub.type';
import { Role } from '../../domain';
import type { FederatedInferenceRunner, FederatedInferenceService, FederatedInferenceView } from '../../services';
import type { GraphQLContext } from '../context';

/**
 * Federated inference (docs/federation.md section 8). At the hub: an ENGINEER sends a model version to the member
 * sites and follows every site's job; nodes report progress with a signed envelope (no bearer token). At a node:
 * its ENGINEER or ADMIN approves or refuses a model its policy holds.
 */
@Resolver()
export class FederatedInferenceResolver {
  constructor(
    private readonly inference: FederatedInferenceService,
    private readonly runner: FederatedInferenceRunner,
  ) {}

  @Authorized(Role.ENGINEER)
  @Mutation(() => FederatedInferenceType, {
    description: 'Hub: send a model version the hub holds to the member sites; each registers it and runs it on its own images',
  })
  startFederatedInference(@Ctx() ctx: GraphQLContext, @Arg('input', () => FederatedInferenceInput) input: FederatedInferenceInput) {
    return this.inference.startInference(ctx, input);
  }

  @Authorized(Role.ENGINEER)
  @Mutation(() => FederatedInferenceType, { description: 'Hub: stop the job at every site (each hears it in the answer to its next claim)' })
  cancelFederatedInference(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.inference.cancelInference(ctx, id);
  }

  @Authorized(Role.ENGINEER, Role.STATISTICIAN)
  @Query(() => FederatedInferenceType, { description: 'Hub: a federated inference job, per site and in total' })
  federatedInference(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.inference.getInference(ctx, id);
  }

  @Authorized(Role.ENGINEER, Role.STATISTICIAN)
  @Query(() => [FederatedInferenceType], { description: 'Hub: the latest federated inference jobs first' })
  federatedInferences(@Ctx() ctx: GraphQLContext, @Arg('limit', () => Int, { defaultValue: 50 }) limit: number) {
    return this.inference.listInferences(ctx, limit);
  }

  @Subscription(() => FederatedInferenceType, {
    subscribe: ({ args, context }) => (context as GraphQLContext).streams.federatedJobProgress((args as { id: string }).id),
    description: 'Hub: the job at once, then after every change at any site (a progress report, a result, the deadline, a cancellation)',
  })
  federatedJobProgress(@Root() job: FederatedInferenceView, @Arg('id', () => ID) _id: string): FederatedInferenceView {
    return job;
  }

  @Mutation(() => FederationSubmissionType, {
    description: "Hub: a node's signed progress report of a federated inference job (no bearer token: the envelope authenticates)",
  })
  reportFederationProgress(@Ctx() ctx: GraphQLContext, @Arg('progress', () => SignedEnvelopeScalar) progress: object) {
    return this.inference.receiveProgress(ctx, progress);
  }

  @Authorized(Role.ENGINEER)
  @Query(() => [FederatedInferenceRunType], { description: 'Node: federated inference tasks from the hub, newest first' })
  federatedInferenceRuns(@Ctx() ctx: GraphQLContext) {
    return this.runner.listRuns(ctx);
  }

  @Authorized(Role.ENGINEER)
  @Mutation(() => FederatedInferenceRunType, { description: 'Node: run a model the release policy held for approval' })
  approveFederatedInference(@Ctx() ctx: GraphQLContext, @Arg('taskId') taskId: string) {
    return this.runner.approve(ctx, taskId);
  }

  @Authorized(Role.ENGINEER)
  @Mutation(() => FederatedInferenceRunType, { description: 'Node: refuse a held model; the hub gets REFUSED (REFUSED_BY_ENGINEER), the reason stays here' })
  refuseFederatedInference(@Ctx() ctx: GraphQLContext, @Arg('taskId') taskId: string, @Arg('reason') reason: string) {
    return this.runner.refuse(ctx, taskId, reason);
  }
}
