import { ArrayMaxSize, ArrayMinSize, IsInt, IsOptional, IsUUID, Length, Matches, Max, Min, ValidateNested } from 'class-validator';
import { Field, Float, ID, InputType, Int } from 'type-graphql';
import { ExclusionReason, Modality, ReaderRole, ReaderSlot, Role, Sex, Split } from '../../server/domain';
import type { Site } from '../../server/entities';

/** Codes are short, stable identifiers users type: letters, digits, dash and underscore. */
const CODE = /^[A-Za-z0-9_-]+$/;

@InputType('CreateSiteInput')
export class CreateSiteInput implements Pick<Site, 'code' | 'name'> {
  @Field()
  @Length(1, 32)
  @Matches(CODE, { message: 'code may hold letters, digits, - and _ only' })
  code: string;

  @Field()
  @Length(1, 200)
  name: string;
}

@InputType('CreateReaderInput')
export class CreateReaderInput {
  @Field()
  @Length(1, 32)
  @Matches(CODE, { message: 'code may hold letters, digits, - and _ only' })
  code: string;

  @Field(() => ReaderRole)
  role: ReaderRole;

  @Field(() => Int)
  @IsInt()
  @Min(0)
  @Max(70)
  yearsOfExperience: number;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID()
  siteId?: string | null;

  @Field(() => ReaderSlot, {
    nullable: true,
    description: 'Reader 1 or 2 of the site (READER role only); omitted, a READER takes the first free slot of the site, or none if both are taken',
  })
  slot?: ReaderSlot | null;
}

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

@InputType('ReviseReferenceGradeInput')
export class ReviseReferenceGradeInput {
  @Field(() => ID)
  @IsUUID()
  id: string;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  grade?: number | null;

  @Field(() => Boolean, { nullable: true })
  notAssessable?: boolean | null;
}

@InputType('ConfirmReferenceGradesInput')
export class ConfirmReferenceGradesInput {
  @Field(() => [ID])
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @IsUUID('all', { each: true })
  ids: string[];
}

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

@InputType('CreateApiTokenInput')
export class CreateApiTokenInput {
  @Field()
  @Length(1, 100)
  name: string;

  @Field(() => Role)
  role: Role;

  @Field(() => ID, { nullable: true, description: 'Required for COORDINATOR; READER defaults to the reader’s site' })
  @IsOptional()
  @IsUUID()
  siteId?: string | null;

  @Field(() => ID, { nullable: true, description: 'Required for READER' })
  @IsOptional()
  @IsUUID()
  readerId?: string | null;

  @Field(() => Date, {
    nullable: true,
    description: 'From this instant the token authenticates nothing and its open subscriptions end; default: until revoked',
  })
  expiresAt?: Date | null;
}
