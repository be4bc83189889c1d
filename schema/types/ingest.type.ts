import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { IngestRejectionCode } from '../../server/domain';

@ObjectType('RejectedItem', { description: 'A file or manifest row that was not stored, and why' })
export class RejectedItemType {
  @Field({ description: '"line 7" for a manifest row, the file or part name for an object' })
  source: string;

  @Field(() => IngestRejectionCode)
  code: IngestRejectionCode;

  @Field()
  reason: string;
}

@ObjectType('ManifestResult', { description: 'A manifest lands whole or not at all' })
export class ManifestResultType {
  @Field({ description: 'True when every row landed; false when any was rejected (then none landed)' })
  stored: boolean;

  @Field(() => Int, { description: 'Data rows read' })
  rows: number;

  @Field(() => Int)
  created: number;

  @Field(() => Int)
  updated: number;

  @Field(() => [RejectedItemType])
  rejected: RejectedItemType[];
}

@ObjectType('IngestProgress', { description: 'A running or finished DICOM batch of a site' })
export class IngestProgressType {
  @Field({ description: 'The request id of the batch' })
  batchId: string;

  @Field(() => ID)
  siteId: string;

  @Field({ description: 'RUNNING, then STORED, REJECTED (nothing stored) or FAILED' })
  status: string;

  @Field(() => Int)
  objectsTotal: number;

  @Field(() => Int)
  objectsDone: number;

  @Field(() => Int)
  rejected: number;

  @Field(() => Float, { description: 'Bytes read so far' })
  bytes: number;

  @Field()
  at: string;
}
