import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { GradeFilterInput, ReadingFilterInput } from '../../../schema/inputs/filter.input';
import { PageArgs } from '../../../schema/inputs/page.args';
import { AdjudicateInput, RecordReadingInput } from '../../../schema/inputs/reading.input';
import { JointType } from '../../../schema/types/patient.type';
import { ReaderType } from '../../../schema/types/reader.type';
import { AdjudicationConnection, AdjudicationQueueConnection, AdjudicationType, ReadingConnection, ReadingType } from '../../../schema/types/reading.type';
import { Role } from '../../domain';
import type { Adjudication, Reading } from '../../entities';
import type { ReadingService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver(() => ReadingType)
export class ReadingResolver {
  constructor(private readonly readingService: ReadingService) {}

  @Authorized(Role.COORDINATOR, Role.READER)
  @Query(() => ReadingConnection)
  readings(@Ctx() ctx: GraphQLContext, @Arg('filter', () => ReadingFilterInput, { nullable: true }) filter: ReadingFilterInput | null, @Args() page: PageArgs) {
    return this.readingService.listReadings(ctx, filter ?? {}, page);
  }

  // Any token: the service refuses other roles (FORBIDDEN) itself, so that the refusal is audited like the read.
  @Authorized()
  @Query(() => ReadingType)
  reading(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.readingService.getReading(ctx, id);
  }

  @Authorized(Role.READER)
  @Mutation(() => ReadingType, { description: 'Record your own grade; a reader grades each joint x modality x feature once' })
  recordReading(@Ctx() ctx: GraphQLContext, @Arg('input') input: RecordReadingInput) {
    return this.readingService.recordReading(ctx, input);
  }

  @FieldResolver(() => JointType, { nullable: true })
  joint(@Root() reading: Reading, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.joint.load(reading.jointId);
  }

  @FieldResolver(() => ReaderType, { nullable: true })
  reader(@Root() reading: Reading, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.reader.load(reading.readerId);
  }
}

@Resolver(() => AdjudicationType)
export class AdjudicationResolver {
  constructor(private readonly readingService: ReadingService) {}

  @Authorized(Role.COORDINATOR, Role.READER)
  @Query(() => AdjudicationQueueConnection, { description: 'Joint-features whose two readers disagree and await adjudication' })
  adjudicationQueue(
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => GradeFilterInput, { nullable: true }) filter: GradeFilterInput | null,
    @Args() page: PageArgs,
  ) {
    return this.readingService.adjudicationQueue(ctx, filter ?? {}, page);
  }

  @Authorized(Role.COORDINATOR, Role.READER)
  @Query(() => AdjudicationConnection)
  adjudications(
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => GradeFilterInput, { nullable: true }) filter: GradeFilterInput | null,
    @Args() page: PageArgs,
  ) {
    return this.readingService.listAdjudications(ctx, filter ?? {}, page);
  }

  @Authorized(Role.READER)
  @Mutation(() => AdjudicationType, { description: 'Decide a disagreement you did not read yourself; it becomes the reference grade' })
  adjudicate(@Ctx() ctx: GraphQLContext, @Arg('input') input: AdjudicateInput) {
    return this.readingService.adjudicate(ctx, input);
  }

  @FieldResolver(() => JointType, { nullable: true })
  joint(@Root() adjudication: Adjudication, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.joint.load(adjudication.jointId);
  }

  @FieldResolver(() => ReaderType, { nullable: true })
  adjudicator(@Root() adjudication: Adjudication, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.reader.load(adjudication.adjudicatorId);
  }
}
