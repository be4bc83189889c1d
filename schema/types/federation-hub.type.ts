import { GraphQLScalarType } from 'graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { FederatedQueryKind, FederatedQueryStatus, FederationSiteTaskState, SiteErrorCode } from '../../server/domain';
import { FederatedScoreGridType } from './hub-statistics.type';
import { ConfusionType, EstimateType, McNemarTableType, ValueType } from './metrics.type';

registerEnumType(FederatedQueryKind, {
  name: 'FederatedQueryKind',
  description: 'STUDY_FLOW: STARD counts per site; BINARY_COUNTS: confusion counts and clustered sums',
});
registerEnumType(FederatedQueryStatus, {
  name: 'FederatedQueryStatus',
  description: 'RUNNING; then COMPLETE (every site answered), PARTIAL (at least minSites), INSUFFICIENT (fewer), or CANCELLED',
});
registerEnumType(FederationSiteTaskState, { name: 'FederationSiteTaskState', description: "Where one site stands on one federated query's task" });
registerEnumType(SiteErrorCode, { name: 'SiteErrorCode', description: 'Why a site is missing from an answer' });

/** A signed federation message (envelope.ts), checked by its signature, not by GraphQL types. */
export const SignedEnvelopeScalar = new GraphQLScalarType({
  ...GraphQLJSONObject.toConfig(),
  name: 'SignedEnvelope',
  description: 'A signed federation message (docs/federation.md 3.2), checked by its signature, not by GraphQL types',
  specifiedByURL: undefined,
});

@ObjectType('FederationClaim')
export class FederationClaimType {
  @Field(() => [SignedEnvelopeScalar], { description: 'Signed TASK envelopes for the claiming site' })
  tasks: object[];

  @Field(() => [String], { description: 'Ids of tasks the site claimed that were cancelled since' })
  cancelled: string[];

  @Field(() => [SignedEnvelopeScalar], { description: "Signed SECURE_REQUEST envelopes: what the site's open secure rounds ask of it now" })
  rounds: object[];

  @Field({ description: "The hub's clock: a node whose clock drifts out of the replay window sees it here" })
  serverTime: Date;
}

@ObjectType('FederationSubmission')
export class FederationSubmissionType {
  @Field()
  accepted: boolean;

  @Field(() => String, {
    nullable: true,
    description:
      'Why not: an envelope check code (BAD_SIGNATURE, REPLAYED, UNKNOWN_SIGNER, WRONG_AUDIENCE…), MALFORMED_RESULT, MANIFEST_MISMATCH, UNKNOWN_TASK, NOT_ADDRESSEE, TASK_HASH_MISMATCH, BAD_AGGREGATE, TASK_CANCELLED, ALREADY_SETTLED',
  })
  code: string | null;

  @Field(() => SignedEnvelopeScalar, { nullable: true, description: "The hub's signed RECEIPT: the node's proof that its result arrived" })
  receipt: object | null;
}

@ObjectType('FederationSiteTask')
export class FederationSiteTaskType {
  @Field()
  site: string;

  @Field(() => FederationSiteTaskState)
  state: FederationSiteTaskState;

  @Field(() => String, { nullable: true, description: "The site's refusal or failure code, or SITE_TIMEOUT / SITE_UNAVAILABLE / CANCELLED" })
  reason: string | null;

  @Field({ description: 'The result arrived after the deadline and was folded in (the answer was updated)' })
  late: boolean;

  @Field(() => Date, { nullable: true })
  claimedAt: Date | null;

  @Field(() => Date, { nullable: true })
  settledAt: Date | null;
}

@ObjectType('SiteError')
export class SiteErrorType {
  @Field()
  site: string;

  @Field(() => SiteErrorCode)
  code: SiteErrorCode;

  @Field(() => String, { nullable: true, description: "SITE_REFUSED: the node's policy reason; SITE_FAILED: its error code" })
  reason: string | null;
}

/** What every answer row has: where it comes from and whether its numbers were released. */
@ObjectType()
abstract class FederatedRowType {
  @Field({ description: 'The sum over sites of the groups with this key (false: one site as it released it)' })
  pooled: boolean;

  @Field(() => String, { nullable: true, description: 'The member (registry code) a site row came from' })
  node: string | null;

  @Field(() => String, { nullable: true, description: "The SITE key: the node's site code in a site row; null in a pooled row" })
  site: string | null;

  @Field(() => String, { nullable: true })
  split: string | null;

