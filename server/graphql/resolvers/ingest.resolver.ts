import { Arg, Authorized, Ctx, ID, Mutation, Resolver, Root, Subscription } from 'type-graphql';
import { IngestProgressType, ManifestResultType } from '../../../schema/types/ingest.type';
import { Role } from '../../domain';
import type { IngestProgressEvent } from '../../pubsub/topics';
import type { ManifestService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver()
export class IngestResolver {
  constructor(private readonly manifestService: ManifestService) {}

  @Authorized(Role.COORDINATOR)
  @Mutation(() => ManifestResultType, {
    description:
      'Patients manifest (CSV: site,patient_id,pseudonym,sex,age,eligible,exclusion_reasons). Creates or updates patients by the keyed hash of patient_id; all rows or none.',
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
    description:
      'Readings manifest (CSV: reader,patient_id,level,side,modality,feature,grade with grade a number or NA), under the reading rules; all rows or none.',
  })
  importReadingsManifest(@Ctx() ctx: GraphQLContext, @Arg('siteId', () => ID) siteId: string, @Arg('csv') csv: string) {
    return this.manifestService.importReadings(ctx, siteId, csv);
  }

  @Subscription(() => IngestProgressType, {
    // Checked once, when the subscription starts: a coordinator follows their own site only.
    subscribe: ({ args, context }) => (context as GraphQLContext).streams.ingestProgress((args as { siteId: string }).siteId),
    description: 'Progress of DICOM batches stored into a site, from any server of the node (PostgreSQL LISTEN/NOTIFY)',
  })
  ingestProgress(@Root() event: IngestProgressEvent, @Arg('siteId', () => ID) _siteId: string): IngestProgressEvent {
    return event;
  }
}
