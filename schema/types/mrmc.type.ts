import { Field, Float, Int, ObjectType } from 'type-graphql';
import { Modality, SuppressionReason } from '../../server/domain';
import { MrmcCovariance, MrmcFigureOfMerit } from '../inputs/mrmc.input';
import { DisclosureType, RocCurveType } from './metrics.type';

@ObjectType('MrmcDifference', { description: 'Model minus reader (the reader average, or one reader) in the figure of merit, with its interval and test' })
export class MrmcDifferenceType {
  @Field(() => Float)
  estimate: number;

  @Field(() => Float, { nullable: true, description: 'Null where the variance estimate is negative (small samples)' })
  stdErr: number | null;

  @Field(() => Float, {
    nullable: true,
    description: 'Denominator degrees of freedom (Hillis 2007) of the t reference; null where it is the normal (fixed readers, or infinite df)',
  })
  df: number | null;

  @Field(() => Float, { nullable: true })
  lower: number | null;

  @Field(() => Float, { nullable: true })
  upper: number | null;

  @Field(() => Float, { nullable: true, description: 't (z with fixed readers); null without sampling variance' })
  statistic: number | null;

  @Field(() => Float, { nullable: true, description: 'Two-sided p-value' })
  p: number | null;
}

@ObjectType('MrmcMean', { description: 'The mean figure of merit of one test (the model, or the readers) over the readers, with its interval' })
export class MrmcMeanType {
  @Field(() => Float)
  estimate: number;

  @Field(() => Float, { nullable: true })
  stdErr: number | null;

  @Field(() => Float, { nullable: true })
  df: number | null;

  @Field(() => Float, { nullable: true })
  lower: number | null;

  @Field(() => Float, { nullable: true })
  upper: number | null;
}

@ObjectType('MrmcConclusion', { description: 'One Obuchowski-Rockette-Hillis conclusion: the model against the reader average' })
export class MrmcConclusionType {
  @Field(() => MrmcDifferenceType)
  difference: MrmcDifferenceType;

  @Field(() => MrmcMeanType, { description: 'The model’s figure of merit (averaged over the readers’ case sets)' })
  model: MrmcMeanType;

  @Field(() => MrmcMeanType, { description: 'The readers’ average figure of merit' })
  readers: MrmcMeanType;
}

@ObjectType('MrmcVarianceComponents', { description: 'Obuchowski-Rockette variance components and error covariances' })
export class MrmcVarianceComponentsType {
  @Field(() => Float, { nullable: true, description: 'sigma2_R (null with one reader)' })
  reader: number | null;

  @Field(() => Float, { nullable: true, description: 'sigma2_TR, test x reader' })
  testReader: number | null;

  @Field(() => Float, { description: 'Var: the case-sampling variance of a reader’s figure of merit' })
  error: number;

  @Field(() => Float, { description: 'Same reader, different tests' })
  cov1: number;

  @Field(() => Float, { description: 'Different readers, same test (pairs of different sites count as 0)' })
  cov2: number;

  @Field(() => Float, { description: 'Different readers, different tests' })
  cov3: number;

  @Field(() => Float, { nullable: true })
  corr1: number | null;

  @Field(() => Float, { nullable: true })
  corr2: number | null;

  @Field(() => Float, { nullable: true })
  corr3: number | null;
}

@ObjectType('MrmcReader', { description: 'One reader: their figure of merit, the model’s on the same cases, and the fixed-reader difference' })
export class MrmcReaderType {
  @Field()
  readerCode: string;

  @Field(() => String, { nullable: true })
  site: string | null;

  @Field(() => Int)
  cases: number;

  @Field(() => Float, { description: 'The reader’s figure of merit (AUC, sensitivity or specificity)' })
  readerValue: number;

  @Field(() => Float, { description: 'The model’s, on this reader’s cases' })
  modelValue: number;

  @Field(() => MrmcDifferenceType)
  difference: MrmcDifferenceType;
}

@ObjectType('MrmcGroup', { description: 'One feature x modality, pooled over the sites in scope (site null) or one site' })
export class MrmcGroupType {
  @Field({ description: 'Withheld by disclosure control: every number of the row is null' })
  suppressed: boolean;

  @Field(() => SuppressionReason, { nullable: true })
  suppression: SuppressionReason | null;

  @Field()
  feature: string;

  @Field(() => Modality)
  modality: Modality;

  @Field(() => String, { nullable: true })
  site: string | null;

  @Field()
  pooled: boolean;

  @Field(() => String, { nullable: true, description: 'CROSSED (every reader read every case) or SPLIT_PLOT (readers nested within sites)' })
  design: string | null;

  @Field(() => Int, { nullable: true })
  readers: number | null;

  @Field(() => Int, { nullable: true })
  sites: number | null;

  @Field(() => Int, { nullable: true, description: 'Joint x modality x feature cases every reader of their site graded' })
  cases: number | null;

  @Field(() => Int, { nullable: true })
  patients: number | null;

  @Field(() => String, { nullable: true, description: 'Why the row has no analysis: TOO_FEW_UNITS, BLOCK_WITHOUT_BOTH_CLASSES…' })
  problem: string | null;

  @Field(() => String, { nullable: true })
  problemDetail: string | null;

  @Field(() => MrmcConclusionType, { nullable: true, description: 'Random readers and cases: generalises to new readers and new patients' })
  randomReaders: MrmcConclusionType | null;

  @Field(() => MrmcConclusionType, { nullable: true, description: 'Fixed readers, random cases: these readers, new patients' })
  fixedReaders: MrmcConclusionType | null;

  @Field(() => MrmcConclusionType, { nullable: true, description: 'Random readers, fixed cases: new readers, these patients' })
  fixedCases: MrmcConclusionType | null;

  @Field(() => MrmcVarianceComponentsType, { nullable: true })
  varianceComponents: MrmcVarianceComponentsType | null;

  @Field(() => [MrmcReaderType])
  perReader: MrmcReaderType[];

  @Field(() => RocCurveType, { nullable: true, description: 'The readers’ ROC curve averaged at each grade threshold' })
  readerRoc: RocCurveType | null;

  @Field(() => RocCurveType, { nullable: true, description: 'The model’s ROC curve on the analysed cases' })
  modelRoc: RocCurveType | null;
}

@ObjectType('MrmcResult')
export class MrmcResultType {
  @Field(() => MrmcFigureOfMerit)
  figureOfMerit: MrmcFigureOfMerit;

  @Field(() => Int)
  threshold: number;

  @Field(() => Float)
  level: number;

  @Field()
  clustered: boolean;

  @Field(() => MrmcCovariance)
  covariance: MrmcCovariance;

  @Field(() => DisclosureType)
  disclosure: DisclosureType;

  @Field(() => [MrmcGroupType])
  groups: MrmcGroupType[];
}
