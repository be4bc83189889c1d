import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import { ImagingFilterInput, JointImageFilterInput } from '../../../schema/inputs/filter.input';
import { PageArgs } from '../../../schema/inputs/page.args';
import {
  InstanceConnection,
  InstanceType,
  JointImageConnection,
  JointImageType,
  SeriesConnection,
  SeriesType,
  StudyConnection,
  StudyType,
} from '../../../schema/types/imaging.type';
import { JointType, PatientType } from '../../../schema/types/patient.type';
import { Role } from '../../domain';
import type { Instance, JointImage, Series, Study } from '../../entities';
import type { ImagingService } from '../../services';
import type { GraphQLContext } from '../context';

const imagingRoles = [Role.COORDINATOR, Role.READER];

@Resolver(() => StudyType)
export class StudyResolver {
  constructor(private readonly imagingService: ImagingService) {}

  @Authorized(...imagingRoles)
  @Query(() => StudyConnection)
  studies(@Ctx() ctx: GraphQLContext, @Arg('filter', () => ImagingFilterInput, { nullable: true }) filter: ImagingFilterInput | null, @Args() page: PageArgs) {
    return this.imagingService.listStudies(ctx, filter ?? {}, page);
  }

  @FieldResolver(() => PatientType, { nullable: true })
  patient(@Root() study: Study, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.patient.load(study.patientId);
  }

  @FieldResolver(() => [SeriesType])
  series(@Root() study: Study, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.seriesByStudy.load(study.id);
  }
}

@Resolver(() => SeriesType)
export class SeriesResolver {
  constructor(private readonly imagingService: ImagingService) {}

  @Authorized(...imagingRoles)
  @Query(() => SeriesConnection)
  series(@Ctx() ctx: GraphQLContext, @Arg('filter', () => ImagingFilterInput, { nullable: true }) filter: ImagingFilterInput | null, @Args() page: PageArgs) {
    return this.imagingService.listSeries(ctx, filter ?? {}, page);
  }

  @FieldResolver(() => StudyType, { nullable: true })
  study(@Root() series: Series, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.study.load(series.studyId);
  }

  @FieldResolver(() => [InstanceType])
  instances(@Root() series: Series, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.instancesBySeries.load(series.id);
  }
}

@Resolver(() => InstanceType)
export class InstanceResolver {
  constructor(private readonly imagingService: ImagingService) {}

  @Authorized(...imagingRoles)
  @Query(() => InstanceConnection)
  instances(
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => ImagingFilterInput, { nullable: true }) filter: ImagingFilterInput | null,
    @Args() page: PageArgs,
  ) {
    return this.imagingService.listInstances(ctx, filter ?? {}, page);
  }

  // Any token: the service refuses other roles (FORBIDDEN) itself, so that the refusal is audited like the read.
  @Authorized()
  @Query(() => InstanceType)
  instance(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.imagingService.getInstance(ctx, id);
  }

  @FieldResolver(() => SeriesType, { nullable: true })
  series(@Root() instance: Instance, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.series.load(instance.seriesId);
  }
}

@Resolver(() => JointImageType)
export class JointImageResolver {
  constructor(private readonly imagingService: ImagingService) {}

  @Authorized(...imagingRoles)
  @Query(() => JointImageConnection)
  jointImages(
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => JointImageFilterInput, { nullable: true }) filter: JointImageFilterInput | null,
    @Args() page: PageArgs,
  ) {
    return this.imagingService.listJointImages(ctx, filter ?? {}, page);
  }

  @FieldResolver(() => JointType, { nullable: true })
  joint(@Root() image: JointImage, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.joint.load(image.jointId);
  }

  @FieldResolver(() => InstanceType, { nullable: true })
  instance(@Root() image: JointImage, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.instance.load(image.instanceId);
  }
}
