import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { Level, Modality, Side, Split } from '../../server/domain';
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

@ObjectType('MetricsGroup', { description: 'One group (or the pooled row: every key null)' })
export class MetricsGroupType {
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

  @Field(() => Int, { description: 'Joint x modality x feature cases analysed' })
  cases: number;

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
