import { IsInt, IsOptional, IsUUID, Length } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';
import { Modality } from '../../server/domain';

@InputType('RecordReadingInput', { description: 'Give either grade or notAssessable: true' })
export class RecordReadingInput {
  @Field(() => ID)
  @IsUUID()
  jointId: string;

  @Field(() => Modality)
  modality: Modality;

  @Field()
  @Length(1, 48)
  feature: string;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  grade?: number | null;

  @Field(() => Boolean, { nullable: true })
  notAssessable?: boolean | null;
}

@InputType('AdjudicateInput')
export class AdjudicateInput extends RecordReadingInput {
  @Field()
  @Length(1, 2000)
  rationale: string;
}
