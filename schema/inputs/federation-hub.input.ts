import { ArrayMaxSize, IsBoolean, IsIn, IsInt, IsOptional, Matches, Max, MaxLength, Min, ValidateNested } from 'class-validator';
import { Field, Float, InputType, Int } from 'type-graphql';
import { FederatedQueryKind, Level, MetricsGroupBy, Modality, ReaderSlot, Side, Split } from '../../server/domain';

@InputType('FederatedScopeInput', { description: 'The cases every node resolves the same way; empty lists mean all' })
export class FederatedScopeInput {
  @Field(() => [Modality], { nullable: true })
  modalities?: Modality[] | null;

  @Field(() => [String], { nullable: true })
  @IsOptional()
  @ArrayMaxSize(100)
  @MaxLength(64, { each: true })
  features?: string[] | null;

  @Field(() => [Level], { nullable: true })
  levels?: Level[] | null;

  @Field(() => [Side], { nullable: true })
  sides?: Side[] | null;

  @Field(() => [Split], { nullable: true, description: "Splits by name, in each node's latest frozen split version" })
  splits?: Split[] | null;

  @Field(() => Boolean, { nullable: true, description: 'Only confirmed reference grades (default true)' })
  @IsOptional()
  @IsBoolean()
  confirmedOnly?: boolean | null;
}

@InputType('FederatedRaterInput', { description: 'Exactly one: a model by its sha256 (the same file at every node) or a reader slot pooled over each node' })
export class FederatedRaterInput {
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^[0-9a-f]{64}$/)
  modelSha256?: string | null;

  @Field(() => ReaderSlot, { nullable: true })
  readerSlot?: ReaderSlot | null;
}

@InputType('FederatedScoreGridInput', { description: 'A score grid: bins equal steps from lower to upper; results are exact at this resolution' })
export class FederatedScoreGridInput {
  @Field(() => Float)
  lower: number;

  @Field(() => Float)
  upper: number;

  @Field(() => Int)
  @IsInt()
  @Min(1)
  @Max(10_000)
  bins: number;
}

@InputType('FederatedBootstrapInput', { description: 'A Poisson cluster bootstrap: each patient weighted per replicate by a keyed function of the seed' })
export class FederatedBootstrapInput {
  @Field({ description: '8-64 letters, digits, _ or -; the same seed gives the same replicates' })
  @Matches(/^[A-Za-z0-9_-]{8,64}$/)
  seed: string;

  @Field(() => Int, { nullable: true, description: 'Replicates (default 2000, 100 to 100000)' })
  @IsOptional()
  @IsInt()
  @Min(100)
  @Max(100_000)
  replicates?: number | null;
}

@InputType('FederatedQueryInput')
export class FederatedQueryInput {
  @Field(() => FederatedQueryKind)
  kind: FederatedQueryKind;

  @Field(() => FederatedScopeInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  scope?: FederatedScopeInput | null;

  @Field(() => FederatedRaterInput, { nullable: true, description: 'BINARY_COUNTS: whose calls are compared with the reference' })
  @IsOptional()
  @ValidateNested()
  rater?: FederatedRaterInput | null;

  @Field(() => [FederatedRaterInput], {
    nullable: true,
    description: 'AUC: one rater, or two for a paired comparison (first minus second); AGREEMENT: exactly two',
  })
  @IsOptional()
  @ArrayMaxSize(2)
  @ValidateNested({ each: true })
  raters?: FederatedRaterInput[] | null;

  @Field(() => [FederatedScoreGridInput], {
    nullable: true,
    description: "AUC: one grid per rater (a model's probability on [0, 1]; a reader's grades on whole-grade bins, e.g. -0.5 to 4.5 in 5)",
  })
  @IsOptional()
  @ArrayMaxSize(2)
  @ValidateNested({ each: true })
  grids?: FederatedScoreGridInput[] | null;

  @Field(() => FederatedBootstrapInput, {
    nullable: true,
    description: 'BINARY_COUNTS: also Poisson cluster bootstrap intervals (F1, Youden and every proportion)',
  })
  @IsOptional()
  @ValidateNested()
  bootstrap?: FederatedBootstrapInput | null;

  @Field(() => [MetricsGroupBy], { nullable: true, description: 'SITE is added unless siteRows is false (BINARY_COUNTS); AGREEMENT: FEATURE too' })
  @IsOptional()
  @IsIn(Object.values(MetricsGroupBy), { each: true })
  groupBy?: MetricsGroupBy[] | null;

  @Field(() => Boolean, {
    nullable: true,
    description:
      'BINARY_COUNTS: release a row per site (default true: SITE is added to groupBy). false: only pooled rows, secure-summed: the hub never sees one site’s numbers',
  })
  @IsOptional()
  @IsBoolean()
  siteRows?: boolean | null;

  @Field(() => Int, { nullable: true, description: 'BINARY_COUNTS: positive when grade >= threshold (default 1)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10)
  threshold?: number | null;

  @Field(() => [String], { nullable: true, description: 'Registry codes of the sites to ask (default: every member)' })
  @IsOptional()
  @ArrayMaxSize(500)
  @MaxLength(32, { each: true })
  sites?: string[] | null;

  @Field(() => Int, { nullable: true, description: 'k of n: fewer contributions by the deadline give INSUFFICIENT (default 1)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  minSites?: number | null;

  @Field(() => Int, { nullable: true, description: 'Seconds from now to the deadline (default 3600, at most 30 days)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(30 * 86_400)
  deadlineSeconds?: number | null;
}

@InputType('HubRunInput', {
  description: "At a hub: how the node's statistics query is asked of the member sites (reuses an identical recent federated query; waits up to waitSeconds)",
})
export class HubRunInput {
  @Field(() => [String], { nullable: true, description: 'Registry codes (default: every member)' })
  @IsOptional()
  @ArrayMaxSize(500)
  @MaxLength(32, { each: true })
  sites?: string[] | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  minSites?: number | null;

  @Field(() => Int, { nullable: true, description: 'Deadline of each federated query (default 600)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(30 * 86_400)
  deadlineSeconds?: number | null;

  @Field(() => Int, { nullable: true, description: 'How long this call waits for the answer (default 60, at most 300); RUNNING after it' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(300)
  waitSeconds?: number | null;

  @Field(() => Int, { nullable: true, description: 'Reuse an identical federated query at most this old (default 86400); 0: always ask anew' })
  @IsOptional()
  @IsInt()
  @Min(0)
  maxAgeSeconds?: number | null;

  @Field(() => Int, { nullable: true, description: "Bins of the model's score grid on [0, 1] for the AUC (default 100)" })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10_000)
  scoreBins?: number | null;
}
