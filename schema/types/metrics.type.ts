import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { HubAnswerStatusType } from './hub-statistics.type';
import { ExclusionReason, Level, Modality, ReaderRole, ReaderSlot, Side, Split, SuppressionReason } from '../../server/domain';

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

@ObjectType('RocCurve', {
  description:
    'Points highest threshold first, from (0, 0): at every distinct score, or, with disclosure control applied, only at grid thresholds where each step covers the minimum number of patients',
})
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

@ObjectType('Disclosure', { description: 'The disclosure control an answer went through (docs/statistics.md)' })
export class DisclosureType {
  @Field({ description: 'True for roles without patient-level access (STATISTICIAN, ENGINEER, HUB); false: nothing was withheld or coarsened' })
  applied: boolean;

  @Field(() => Int, { description: 'Smallest number of patients of a released row and of the difference of two nested rows (FACET_MIN_GROUP_PATIENTS)' })
  minGroupPatients: number;

  @Field(() => Int, { description: 'Model-score ROC thresholds lie on i / rocGridSteps when applied (FACET_ROC_GRID_STEPS)' })
  rocGridSteps: number;
}

/** Whether a row was withheld by disclosure control; a withheld row carries its key and no number. */
@ObjectType()
abstract class ReleaseType {
  @Field({ description: 'Withheld by disclosure control: every number of the row is null' })
  suppressed: boolean;

  @Field(() => SuppressionReason, { nullable: true })
  suppression: SuppressionReason | null;
}

/** The keys of a group: null where the query did not group by it (all null in the pooled row). */
@ObjectType()
abstract class GroupKeyType extends ReleaseType {
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
    nullable: true,
    description: 'Joint x modality x feature cases analysed (readings, for a slot or a role: a cell read by two of its readers counts twice)',
  })
  cases: number | null;

  @Field(() => Int, { nullable: true, description: 'Distinct joints among the cases' })
  joints: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Distinct readers behind the grades (0 for a model); for a role, each estimate is their average. Null when withheld, like every number',
  })
  readers: number | null;

  @Field(() => Int, { nullable: true })
  patients: number | null;

  @Field(() => ConfusionType, { nullable: true })
  confusion: ConfusionType | null;

  @Field(() => EstimateType, { nullable: true })
  prevalence: EstimateType | null;

  @Field(() => EstimateType, { nullable: true })
  accuracy: EstimateType | null;

  @Field(() => EstimateType, { nullable: true, description: 'Also the recall' })
  sensitivity: EstimateType | null;

  @Field(() => EstimateType, { nullable: true })
  specificity: EstimateType | null;

  @Field(() => EstimateType, { nullable: true })
  precision: EstimateType | null;

  @Field(() => EstimateType, { nullable: true })
  npv: EstimateType | null;

  @Field(() => EstimateType, { nullable: true })
  f1: EstimateType | null;

  @Field(() => EstimateType, { nullable: true })
  youden: EstimateType | null;

  @Field(() => EstimateType, { nullable: true })
  auc: EstimateType | null;

  @Field(() => RocCurveType, { nullable: true })
  roc: RocCurveType | null;

  @Field(() => MultiClassType, { nullable: true })
  multiclass: MultiClassType | null;
}

@ObjectType('MetricsResult')
export class MetricsResultType {
  @Field(() => Int)
  threshold: number;

  @Field(() => Float)
  level: number;

  @Field()
  clustered: boolean;

  @Field(() => DisclosureType)
  disclosure: DisclosureType;

  @Field(() => HubAnswerStatusType, { nullable: true, description: 'At a hub: the federated queries, per-site status and grid behind the answer' })
  federation?: HubAnswerStatusType | null;

  @Field(() => [MetricsGroupType])
  groups: MetricsGroupType[];
}

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

@ObjectType('McNemarTable', {
  description:
    'The paired 2x2 table of correct calls at the threshold, model x reader, over the compared cases; p is the exact McNemar test on it (cases as independent, as statsmodels mcnemar(exact=True))',
})
export class McNemarTableType {
  @Field(() => Int, { description: 'Cases both called correctly' })
  bothCorrect: number;

  @Field(() => Int, { description: 'Cases only the model called correctly (discordant, b)' })
  modelOnly: number;

  @Field(() => Int, { description: 'Cases only the reader called correctly (discordant, c)' })
  readerOnly: number;

  @Field(() => Int, { description: 'Cases both called wrongly' })
  neither: number;

  @Field(() => Float, { description: 'Exact two-sided McNemar p of modelOnly vs readerOnly; the accuracy p of a per-case comparison' })
  p: number;
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

