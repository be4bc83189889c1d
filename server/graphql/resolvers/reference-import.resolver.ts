import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { PageArgs } from '../../../schema/inputs/page.args';
import { ReaderType } from '../../../schema/types/reader.type';
import { ReferenceGradeType } from '../../../schema/types/reading.type';
import {
  ReferenceConfirmationType,
  ReferenceImportConnection,
  ReferenceImportResultType,
  ReferenceImportType,
} from '../../../schema/types/reference-import.type';
import { SiteType } from '../../../schema/types/site.type';
import { Role } from '../../domain';
import type { ReferenceGrade, ReferenceImport } from '../../entities';
import type { ReferenceImportService } from '../../services';
import type { ReferenceConfirmation } from '../../services/reference-import.service';
import type { GraphQLContext } from '../context';

/** Everyone but the hub sees the provenance of imports (no grades in it); counts follow the caller's site scope. */
const PROVENANCE_ROLES = [Role.COORDINATOR, Role.READER, Role.STATISTICIAN, Role.ENGINEER];

@Resolver(() => ReferenceImportType)
export class ReferenceImportResolver {
  constructor(private readonly referenceImportService: ReferenceImportService) {}

  @Authorized(Role.COORDINATOR)
  @Mutation(() => ReferenceImportResultType, {
    description:
      'Reference-standard file (CSV: site,patient,level,side,modality,feature,grade,source; patient = pseudonym, grade a number or NA, source CONSENSUS_PANEL or EXTERNAL_READ). Lands unconfirmed; all rows or none.',
  })
  importReferenceStandard(@Ctx() ctx: GraphQLContext, @Arg('csv') csv: string) {
    return this.referenceImportService.importReferenceStandard(ctx, csv);
  }

  @Authorized(Role.READER)
  @Mutation(() => ReferenceImportType, { description: 'Senior group: confirm and lock every grade of the import at your site' })
  confirmReferenceImport(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.referenceImportService.confirmReferenceImport(ctx, id);
  }

  @Authorized(...PROVENANCE_ROLES)
  @Query(() => ReferenceImportConnection)
  referenceImports(@Ctx() ctx: GraphQLContext, @Args() page: PageArgs) {
    return this.referenceImportService.listReferenceImports(ctx, page);
  }

  @Authorized(...PROVENANCE_ROLES)
  @Query(() => ReferenceImportType)
  referenceImport(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.referenceImportService.getReferenceImport(ctx, id);
  }

  @FieldResolver(() => Date)
  importedAt(@Root() row: ReferenceImport) {
    return row.createdAt;
  }

  @FieldResolver(() => Int, { description: 'Its grades at your sites' })
  async grades(@Root() row: ReferenceImport, @Ctx() ctx: GraphQLContext) {
    return (await this.referenceImportService.importProgress(ctx, row.id)).grades;
  }

  @FieldResolver(() => Int, { description: 'Of those, the ones the senior group confirmed' })
  async confirmedGrades(@Root() row: ReferenceImport, @Ctx() ctx: GraphQLContext) {
    return (await this.referenceImportService.importProgress(ctx, row.id)).confirmedGrades;
  }

  @FieldResolver(() => [ReferenceConfirmationType], { description: 'Who confirmed its grades at your sites, per site and senior' })
  confirmations(@Root() row: ReferenceImport, @Ctx() ctx: GraphQLContext) {
    return this.referenceImportService.confirmations(ctx, row.id);
  }
}

@Resolver(() => ReferenceConfirmationType)
export class ReferenceConfirmationResolver {
  @FieldResolver(() => SiteType, { nullable: true })
  site(@Root() row: ReferenceConfirmation, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.site.load(row.siteId);
  }

  @FieldResolver(() => ReaderType, { nullable: true })
  confirmedBy(@Root() row: ReferenceConfirmation, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.reader.load(row.confirmedById);
  }
}

/** The provenance of a reference grade: the file it came from, if any. */
@Resolver(() => ReferenceGradeType)
export class ReferenceGradeImportResolver {
  @FieldResolver(() => ReferenceImportType, {
    nullable: true,
    name: 'import',
    description: 'The reference-standard file it came from; null for the reading workflow',
  })
  referenceImport(@Root() reference: ReferenceGrade, @Ctx() ctx: GraphQLContext) {
    return reference.importId ? ctx.loaders.referenceImport.load(reference.importId) : null;
  }
}
