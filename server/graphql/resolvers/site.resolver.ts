import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { CreateSiteInput } from '../../../schema/inputs/site.input';
import { PageArgs } from '../../../schema/inputs/page.args';
import { PatientConnection } from '../../../schema/types/patient.type';
import { SiteConnection, SiteType } from '../../../schema/types/site.type';
import { Role } from '../../domain';
import type { Site } from '../../entities';
import type { PatientService, SiteService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver(() => SiteType)
export class SiteResolver {
  constructor(
    private readonly siteService: SiteService,
    private readonly patientService: PatientService,
  ) {}

  @Authorized()
  @Query(() => SiteConnection)
  sites(@Ctx() ctx: GraphQLContext, @Args() page: PageArgs) {
    return this.siteService.listSites(ctx, page);
  }

  @Authorized()
  @Query(() => SiteType)
  site(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.siteService.getSite(ctx, id);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => SiteType)
  createSite(@Ctx() ctx: GraphQLContext, @Arg('input') input: CreateSiteInput) {
    return this.siteService.createSite(ctx, input);
  }

  @Authorized(Role.COORDINATOR, Role.READER)
  @FieldResolver(() => PatientConnection, { description: 'Patients of this site you may see' })
  patients(@Root() site: Site, @Ctx() ctx: GraphQLContext, @Args() page: PageArgs) {
    return this.patientService.patientsBySite(ctx, site.id, page);
  }
}
