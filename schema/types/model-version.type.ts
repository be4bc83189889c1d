import { Field, ID, ObjectType } from 'type-graphql';
import type { ModelVersion } from '../../server/entities';
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
