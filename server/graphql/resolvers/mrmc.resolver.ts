import { Arg, Authorized, Ctx, Query, Resolver } from 'type-graphql';
import { MrmcInput } from '../../../schema/inputs/mrmc.input';
import { MrmcResultType } from '../../../schema/types/mrmc.type';
import { Role } from '../../domain';
import type { MrmcService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver()
export class MrmcResolver {
  constructor(private readonly mrmcService: MrmcService) {}

  @Authorized(Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER)
  @Query(() => MrmcResultType, {
    description: 'The model against the clinicians as a group: Obuchowski-Rockette MRMC analysis with Hillis df, per feature and modality, pooled and per site',
  })
  mrmc(@Ctx() ctx: GraphQLContext, @Arg('input') input: MrmcInput) {
    return this.mrmcService.mrmc(ctx, input);
  }
}
