import { ArrayMaxSize, IsInt, IsOptional, IsUUID, Matches, Max, Min, ValidateNested } from 'class-validator';
import { Field, Float, ID, InputType, Int } from 'type-graphql';
import { Level, MetricsGroupBy, Modality, ReaderRole, ReaderSlot, Side, Split } from '../../server/domain';

@InputType('RaterInput', {
  description:
    'Exactly one: a model version (its predictions), a reader (their grades), a slot pooled across sites, or every reader of a role (reader-averaged)',
})
export class RaterInput {
  @Field(() => String, { nullable: true, description: "At a hub: a model by its sha256 (the same file at every node; ids are each node's own)" })
  @IsOptional()
  @Matches(/^[0-9a-f]{64}$/)
  modelSha256?: string | null;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID()
  modelVersionId?: string | null;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID()
  readerId?: string | null;

  @Field(() => ReaderSlot, {
    nullable: true,
    description: 'Every reading of the readers in this slot, pooled across sites as one rater ("reader 1 of every site")',
  })
  readerSlot?: ReaderSlot | null;

  @Field(() => ReaderRole, {
    nullable: true,
    description: 'Every reader of this role: each reader’s metric on their own cases, averaged over readers, with a patient-cluster bootstrap interval',
  })
  readerRole?: ReaderRole | null;
}

@InputType('MetricsScope')
export class MetricsScopeInput {
  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @IsUUID('all', { each: true })
  @ArrayMaxSize(1000)
  siteIds?: string[] | null;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID()
  splitVersionId?: string | null;

  @Field(() => [Split], { nullable: true })
  splits?: Split[] | null;

  @Field(() => [Modality], { nullable: true })
  modalities?: Modality[] | null;

  @Field(() => [String], { nullable: true })
  @IsOptional()
  @ArrayMaxSize(100)
  features?: string[] | null;

  @Field(() => [Level], { nullable: true })
  levels?: Level[] | null;

  @Field(() => [Side], { nullable: true })
  sides?: Side[] | null;
}

/** Options shared by metrics and compare: scope, threshold, grouping, intervals. */
@InputType()
abstract class AnalysisOptionsInput {
  @Field(() => MetricsScopeInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  scope?: MetricsScopeInput | null;

  @Field(() => Int, { nullable: true, description: 'Positive when grade >= threshold (default 1); a model scores P(grade >= threshold)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  threshold?: number | null;

  @Field(() => [MetricsGroupBy], { nullable: true })
  groupBy?: MetricsGroupBy[] | null;

  @Field(() => Float, { nullable: true, description: 'Confidence level (default 0.95)' })
  @IsOptional()
  @Min(0.5)
  @Max(0.999)
  level?: number | null;

  @Field(() => Boolean, { nullable: true, description: 'Patient-clustered intervals (default true)' })
  clustered?: boolean | null;

  @Field(() => Int, { nullable: true, description: 'Bootstrap replicates (default 2000)' })
  @IsOptional()
  @IsInt()
  @Min(200)
  @Max(20000)
  bootstrapReplicates?: number | null;

  @Field(() => Int, { nullable: true, description: 'Bootstrap seed (default 1): the same seed, the same intervals' })
  @IsOptional()
  @IsInt()
  seed?: number | null;

  @Field(() => Boolean, { nullable: true, description: 'Only confirmed reference grades (default true)' })
  confirmedOnly?: boolean | null;
}

@InputType('MetricsInput')
export class MetricsInput extends AnalysisOptionsInput {
  @Field(() => RaterInput)
  @ValidateNested()
  rater: RaterInput;
}

@InputType('CompareInput', { description: 'A model version against readers on exactly the cases both graded' })
export class CompareInput extends AnalysisOptionsInput {
  @Field(() => ID)
  @IsUUID()
  modelVersionId: string;

  @Field(() => [ID], { nullable: true, description: 'Each reader on their own; default: every reader who graded cases in scope' })
  @IsOptional()
  @IsUUID('all', { each: true })
  @ArrayMaxSize(100)
  readerIds?: string[] | null;

  @Field(() => ReaderSlot, { nullable: true, description: 'Instead of readerIds: the slot’s readers pooled across sites, as one rater' })
  readerSlot?: ReaderSlot | null;

  @Field(() => ReaderRole, { nullable: true, description: 'Instead of readerIds: the reader average of every reader of the role (MRMC)' })
  readerRole?: ReaderRole | null;
}
