import { Arg, Authorized, Ctx, ID, Mutation, Resolver } from 'type-graphql';
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

  @Authorized(Role.COORDINATOR)
  @Mutation(() => ManifestResultType, {
    description: 'Joint images manifest (CSV: patient_id,level,side,sop_instance_uid,frame,x,y,width,height) for stored DICOM; all rows or none.',
  })
  importJointImagesManifest(@Ctx() ctx: GraphQLContext, @Arg('siteId', () => ID) siteId: string, @Arg('csv') csv: string) {
    return this.manifestService.importJointImages(ctx, siteId, csv);
  }

  @Authorized(Role.COORDINATOR)
  @Mutation(() => ManifestResultType, {
    description: 'Readings manifest (CSV: reader,patient_id,level,side,modality,feature,grade with grade a number or NA), under the reading rules; all rows or none.',
  })
  importReadingsManifest(@Ctx() ctx: GraphQLContext, @Arg('siteId', () => ID) siteId: string, @Arg('csv') csv: string) {
    return this.manifestService.importReadings(ctx, siteId, csv);
  }
}
