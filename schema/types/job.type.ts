import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import type { InferenceJob } from '../../server/entities';
import { Connection } from './page-info.type';

@ObjectType('JobFailure', { description: 'An image the job could not use, and why' })
export class JobFailureType {
  @Field(() => ID)
  jointImageId: string;

  @Field()
  reason: string;
}

@ObjectType('InferenceJob', { description: 'An inference run of a model version over a scope of joint images' })
export class InferenceJobType implements Pick<
  InferenceJob,
  'id' | 'modelVersionId' | 'total' | 'done' | 'failed' | 'provider' | 'error' | 'startedAt' | 'finishedAt' | 'createdAt'
> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  modelVersionId: string;

  @Field({ description: 'QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED' })
  status: string;

  @Field(() => Int, { description: 'Joint x modality items in scope' })
  total: number;

  @Field(() => Int)
  done: number;

  @Field(() => Int)
  failed: number;

  @Field(() => [JobFailureType], { description: 'The first failures (at most 100)' })
  failures: JobFailureType[];

  @Field(() => String, { nullable: true, description: 'The ONNX Runtime execution provider that ran it' })
  provider: string | null;

  @Field(() => String, { nullable: true })
  error: string | null;

  @Field(() => Date, { nullable: true })
  startedAt: Date | null;

  @Field(() => Date, { nullable: true })
  finishedAt: Date | null;

  @Field()
  createdAt: Date;

  @Field(() => Float, { nullable: true, description: 'Items per second since it started' })
  rate: number | null;

  @Field(() => Float, { nullable: true, description: 'Seconds left at the current rate' })
  etaSeconds: number | null;
}

@ObjectType('InferenceJobConnection')
export class InferenceJobConnection extends Connection(InferenceJobType) {}