  @Field(() => Int, { nullable: true, description: 'Distinct readers behind the comparison; null when withheld, like every number' })
  readers: number | null;

  @Field(() => Int, { nullable: true })
  cases: number | null;

  @Field(() => Int, { nullable: true })
  patients: number | null;

  @Field(() => [MetricDifferenceType], { description: 'Empty when the comparison is withheld' })
  differences: MetricDifferenceType[];

  @Field(() => McNemarTableType, {
    nullable: true,
    description: 'Null when withheld, and for a role (compared through the reader average, not one call per case)',
  })
  mcnemar: McNemarTableType | null;
}

@ObjectType('ComparisonResult')
export class ComparisonResultType {
  @Field(() => Int)
  threshold: number;

  @Field(() => Float)
  level: number;

  @Field()
  clustered: boolean;

  @Field(() => DisclosureType)
  disclosure: DisclosureType;

  @Field(() => [ComparisonType])
  comparisons: ComparisonType[];
}

@ObjectType('KappaSet', { description: "Cohen's kappa, unweighted, linear and quadratic, over the cases both graded (null when withheld)" })
export class KappaSetType {
  @Field(() => Int, { nullable: true })
  cases: number | null;

  @Field(() => ValueType, { nullable: true })
  unweighted: ValueType | null;

  @Field(() => ValueType, { nullable: true })
  linear: ValueType | null;

  @Field(() => ValueType, { nullable: true })
  quadratic: ValueType | null;
}

@ObjectType('ReaderAgreement')
export class ReaderAgreementType extends KappaSetType {
  @Field(() => ValueType)
  percentAgreement: ValueType;
}

@ObjectType('ReaderVsReference', { description: 'One reader against the reference standard; withheld on its own when its cases are too few patients' })
export class ReaderVsReferenceType extends KappaSetType {
  @Field(() => ID)
  readerId: string;

  @Field()
  readerCode: string;

  @Field(() => ReaderSlot, { nullable: true })
  slot: ReaderSlot | null;

  @Field({ description: 'Withheld by disclosure control: its kappas and cases are null' })
  suppressed: boolean;

  @Field(() => SuppressionReason, { nullable: true })
  suppression: SuppressionReason | null;
}

@ObjectType('AgreementGroup', {
  description: 'Agreement for one feature x modality (x site when grouped by site); suppressed applies to the reader-vs-reader block',
})
export class AgreementGroupType extends ReleaseType {
  @Field()
  feature: string;

  @Field(() => Modality)
  modality: Modality;

  @Field(() => String, { nullable: true })
  site: string | null;

  @Field(() => ReaderAgreementType, {
    nullable: true,
    description: 'Reader 1 vs reader 2: each cell oriented as (FIRST slot, SECOND slot), never by reader id (null when withheld)',
  })
  readers: ReaderAgreementType | null;

  @Field(() => ValueType, { nullable: true, description: 'Share of double-read cells that went to adjudication (null when withheld)' })
  adjudicationRate: ValueType | null;

  @Field(() => [ReaderVsReferenceType])
  readerVsReference: ReaderVsReferenceType[];

  @Field(() => DisclosureType)
  disclosure: DisclosureType;
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
export class StudyFlowType extends ReleaseType {
  @Field(() => String, { nullable: true })
  site: string | null;

  @Field(() => Int, { nullable: true })
  enrolled: number | null;

  @Field(() => Int, { nullable: true })
  excluded: number | null;

  @Field(() => [ReasonCountType])
  excludedByReason: ReasonCountType[];

  @Field(() => Int, { nullable: true })
  eligible: number | null;

  @Field(() => [SplitPatientsType], { description: 'Eligible patients per split (with a split version)' })
  bySplit: SplitPatientsType[];

  @Field(() => Int, { nullable: true, description: 'Joints of eligible patients' })
  joints: number | null;

  @Field(() => Int, { nullable: true, description: 'Joint x modality x feature cells with a reference grade' })
  referenceCells: number | null;

  @Field(() => Int, { nullable: true })
  assessable: number | null;

  @Field(() => Int, { nullable: true })
  notAssessable: number | null;

  @Field(() => Int, { nullable: true, description: 'Assessable and confirmed: what metrics analyse' })
  analysed: number | null;

  @Field(() => HubAnswerStatusType, { nullable: true, description: 'At a hub: the federated query behind the row and each site’s status' })
  federation?: HubAnswerStatusType | null;

  @Field(() => DisclosureType)
  disclosure: DisclosureType;
}