  @Field({ description: 'Withheld: by the site (a small group) or, pooled, by every site' })
  suppressed: boolean;

  @Field(() => String, { nullable: true, description: "The site's reason (SMALL_GROUP…), or ALL_SITES_WITHHELD for a pooled row" })
  suppression: string | null;

  @Field(() => Int, { nullable: true })
  patients: number | null;

  @Field(() => [String], { description: 'Pooled rows: the members whose released group is in the sum' })
  sites: string[];

  @Field(() => [String], { description: 'Pooled rows: the members that withheld this group (not in the sum)' })
  withheld: string[];
}

@ObjectType('FederatedStudyFlowRow', { description: 'STARD counts of one site (as released) or pooled over sites' })
export class FederatedStudyFlowRowType extends FederatedRowType {
  @Field(() => Int, { nullable: true })
  enrolled: number | null;

  @Field(() => Int, { nullable: true })
  excluded: number | null;

  @Field(() => Int, { nullable: true })
  eligible: number | null;

  @Field(() => Int, { nullable: true })
  joints: number | null;

  @Field(() => Int, { nullable: true })
  assessable: number | null;

  @Field(() => Int, { nullable: true })
  notAssessable: number | null;

  @Field(() => Int, { nullable: true })
  analysed: number | null;
}

@ObjectType('FederatedWilson', { description: 'Plain Wilson intervals (cases taken as independent), beside the default patient-clustered ones' })
export class FederatedWilsonType {
  @Field(() => EstimateType)
  prevalence: EstimateType;

  @Field(() => EstimateType)
  accuracy: EstimateType;

  @Field(() => EstimateType)
  sensitivity: EstimateType;

  @Field(() => EstimateType)
  specificity: EstimateType;

  @Field(() => EstimateType)
  precision: EstimateType;

  @Field(() => EstimateType)
  npv: EstimateType;
}

@ObjectType('FederatedBootstrap', { description: 'Poisson cluster bootstrap percentile intervals (method names B)' })
export class FederatedBootstrapType {
  @Field(() => EstimateType)
  prevalence: EstimateType;

  @Field(() => EstimateType)
  accuracy: EstimateType;

  @Field(() => EstimateType)
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
}

@ObjectType('FederatedMetricsRow', {
  description:
    "A node's metrics row with SITE as a grouping: proportions with design-effect (patient-clustered) Wilson intervals from the summed clustered sums",
})
export class FederatedMetricsRowType extends FederatedRowType {
  @Field(() => String, { nullable: true })
  feature: string | null;

  @Field(() => String, { nullable: true })
  modality: string | null;

  @Field(() => String, { nullable: true })
  level: string | null;

  @Field(() => String, { nullable: true })
  side: string | null;

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

  @Field(() => EstimateType, {
    nullable: true,
    description: 'With a bootstrap: its Poisson cluster bootstrap percentile interval; without: the point estimate',
  })
  f1: EstimateType | null;

  @Field(() => EstimateType, { nullable: true, description: 'As f1' })
  youden: EstimateType | null;

  @Field(() => FederatedWilsonType, { nullable: true })
  wilson: FederatedWilsonType | null;

  @Field(() => FederatedBootstrapType, {
    nullable: true,
    description:
      'A query with a bootstrap: percentile intervals of every statistic from the pooled Poisson replicates (null: no replicates from exactly the sites of the counts)',
  })
  bootstrap: FederatedBootstrapType | null;
}

@ObjectType('FederatedRaterAuc', { description: 'One rater of an AUC row: the AUC with its DeLong interval, and with the patient-clustered (Obuchowski) one' })
export class FederatedRaterAucType {
  @Field(() => String, { nullable: true })
  modelSha256: string | null;

  @Field(() => String, { nullable: true })
  readerSlot: string | null;

  @Field(() => EstimateType, { description: 'DeLong (cases as independent)' })
  auc: EstimateType;

  @Field(() => EstimateType, { description: 'Obuchowski (patient-clustered; floored at DeLong, as on a node): the default of the node' })
  clustered: EstimateType;
}

@ObjectType('FederatedPValueEstimate', { description: 'A difference with its interval and two-sided p' })
export class FederatedPValueEstimateType extends EstimateType {
  @Field(() => Float, { nullable: true })
  p: number | null;
}

@ObjectType('FederatedAucDifference', { description: 'The first rater minus the second on the same cases' })
export class FederatedAucDifferenceType {
  @Field(() => FederatedPValueEstimateType, { description: 'Paired DeLong' })
  delong: FederatedPValueEstimateType;

