import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import { ManifestResultType } from '../../../schema/types/ingest.type';
import { Role } from '../../domain';
import type { ManifestService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver()
export class IngestResolver {
  constructor(private readonly manifestService: ManifestService) {}

  @Authorized(Role.COORDINATOR)
  @Mutation(() => ManifestResultType, {
    description: 'Patients manifest (CSV: site,patient_id,pseudonym,sex,age,eligible,exclusion_reasons). Creates or updates patients by the keyed hash of patient_id; all rows or none.',
  })
  importPatientsManifest(@Ctx() ctx: GraphQLContext, @Arg('csv') csv: string) {
    return this.manifestService.importPatients(ctx, csv);
  }
}
