import { IsInt, IsOptional, IsUUID, Length, Max, Min, ValidateNested } from 'class-validator';
import { Field, Float, ID, InputType, Int } from 'type-graphql';
import { Split } from '../../server/domain';

@InputType('SplitRatiosInput')
export class SplitRatiosInput {
  @Field(() => Float)
  @Min(0)
  @Max(1)
  train: number;

  @Field(() => Float)
  @Min(0)
  @Max(1)
  validation: number;

  @Field(() => Float)
  @Min(0)
  @Max(1)
  test: number;
}

@InputType('CreateSplitVersionInput')
export class CreateSplitVersionInput {
  @Field()
  @Length(1, 100)
  name: string;

  @Field(() => Int, { description: 'The same seed over the same cohort gives the same split' })
  @IsInt()
  seed: number;

  @Field(() => SplitRatiosInput, { nullable: true, description: 'Default 0.70 / 0.15 / 0.15' })
  @IsOptional()
  @ValidateNested()
  ratios?: SplitRatiosInput | null;
}

@InputType('ReassignPatientSplitInput')
export class ReassignPatientSplitInput {
  @Field(() => ID)
  @IsUUID()
  splitVersionId: string;

  @Field(() => ID)
  @IsUUID()
  patientId: string;

  @Field(() => Split)
  split: Split;
}
