import { ArrayMaxSize, IsBoolean, IsIn, IsInt, IsOptional, Matches, Max, MaxLength, Min, ValidateNested } from 'class-validator';
import { Field, InputType, Int } from 'type-graphql';
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

  @Field(() => [MetricsGroupBy], { nullable: true, description: 'BINARY_COUNTS: SITE is added unless siteRows is false' })
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
