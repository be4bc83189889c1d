import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { SplitAssignmentFilterInput } from '../../../schema/inputs/filter.input';
import { PageArgs } from '../../../schema/inputs/page.args';
import { CreateSplitVersionInput, ReassignPatientSplitInput } from '../../../schema/inputs/split.input';
import { PatientType } from '../../../schema/types/patient.type';
import { SplitAssignmentConnection, SplitAssignmentType, SplitCountType, SplitVersionConnection, SplitVersionType } from '../../../schema/types/split.type';
import { Role } from '../../domain';
import type { SplitAssignment, SplitVersion } from '../../entities';
import type { SplitService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver(() => SplitVersionType)
export class SplitVersionResolver {
  constructor(private readonly splitService: SplitService) {}

  @Authorized()
  @Query(() => SplitVersionConnection)
  splitVersions(@Ctx() ctx: GraphQLContext, @Args() page: PageArgs) {
    return this.splitService.listSplitVersions(ctx, page);
  }

  @Authorized()
  @Query(() => SplitVersionType)
  splitVersion(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.splitService.getSplitVersion(ctx, id);
  }

  @Authorized(Role.COORDINATOR, Role.READER)
  @Query(() => SplitAssignmentConnection)
  splitAssignments(@Ctx() ctx: GraphQLContext, @Arg('filter', () => SplitAssignmentFilterInput) filter: SplitAssignmentFilterInput, @Args() page: PageArgs) {
    return this.splitService.listAssignments(ctx, filter, page);
  }

  @Authorized(Role.STATISTICIAN)
  @Mutation(() => SplitVersionType, { description: 'Seeded, by patient, stratified by site; excluded patients are left out' })
  createSplitVersion(@Ctx() ctx: GraphQLContext, @Arg('input') input: CreateSplitVersionInput) {
    return this.splitService.createSplitVersion(ctx, input);
  }

  @Authorized(Role.STATISTICIAN)
  @Mutation(() => SplitVersionType, { description: 'After this the split version never changes' })
  freezeSplitVersion(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.splitService.freezeSplitVersion(ctx, id);
  }

  @Authorized(Role.STATISTICIAN)
  @Mutation(() => SplitAssignmentType, { description: 'Move one patient before freezing (SPLIT_FROZEN after)' })
  reassignPatientSplit(@Ctx() ctx: GraphQLContext, @Arg('input') input: ReassignPatientSplitInput) {
    return this.splitService.reassignPatient(ctx, input);
  }

  @Authorized(Role.STATISTICIAN)
  @Mutation(() => Boolean, { description: 'Delete an unfrozen split version (SPLIT_FROZEN after freezing)' })
  deleteSplitVersion(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.splitService.deleteSplitVersion(ctx, id);
  }

  @FieldResolver(() => Boolean)
  frozen(@Root() version: SplitVersion) {
    return version.frozenAt !== null;
  }

  @FieldResolver(() => [SplitCountType], { description: 'Patients per site and split (sites in your scope)' })
  counts(@Root() version: SplitVersion, @Ctx() ctx: GraphQLContext) {
    return this.splitService.countAssignments(ctx, version.id);
  }
}

@Resolver(() => SplitAssignmentType)
export class SplitAssignmentResolver {
  @FieldResolver(() => PatientType, { nullable: true })
  patient(@Root() assignment: SplitAssignment, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.patient.load(assignment.patientId);
  }
}
