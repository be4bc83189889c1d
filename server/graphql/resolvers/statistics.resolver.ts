import { Arg, Args, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { MetricsInput, RegisterExternalModelInput } from '../../../schema/inputs/metrics.input';
import { PageArgs } from '../../../schema/inputs/page.args';
import { ManifestResultType } from '../../../schema/types/ingest.type';
import { MetricsResultType, ModelVersionConnection, ModelVersionType } from '../../../schema/types/metrics.type';
import { Role } from '../../domain';
import type { MetricsService, ModelService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver()
export class StatisticsResolver {
  constructor(
    private readonly metricsService: MetricsService,
    private readonly modelService: ModelService,
  ) {}

  @Authorized(Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER)
  @Query(() => MetricsResultType, { description: 'A rater against the reference standard, grouped, with the pooled row' })
  async metrics(@Ctx() ctx: GraphQLContext, @Arg('input') input: MetricsInput) {
    const result = await this.metricsService.metrics(ctx, input);
    return { ...result, groups: result.groups.map((g) => ({ ...g, ...g.key, patients: g.clusters })) };
  }

  @Authorized()
  @Query(() => ModelVersionConnection)
  modelVersions(@Ctx() ctx: GraphQLContext, @Args() page: PageArgs) {
    return this.modelService.listModelVersions(ctx, page);
  }

  @Authorized()
  @Query(() => ModelVersionType)
  modelVersion(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.modelService.getModelVersion(ctx, id);
  }

  @Authorized(Role.ENGINEER)
  @Mutation(() => ModelVersionType, { description: 'A model run elsewhere, by name and version (no file); its predictions come by importPredictions' })
  registerExternalModel(@Ctx() ctx: GraphQLContext, @Arg('input') input: RegisterExternalModelInput) {
    return this.modelService.registerExternalModel(ctx, input);
  }

  @Authorized(Role.ENGINEER)
  @Mutation(() => ManifestResultType, { description: 'Predictions CSV: site,patient,level,side,modality,feature,p0,p1,… (patient = pseudonym); all rows or none' })
  importPredictions(@Ctx() ctx: GraphQLContext, @Arg('modelVersionId', () => ID) modelVersionId: string, @Arg('csv') csv: string) {
    return this.modelService.importPredictions(ctx, modelVersionId, csv);
  }
}
