import { IsInt, IsOptional, IsUUID, Length } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';
import { Modality } from '../../server/domain';

/**
 * A grade as a reader, an adjudicator or the reference standard gives it: a grade, or notAssessable: true. Only its
 * subclasses appear in the SDL: no field or argument names this type, and the schema holds reachable types only.
 */
@InputType()
export abstract class GradeValueInput {
  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  grade?: number | null;

  @Field(() => Boolean, { nullable: true })
  notAssessable?: boolean | null;
}

@InputType('RecordReadingInput', { description: 'Give either grade or notAssessable: true' })
export class RecordReadingInput extends GradeValueInput {
  @Field(() => ID)
  @IsUUID()
  jointId: string;

  @Field(() => Modality)
  modality: Modality;

  @Field()
  @Length(1, 48)
  feature: string;
}

@InputType('AdjudicateInput')
export class AdjudicateInput extends RecordReadingInput {
  @Field()
  @Length(1, 2000)
  rationale: string;
}
