import { Arg, Args, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { PageArgs } from '../../../schema/inputs/page.args';
import { CreateApiTokenInput } from '../../../schema/inputs/token.input';
import { ApiTokenConnection, ApiTokenType, AuditEventConnection, CreatedApiTokenType, ViewerType } from '../../../schema/types/admin.type';
import { GradingFeatureType } from '../../../schema/types/grading.type';
import { Role } from '../../domain';
import type { AuditService, GradingService, TokenService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver()
export class AdminResolver {
  constructor(
    private readonly tokenService: TokenService,
    private readonly auditService: AuditService,
    private readonly gradingService: GradingService,
  ) {}

  @Authorized()
  @Query(() => ViewerType, { description: 'Who the token belongs to: role, site and reader' })
  viewer(@Ctx() ctx: GraphQLContext) {
    return ctx.actor;
  }

  @Authorized()
  @Query(() => [GradingFeatureType], { description: 'The grading scheme: features and their grades' })
  gradingScheme(@Ctx() ctx: GraphQLContext) {
    return this.gradingService.listFeatures(ctx);
  }

  @Authorized(Role.ADMIN)
  @Query(() => ApiTokenConnection)
  apiTokens(@Ctx() ctx: GraphQLContext, @Args() page: PageArgs) {
    return this.tokenService.listApiTokens(ctx, page);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => CreatedApiTokenType, { description: 'The secret is in the answer and nowhere else' })
  createApiToken(@Ctx() ctx: GraphQLContext, @Arg('input') input: CreateApiTokenInput) {
    return this.tokenService.createApiToken(ctx, input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => ApiTokenType)
  revokeApiToken(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.tokenService.revokeApiToken(ctx, id);
  }

  @Authorized(Role.ADMIN)
  @Query(() => AuditEventConnection)
  auditEvents(@Ctx() ctx: GraphQLContext, @Arg('actions', () => [String], { nullable: true }) actions: string[] | null, @Args() page: PageArgs) {
    return this.auditService.listAuditEvents(ctx, { actions }, page);
  }
}
