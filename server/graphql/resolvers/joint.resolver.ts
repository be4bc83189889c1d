import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import { JointFilterInput } from '../../../schema/inputs/filter.input';
import { PageArgs } from '../../../schema/inputs/page.args';
import { JointImageType } from '../../../schema/types/imaging.type';
import { JointConnection, JointType, PatientType } from '../../../schema/types/patient.type';
import { ReadingType, ReferenceGradeType } from '../../../schema/types/reading.type';
import { Role } from '../../domain';
import type { Joint } from '../../entities';
import type { PatientService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver(() => JointType)
export class JointResolver {
  constructor(private readonly patientService: PatientService) {}

  @Authorized(Role.COORDINATOR, Role.READER)
  @Query(() => JointConnection)
  joints(@Ctx() ctx: GraphQLContext, @Arg('filter', () => JointFilterInput, { nullable: true }) filter: JointFilterInput | null, @Args() page: PageArgs) {
    return this.patientService.listJoints(ctx, filter ?? {}, page);
  }

  // Any token: the service refuses other roles (FORBIDDEN) itself, so that the refusal is audited like the read.
  @Authorized()
  @Query(() => JointType)
  joint(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.patientService.getJoint(ctx, id);
  }

  @FieldResolver(() => PatientType, { nullable: true })
  patient(@Root() joint: Joint, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.patient.load(joint.patientId);
  }

  @FieldResolver(() => [ReadingType], { description: 'Readings you may see: a blinded reader sees another’s only after reading the cell' })
  readings(@Root() joint: Joint, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.readingsByJoint.load(joint.id);
  }

  @FieldResolver(() => [ReferenceGradeType], { description: 'Not for blinded readers (FORBIDDEN)' })
  referenceGrades(@Root() joint: Joint, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.referenceGradesByJoint.load(joint.id);
  }

  @FieldResolver(() => [JointImageType])
  images(@Root() joint: Joint, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.jointImagesByJoint.load(joint.id);
  }
}
