import { ArrayMaxSize, IsInt, IsOptional, Max, Min, ValidateNested } from 'class-validator';
import { Field, InputType, Int } from 'type-graphql';

@InputType('ReleaseBudgetInput')
export class ReleaseBudgetInput {
  @Field(() => Int)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  releases: number;

  @Field(() => Int)
  @IsInt()
  @Min(1)
  @Max(3660)
  periodDays: number;
}

@InputType('ReleasePolicyInput', { description: 'A whole new policy: fields left out take the defaults; budget: null means no budget' })
export class ReleasePolicyInput {
  @Field(() => [String], { nullable: true })
  @IsOptional()
  @ArrayMaxSize(20)
  taskKinds?: string[] | null;

  @Field(() => Int, { nullable: true, description: 'At least 3 (no group of one or two patients is ever released)' })
  @IsOptional()
  minGroupPatients?: number | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  maxScoreBins?: number | null;

  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  manualApproval?: boolean | null;

  @Field(() => ReleaseBudgetInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  budget?: ReleaseBudgetInput | null;
}