  @Field(() => FederatedPValueEstimateType, { description: 'Paired Obuchowski (patient-clustered)' })
  clustered: FederatedPValueEstimateType;
}

@ObjectType('FederatedAucRow', { description: 'AUC of one or two raters for one site (as released) or pooled over sites, from two rounds' })
export class FederatedAucRowType extends FederatedRowType {
  @Field(() => String, { nullable: true })
  feature: string | null;

  @Field(() => String, { nullable: true })
  modality: string | null;

  @Field(() => String, { nullable: true })
  level: string | null;

  @Field(() => String, { nullable: true })
  side: string | null;

  @Field(() => [FederatedScoreGridType], { description: "The raters' declared grids: the numbers are exact at this score resolution" })
  grids: FederatedScoreGridType[];

  @Field({ description: 'Always "exact at the declared score resolution"' })
  exactness: string;

  @Field(() => [FederatedRaterAucType], { description: 'One per rater (empty when withheld)' })
  raters: FederatedRaterAucType[];

  @Field(() => FederatedAucDifferenceType, { nullable: true })
  difference: FederatedAucDifferenceType | null;
}

@ObjectType('FederatedKappa', { description: "Cohen's kappa of the summed k x k table" })
export class FederatedKappaType {
  @Field(() => ValueType)
  unweighted: ValueType;

  @Field(() => ValueType)
  linear: ValueType;

  @Field(() => ValueType)
  quadratic: ValueType;
}

@ObjectType('FederatedAgreementRow', {
  description: 'Two raters on the same cases for one site (as released) or pooled: k x k table, kappa, percent agreement, McNemar on correct calls',
})
export class FederatedAgreementRowType extends FederatedRowType {
  @Field(() => String, { nullable: true })
  feature: string | null;

  @Field(() => String, { nullable: true })
  modality: string | null;

  @Field(() => String, { nullable: true })
  level: string | null;

  @Field(() => String, { nullable: true })
  side: string | null;

  @Field(() => [[Int]], { nullable: true, description: "Rows: the first rater's grade; columns: the second's" })
  table: number[][] | null;

  @Field(() => FederatedKappaType, { nullable: true })
  kappa: FederatedKappaType | null;

  @Field(() => ValueType, { nullable: true })
  percentAgreement: ValueType | null;

  @Field(() => McNemarTableType, {
    nullable: true,
    description: 'Correct calls at the threshold: modelOnly = the first rater only, readerOnly = the second only',
  })
  mcnemar: McNemarTableType | null;
}

@ObjectType('FederatedRound', { description: 'A part the hub chained to the query: AUC round 2 (PLACEMENT_SUMS) or the bootstrap (BOOTSTRAP_SUMS)' })
export class FederatedRoundType {
  @Field(() => ID)
  id: string;

  @Field(() => FederatedQueryKind)
  kind: FederatedQueryKind;

  @Field(() => FederatedQueryStatus)
  status: FederatedQueryStatus;

  @Field()
  deadline: Date;

  @Field(() => [FederationSiteTaskType])
  sites: FederationSiteTaskType[];
}

@ObjectType('FederatedAnswerRows')
export class FederatedAnswerRowsType {
  @Field(() => String, { nullable: true, description: 'sha256 of the canonical rows (the export signs it; `facet verify` recomputes it)' })
  rowsSha256: string | null;

  @Field(() => [FederatedStudyFlowRowType])
  studyFlow: FederatedStudyFlowRowType[];

  @Field(() => [FederatedMetricsRowType])
  metrics: FederatedMetricsRowType[];

  @Field(() => [FederatedAucRowType], { description: 'AUC queries' })
  auc: FederatedAucRowType[];

  @Field(() => [FederatedAgreementRowType], { description: 'AGREEMENT queries' })
  agreement: FederatedAgreementRowType[];
}

@ObjectType('FederatedContribution')
export class FederatedContributionType {
  @Field()
  site: string;

  @Field(() => FederatedQueryKind, { description: 'The part it answered (AUC: round 1; PLACEMENT_SUMS: round 2; BOOTSTRAP_SUMS…)' })
  kind: FederatedQueryKind;

  @Field({ description: "sha256 of the site's canonical signed result envelope (its receipt names it)" })
  resultSha256: string;

  @Field()
  aggregateSha256: string;

  @Field(() => GraphQLJSONObject, { description: "The site's signed provenance manifest (Facet version, task hash, split, model, reference snapshot, policy)" })
  manifest: object;
}

