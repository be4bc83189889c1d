import { ArrayMaxSize, IsInt, IsOptional, IsUUID, Matches, Max, Min } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';
import { Modality } from '../../server/domain';

@InputType('FederatedInferenceInput', { description: 'A model version the hub holds, and where and on what to run it' })
export class FederatedInferenceInput {
  @Field(() => ID, { description: "The hub's model version (registered at the hub: POST /api/model-versions)" })
  @IsUUID()
  modelVersionId: string;

  @Field(() => [String], { nullable: true, description: 'Registry codes; default every member' })
  @IsOptional()
  @ArrayMaxSize(500)
  @Matches(/^[A-Za-z0-9_-]{1,64}$/, { each: true })
  sites?: string[] | null;

  @Field(() => [Modality], { nullable: true, description: 'Modalities to run; default every modality the manifest preprocesses' })
  modalities?: Modality[] | null;

  @Field(() => Int, { nullable: true, description: 'Default 604800 (7 days); at most 2592000 (30 days)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(2_592_000)
  deadlineSeconds?: number | null;
}
