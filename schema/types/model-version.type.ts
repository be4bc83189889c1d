import { Field, ID, Int, ObjectType } from 'type-graphql';
import type { ModelVersion } from '../../server/entities';
import { RejectedItemType } from './ingest.type';
import { Connection } from './page-info.type';

@ObjectType('ModelVersion', { description: 'An ONNX model version or a model run elsewhere (no file); immutable' })
export class ModelVersionType implements Pick<ModelVersion, 'id' | 'name' | 'version' | 'description' | 'sha256' | 'createdAt'> {
  @Field(() => ID)
  id: string;

  @Field()
  name: string;

  @Field()
  version: string;

  @Field(() => String, { nullable: true })
  description: string | null;

  @Field(() => String, { nullable: true, description: 'sha256 of the ONNX file; null for an external model' })
  sha256: string | null;

  @Field()
  createdAt: Date;
}

@ObjectType('ModelVersionConnection')
export class ModelVersionConnection extends Connection(ModelVersionType) {}

@ObjectType('PredictionImportResult', {
  description: 'A predictions file lands whole or not at all; predictions are immutable, so rows already stored must be equal (docs/ingest.md)',
})
export class PredictionImportResultType {
  @Field({ description: 'True when every row is stored (created now or equal to what was there); false when any was rejected (then none landed)' })
  stored: boolean;

  @Field(() => Int, { description: 'Data rows read' })
  rows: number;

  @Field(() => Int, { description: 'Rows for cells the model version had no prediction of' })
  created: number;

  @Field(() => Int, { description: 'Rows equal to the stored prediction: nothing written for them' })
  unchanged: number;

  @Field(() => Int, { description: 'Rows whose probabilities carried rounding residue (within 1e-4): clipped into [0, 1] and renormalised to sum 1' })
  clipped: number;

  @Field(() => [RejectedItemType])
  rejected: RejectedItemType[];
}