@ObjectType('FederatedSecureRestart')
export class FederatedSecureRestartType {
  @Field(() => Int)
  attempt: number;

  @Field(() => [String], { description: 'The participants whose masked vector had not come by the attempt’s deadline (or who refused to mask)' })
  dropped: string[];
}

@ObjectType('FederatedSecureSum', { description: 'How the pooled rows were summed when the site rows were not released (docs/federation.md section 6)' })
export class FederatedSecureSumType {
  @Field({ description: 'COLLECTING_MASKED, COLLECTING_SEEDS, DONE or FAILED' })
  phase: string;

  @Field(() => String, { nullable: true, description: 'FAILED: TOO_FEW_SITES, SEED_MISSING, SEED_REFUSED, TOO_MANY_ATTEMPTS, LENGTH_MISMATCH, UNMASK_FAILED' })
  failure: string | null;

  @Field(() => Int, { description: 'The attempt that holds (1 unless a participant dropped out)' })
  attempt: number;

  @Field(() => [String], { description: 'The sites whose numbers are in the pooled totals' })
  participants: string[];

  @Field(() => Int, { description: 'How many times the round restarted without a site' })
  roundsRestarted: number;

  @Field(() => [String], { description: 'Sites that answered the task but dropped out of the round: not in the pooled rows' })
  restartedWithout: string[];

  @Field(() => [FederatedSecureRestartType])
  restarts: FederatedSecureRestartType[];
}

@ObjectType('FederatedQuery')
export class FederatedQueryType {
  @Field(() => ID)
  id: string;

  @Field(() => FederatedQueryKind)
  kind: FederatedQueryKind;

  @Field(() => FederatedQueryStatus)
  status: FederatedQueryStatus;

  @Field(() => GraphQLJSONObject, { description: 'The task query every site received (task-kinds.ts)' })
  query: object;

  @Field(() => Int)
  minSites: number;

  @Field()
  deadline: Date;

  @Field(() => Int, { description: '1, plus one per result folded in after the deadline' })
  revision: number;

  @Field({ description: 'A late result changed the answer after its deadline' })
  updated: boolean;

  @Field()
  createdAt: Date;

  @Field()
  requestedBy: string;

  @Field(() => [FederationSiteTaskType])
  sites: FederationSiteTaskType[];

  @Field(() => [SiteErrorType], { description: 'Sites not in the answer and why (once it is no longer RUNNING)' })
  missing: SiteErrorType[];

  @Field(() => [FederatedRoundType], { description: 'The parts the hub chained to the query, each with its per-site states' })
  rounds: FederatedRoundType[];

  @Field(() => Int, { description: "The hub's minimum group size in patients: a pooled row below it is withheld (SMALL_GROUP)" })
  minGroupPatients: number;

  @Field(() => FederatedAnswerRowsType, { description: 'Per-site rows as released and pooled rows; empty when INSUFFICIENT' })
  answer: FederatedAnswerRowsType;

  @Field(() => [FederatedContributionType])
  contributions: FederatedContributionType[];

  @Field(() => FederatedSecureSumType, {
    nullable: true,
    description: 'The secure round of the pooled rows; null when the site rows were released (pooled by plain sums)',
  })
  secureSum: FederatedSecureSumType | null;
}

@ObjectType('FederatedAnswer')
export class FederatedAnswerType {
  @Field(() => ID)
  id: string;

  @Field(() => Int)
  revision: number;

  @Field(() => String, { nullable: true })
  rowsSha256: string | null;

  @Field(() => GraphQLJSONObject, {
    description: 'The hub-signed ANSWER envelope: tasks signed by the hub, every signed result, the rows and their sha256 (facet verify answer.json)',
  })
  export: object;
}

@ObjectType('FederationSite', { description: 'A member of the registry (sites/) and when it last claimed' })
export class FederationSiteType {
  @Field()
  code: string;

  @Field()
  name: string;

  @Field({ description: 'SHA256:… of the signing key, to read aloud when comparing' })
  keyId: string;

  @Field()
  signingKey: string;

  @Field()
  contactName: string;

  @Field()
  contactEmail: string;

  @Field(() => Date, { nullable: true })
  lastClaimAt: Date | null;
}

@ObjectType('HubIdentity', { description: "The hub's Ed25519 signing key, which nodes pin (FACET_HUB_SIGNING_KEY)" })
export class HubIdentityType {
  @Field()
  signer: string;

  @Field()
  signingKey: string;

  @Field()
  keyId: string;
}
