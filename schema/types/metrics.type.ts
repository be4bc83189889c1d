import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { ExclusionReason, Level, Modality, ReaderRole, ReaderSlot, Side, Split } from '../../server/domain';
import type { ModelVersion } from '../../server/entities';
import { Connection } from './page-info.type';

@ObjectType('Estimate', { description: 'A point estimate, its interval and the method of the interval; null values come with a reason' })
export class EstimateType {
  @Field(() => Float, { nullable: true })
  value: number | null;

  @Field(() => Float, { nullable: true })
  lower: number | null;

  @Field(() => Float, { nullable: true })
  upper: number | null;

  @Field({ description: 'wilson, wilson-clustered, delong, obuchowski, cluster-bootstrap-percentile(B=…)…' })
  method: string;

  @Field(() => String, { nullable: true, description: 'Why the value is null: NO_POSITIVES, NO_NEGATIVES, ONE_CLUSTER…' })
  reason: string | null;
}

@ObjectType('Value', { description: 'A value without an interval, or the reason there is none' })
export class ValueType {
  @Field(() => Float, { nullable: true })
  value: number | null;

  @Field(() => String, { nullable: true })
  reason: string | null;
}

@ObjectType('Confusion')
export class ConfusionType {
  @Field(() => Int)
  tp: number;

  @Field(() => Int)
  fp: number;

  @Field(() => Int)
  tn: number;

  @Field(() => Int)
  fn: number;
}

@ObjectType('RocCurve', { description: 'Points at every distinct score, highest first, from (0, 0)' })
export class RocCurveType {
  @Field(() => [Float])
  fpr: number[];

  @Field(() => [Float])
  tpr: number[];

  @Field(() => [Float], { nullable: 'items' })
  thresholds: Array<number | null>;
}

@ObjectType('MultiClassMetrics', { description: 'k x k view of one feature (null with MIXED_FEATURES for a group over several)' })
export class MultiClassType {
  @Field(() => [[Int]], { description: 'Rows: reference grade; columns: rater grade' })
  confusion: number[][];

  @Field(() => ValueType)
  macroF1: ValueType;

  @Field(() => ValueType)
  weightedF1: ValueType;

  @Field(() => ValueType)
  ovrMacroAuc: ValueType;

  @Field(() => ValueType)
  linearKappa: ValueType;

  @Field(() => ValueType)
  quadraticKappa: ValueType;
}

/** The keys of a group: null where the query did not group by it (all null in the pooled row). */
@ObjectType()
abstract class GroupKeyType {
  @Field()
  pooled: boolean;

  @Field(() => String, { nullable: true })
  site: string | null;

  @Field(() => String, { nullable: true })
  feature: string | null;

  @Field(() => Modality, { nullable: true })
  modality: Modality | null;

  @Field(() => Level, { nullable: true })
  level: Level | null;

  @Field(() => Side, { nullable: true })
  side: Side | null;

  @Field(() => Split, { nullable: true })
  split: Split | null;
}

@ObjectType('MetricsGroup', { description: 'One group (or the pooled row: every key null)' })
export class MetricsGroupType extends GroupKeyType {
  @Field(() => Int, {
    description: 'Joint x modality x feature cases analysed (readings, for a slot or a role: a cell read by two of its readers counts twice)',
  })
  cases: number;

  @Field(() => Int, { description: 'Distinct joints among the cases' })
  joints: number;

  @Field(() => Int, { description: 'Distinct readers behind the grades (0 for a model); for a role, each estimate is their average' })
  readers: number;

  @Field(() => Int)
  patients: number;

  @Field(() => ConfusionType)
  confusion: ConfusionType;

  @Field(() => EstimateType)
  prevalence: EstimateType;

  @Field(() => EstimateType)
  accuracy: EstimateType;

  @Field(() => EstimateType, { description: 'Also the recall' })
  sensitivity: EstimateType;

  @Field(() => EstimateType)
  specificity: EstimateType;

  @Field(() => EstimateType)
  precision: EstimateType;

  @Field(() => EstimateType)
  npv: EstimateType;

  @Field(() => EstimateType)
  f1: EstimateType;

  @Field(() => EstimateType)
  youden: EstimateType;

  @Field(() => EstimateType)
  auc: EstimateType;

  @Field(() => RocCurveType)
  roc: RocCurveType;

  @Field(() => MultiClassType)
  multiclass: MultiClassType;
}

@ObjectType('MetricsResult')
export class MetricsResultType {
  @Field(() => Int)
  threshold: number;

  @Field(() => Float)
  level: number;

  @Field()
  clustered: boolean;

  @Field(() => [MetricsGroupType])
  groups: MetricsGroupType[];
}

@ObjectType('ModelVersion', { description: 'An ONNX model version or a model run elsewhere (no file); immutable' })
export class ModelVersionType implements Pick<ModelVersion, 'id' | 'name' | 'version' | 'description' | 'sha256' | 'createdAt'> {
  @Field(() => ID)
  id: string;

  @Field()
  name: string;

  @Field()
  version: string;

  @Field(() => String, { nullable: true })
  description: string | null;

