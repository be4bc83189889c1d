import { Arg, Args, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { RegisterExternalModelInput } from '../../../schema/inputs/model-version.input';
import { PageArgs } from '../../../schema/inputs/page.args';
import { ModelVersionConnection, ModelVersionType, PredictionImportResultType } from '../../../schema/types/model-version.type';
import { Role } from '../../domain';
import type { ModelService } from '../../services';
import type { GraphQLContext } from '../context';

/** Model versions (ONNX files are registered over HTTP: http/model-upload.ts) and imported predictions. */
@Resolver(() => ModelVersionType)
export class ModelVersionResolver {
  constructor(private readonly modelService: ModelService) {}

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
  @Mutation(() => PredictionImportResultType, {
    description:
      'Predictions CSV of an external model version: site,patient,level,side,modality,feature,p0,p1,… (patient = pseudonym); all rows or none, append-only (a stored prediction never changes)',
  })
  importPredictions(@Ctx() ctx: GraphQLContext, @Arg('modelVersionId', () => ID) modelVersionId: string, @Arg('csv') csv: string) {
    return this.modelService.importPredictions(ctx, modelVersionId, csv);
  }
}
