import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { PatientFilterInput } from '../../../schema/inputs/filter.input';
import { PageArgs } from '../../../schema/inputs/page.args';
import { CreatePatientInput, SetExclusionReasonsInput } from '../../../schema/inputs/patient.input';
import { StudyType } from '../../../schema/types/imaging.type';
import { JointType, PatientConnection, PatientType } from '../../../schema/types/patient.type';
import { SiteType } from '../../../schema/types/site.type';
import { Role } from '../../domain';
import type { Patient } from '../../entities';
import type { PatientService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver(() => PatientType)
export class PatientResolver {
  constructor(private readonly patientService: PatientService) {}

  @Authorized(Role.COORDINATOR, Role.READER)
  @Query(() => PatientConnection)
  patients(@Ctx() ctx: GraphQLContext, @Arg('filter', () => PatientFilterInput, { nullable: true }) filter: PatientFilterInput | null, @Args() page: PageArgs) {
    return this.patientService.listPatients(ctx, filter ?? {}, page);
  }

  // Any token: the service refuses other roles (FORBIDDEN) itself, so that the refusal is audited like the read.
  @Authorized()
  @Query(() => PatientType)
  patient(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.patientService.getPatient(ctx, id);
  }

  @Authorized(Role.COORDINATOR)
  @Mutation(() => PatientType)
  createPatient(@Ctx() ctx: GraphQLContext, @Arg('input') input: CreatePatientInput) {
    return this.patientService.createPatient(ctx, input);
  }

  @Authorized(Role.COORDINATOR)
  @Mutation(() => PatientType)
  setExclusionReasons(@Ctx() ctx: GraphQLContext, @Arg('input') input: SetExclusionReasonsInput) {
    return this.patientService.setExclusionReasons(ctx, input.patientId, input.exclusionReasons);
  }

  @FieldResolver(() => SiteType)
  site(@Root() patient: Patient, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.site.load(patient.siteId);
  }

  @FieldResolver(() => Boolean, { description: 'True when the patient has no exclusion reason' })
  eligible(@Root() patient: Patient) {
    return patient.exclusionReasons.length === 0;
  }

  @FieldResolver(() => [JointType])
  joints(@Root() patient: Patient, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.jointsByPatient.load(patient.id);
  }

  @FieldResolver(() => [StudyType])
  studies(@Root() patient: Patient, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.studiesByPatient.load(patient.id);
  }
}