  @Field(() => String, { nullable: true, description: 'sha256 of the ONNX file; null for an external model' })
  sha256: string | null;

  @Field()
  createdAt: Date;
}

@ObjectType('ModelVersionConnection')
export class ModelVersionConnection extends Connection(ModelVersionType) {}

@ObjectType('MetricDifference', { description: 'Model minus reader on the same cases' })
export class MetricDifferenceType {
  @Field({ description: 'ACCURACY, SENSITIVITY, SPECIFICITY, F1 or AUC' })
  metric: string;

  @Field(() => Float, { nullable: true })
  model: number | null;

  @Field(() => Float, { nullable: true })
  reader: number | null;

  @Field(() => EstimateType)
  difference: EstimateType;

  @Field(() => Float, { nullable: true })
  p: number | null;

  @Field({ description: 'The test behind p: mcnemar-exact, obuchowski-paired, delong-paired, paired-cluster-bootstrap-percentile(B=…)' })
  test: string;
}

@ObjectType('Comparison', {
  description: 'The model against one reader, a slot pooled across sites, or the reader average of a role, for one group (or pooled)',
})
export class ComparisonType extends GroupKeyType {
  @Field(() => ID, { nullable: true, description: 'Null for a slot or a role' })
  readerId: string | null;

  @Field(() => String, { nullable: true, description: 'Null for a slot or a role' })
  readerCode: string | null;

  @Field(() => ReaderSlot, { nullable: true, description: 'The slot compared with, or the one reader’s slot' })
  readerSlot: ReaderSlot | null;

  @Field(() => ReaderRole, { nullable: true, description: 'The role whose readers were averaged' })
  readerRole: ReaderRole | null;

  @Field(() => Int, { description: 'Distinct readers behind the comparison' })
  readers: number;

  @Field(() => Int)
  cases: number;

  @Field(() => Int)
  patients: number;

  @Field(() => [MetricDifferenceType])
  differences: MetricDifferenceType[];
}

@ObjectType('ComparisonResult')
export class ComparisonResultType {
  @Field(() => Int)
  threshold: number;

  @Field(() => Float)
  level: number;

  @Field()
  clustered: boolean;

  @Field(() => [ComparisonType])
  comparisons: ComparisonType[];
}

@ObjectType('KappaSet', { description: "Cohen's kappa, unweighted, linear and quadratic, over the cases both graded" })
export class KappaSetType {
  @Field(() => Int)
  cases: number;

  @Field(() => ValueType)
  unweighted: ValueType;

  @Field(() => ValueType)
  linear: ValueType;

  @Field(() => ValueType)
  quadratic: ValueType;
}

@ObjectType('ReaderAgreement')
export class ReaderAgreementType extends KappaSetType {
  @Field(() => ValueType)
  percentAgreement: ValueType;
}

@ObjectType('ReaderVsReference')
export class ReaderVsReferenceType extends KappaSetType {
  @Field(() => ID)
  readerId: string;

  @Field()
  readerCode: string;

  @Field(() => ReaderSlot, { nullable: true })
  slot: ReaderSlot | null;
}

@ObjectType('AgreementGroup', { description: 'Agreement for one feature x modality (x site when grouped by site)' })
export class AgreementGroupType {
  @Field()
  feature: string;

  @Field(() => Modality)
  modality: Modality;

  @Field(() => String, { nullable: true })
  site: string | null;

  @Field(() => ReaderAgreementType, { description: 'Reader 1 vs reader 2: each cell oriented as (FIRST slot, SECOND slot), never by reader id' })
  readers: ReaderAgreementType;

  @Field(() => ValueType, { description: 'Share of double-read cells that went to adjudication' })
  adjudicationRate: ValueType;

  @Field(() => [ReaderVsReferenceType])
  readerVsReference: ReaderVsReferenceType[];
}

@ObjectType('ReasonCount')
export class ReasonCountType {
  @Field(() => ExclusionReason)
  reason: ExclusionReason;

  @Field(() => Int)
  patients: number;
}

@ObjectType('SplitPatients')
export class SplitPatientsType {
  @Field(() => Split)
  split: Split;

  @Field(() => Int)
  patients: number;
}

@ObjectType('StudyFlow', { description: 'STARD flow of one site, or the total (site null)' })
export class StudyFlowType {
  @Field(() => String, { nullable: true })
  site: string | null;

  @Field(() => Int)
  enrolled: number;

  @Field(() => Int)
  excluded: number;

  @Field(() => [ReasonCountType])
  excludedByReason: ReasonCountType[];

  @Field(() => Int)
  eligible: number;

  @Field(() => [SplitPatientsType], { description: 'Eligible patients per split (with a split version)' })
  bySplit: SplitPatientsType[];

  @Field(() => Int, { description: 'Joints of eligible patients' })
  joints: number;

  @Field(() => Int, { description: 'Joint x modality x feature cells with a reference grade' })
  referenceCells: number;

  @Field(() => Int)
  assessable: number;

  @Field(() => Int)
  notAssessable: number;

  @Field(() => Int, { description: 'Assessable and confirmed: what metrics analyse' })
  analysed: number;
}
