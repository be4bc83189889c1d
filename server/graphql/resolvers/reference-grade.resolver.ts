import { Arg, Args, Authorized, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ReferenceGradeFilterInput } from '../../../schema/inputs/filter.input';
import { PageArgs } from '../../../schema/inputs/page.args';
import { ConfirmReferenceGradesInput, ReviseReferenceGradeInput } from '../../../schema/inputs/reference-grade.input';
import { JointType } from '../../../schema/types/patient.type';
import { ReaderType } from '../../../schema/types/reader.type';
import { ReferenceGradeConnection, ReferenceGradeType } from '../../../schema/types/reading.type';
import { Role } from '../../domain';
import type { ReferenceGrade } from '../../entities';
import type { ReferenceService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver(() => ReferenceGradeType)
export class ReferenceGradeResolver {
  constructor(private readonly referenceService: ReferenceService) {}

  @Authorized(Role.COORDINATOR, Role.READER)
  @Query(() => ReferenceGradeConnection)
  referenceGrades(
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => ReferenceGradeFilterInput, { nullable: true }) filter: ReferenceGradeFilterInput | null,
    @Args() page: PageArgs,
  ) {
    return this.referenceService.listReferenceGrades(ctx, filter ?? {}, page);
  }

  @Authorized(Role.READER)
  @Mutation(() => [ReferenceGradeType], { description: 'Senior group: confirm and lock reference grades you neither read nor decided (all or none)' })
  confirmReferenceGrades(@Ctx() ctx: GraphQLContext, @Arg('input') input: ConfirmReferenceGradesInput) {
    return this.referenceService.confirmReferenceGrades(ctx, input.ids);
  }

  @Authorized(Role.READER)
  @Mutation(() => ReferenceGradeType, {
    description: 'Adjudicator or senior who did not read the cell: change an unconfirmed reference grade (source becomes REVISED)',
  })
  reviseReferenceGrade(@Ctx() ctx: GraphQLContext, @Arg('input') input: ReviseReferenceGradeInput) {
    return this.referenceService.reviseReferenceGrade(ctx, input);
  }

  @FieldResolver(() => JointType, { nullable: true })
  joint(@Root() reference: ReferenceGrade, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.joint.load(reference.jointId);
  }

  @FieldResolver(() => ReaderType, { nullable: true })
  revisedBy(@Root() reference: ReferenceGrade, @Ctx() ctx: GraphQLContext) {
    return reference.revisedById ? ctx.loaders.reader.load(reference.revisedById) : null;
  }

  @FieldResolver(() => ReaderType, { nullable: true })
  confirmedBy(@Root() reference: ReferenceGrade, @Ctx() ctx: GraphQLContext) {
    return reference.confirmedById ? ctx.loaders.reader.load(reference.confirmedById) : null;
  }
}
