import { IsInt, IsOptional, IsUUID, Length, Matches, Max, Min } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';
import { ExclusionReason, Sex } from '../../server/domain';
import { CODE } from './code';

@InputType('CreatePatientInput', { description: 'Creates the patient and their ten facet joints' })
export class CreatePatientInput {
  @Field(() => ID)
  @IsUUID()
  siteId: string;

  @Field({ description: 'A study pseudonym, never a name or hospital ID' })
  @Length(1, 64)
  @Matches(CODE, { message: 'pseudonym may hold letters, digits, - and _ only' })
  pseudonym: string;

  @Field(() => Sex, { nullable: true })
  sex?: Sex | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(120)
  ageAtFirstImaging?: number | null;

  @Field(() => [ExclusionReason], { nullable: true })
  exclusionReasons?: ExclusionReason[] | null;
}

@InputType('SetExclusionReasonsInput')
export class SetExclusionReasonsInput {
  @Field(() => ID)
  @IsUUID()
  patientId: string;

  @Field(() => [ExclusionReason], { description: 'Empty makes the patient eligible' })
  exclusionReasons: ExclusionReason[];
}
