import { Field, Int, ObjectType } from 'type-graphql';
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
