import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { FederatedInferenceSiteState, FederatedQueryStatus, FederationInboxState } from '../../server/domain';

registerEnumType(FederatedInferenceSiteState, {
  name: 'FederatedInferenceSiteState',
  description:
    'WAITING (the site has not claimed its task: offline or not polled yet), APPROVING (held for its ENGINEER or ADMIN), QUEUED, RUNNING, FINISHED, REFUSED, FAILED, CANCELLING (cancelled at the hub, not yet confirmed by the node), CANCELLED, EXPIRED',
});

@ObjectType('FederatedInferenceModel', { description: 'The model the hub sends, pinned by the sha256 of its ONNX file' })
export class FederatedInferenceModelType {
  @Field()
  sha256: string;

  @Field()
  name: string;

  @Field()
  version: string;

  @Field(() => Int, { description: 'Size of the ONNX file in bytes' })
  bytes: number;
}

@ObjectType('FederatedInferenceResult', { description: "A site's signed result: the provenance of its predictions (they stay at the site)" })
export class FederatedInferenceResultType {
  @Field({ description: 'sha256 of the file the site ran' })
  modelSha256: string;

  @Field({ description: 'The ONNX Runtime execution provider that ran the job (cpu, cuda…)' })
  executionProvider: string;

  @Field()
  facetVersion: string;

  @Field(() => Int)
  total: number;

  @Field(() => Int)
  done: number;

  @Field(() => Int)
  failed: number;

  @Field({ description: "sha256 of the site's signed result envelope as the hub stored it" })
  resultSha256: string;
}

@ObjectType('FederatedInferenceSite', { description: 'One site of a federated inference job: where it stands and its counters' })
export class FederatedInferenceSiteType {
  @Field()
  site: string;

  @Field(() => FederatedInferenceSiteState)
  state: FederatedInferenceSiteState;

  @Field(() => Int, { description: 'Work items (joint x modality images) of the site’s job; 0 until it reports' })
  total: number;

  @Field(() => Int)
  done: number;

  @Field(() => Int)
  failed: number;

  @Field(() => Float, { nullable: true, description: 'Images a second' })
  rate: number | null;

  @Field(() => Float, { nullable: true, description: 'Seconds left at that rate' })
  etaSeconds: number | null;

  @Field(() => String, { nullable: true })
  executionProvider: string | null;

  @Field(() => String, {
    nullable: true,
    description:
      'Why it refused or failed: MODEL_SHA256_MISMATCH, MODEL_MANIFEST_MISMATCH, MODEL_VERSION_CONFLICT, REFUSED_BY_ENGINEER, TASK_KIND_NOT_ALLOWED, MODEL_UNAVAILABLE, INFERENCE_FAILED, CANCELLED, SITE_UNAVAILABLE, SITE_TIMEOUT…',
  })
  reason: string | null;

  @Field(() => Date, { nullable: true, description: 'When the hub last heard from the site about this job' })
  updatedAt: Date | null;

  @Field(() => FederatedInferenceResultType, { nullable: true })
  result: FederatedInferenceResultType | null;
}

@ObjectType('FederatedInferenceTotal', { description: 'The job over every site' })
export class FederatedInferenceTotalType {
  @Field(() => Int)
  sites: number;

  @Field(() => Int, { description: 'Sites FINISHED' })
  finished: number;

  @Field(() => Int, { description: 'Sites that ended one way or another (FINISHED, REFUSED, FAILED, CANCELLED, EXPIRED)' })
  ended: number;

  @Field(() => Int)
  total: number;

  @Field(() => Int)
  done: number;

  @Field(() => Int)
  failed: number;

  @Field(() => Float, { nullable: true, description: 'Images a second over the running sites' })
  rate: number | null;

  @Field(() => Float, { nullable: true, description: 'Seconds until the slowest running site ends' })
  etaSeconds: number | null;
}

@ObjectType('FederatedInference', { description: 'A model sent to the member sites and run at each on its own images' })
export class FederatedInferenceType {
  @Field(() => ID)
  id: string;

  @Field(() => FederatedQueryStatus, { description: 'RUNNING until every site ended or the deadline; COMPLETE when every site finished' })
  status: FederatedQueryStatus;

  @Field(() => FederatedInferenceModelType)
  model: FederatedInferenceModelType;

  @Field(() => [String])
  modalities: string[];

  @Field()
  requestedBy: string;

  @Field()
  createdAt: Date;

  @Field()
  deadline: Date;

  @Field(() => [FederatedInferenceSiteType], { description: 'One row per site, by site code' })
  sites: FederatedInferenceSiteType[];

  @Field(() => FederatedInferenceTotalType)
  total: FederatedInferenceTotalType;
}

@ObjectType('FederatedInferenceRun', { description: "A federated inference task at this node: the hub's model and this node's job" })
export class FederatedInferenceRunType {
  @Field()
  taskId: string;

  @Field(() => FederationInboxState)
  state: FederationInboxState;

  @Field({ description: 'APPROVING, QUEUED, RUNNING, FINISHED, FAILED, REFUSED or CANCELLED' })
  phase: string;

  @Field()
  modelSha256: string;

  @Field(() => ID, { nullable: true, description: 'This node’s model version of the file (registered from the hub’s copy, or the one it held)' })
  modelVersionId: string | null;

  @Field(() => ID, { nullable: true, description: 'The inference job (query job(id) for its details)' })
  inferenceJobId: string | null;

  @Field(() => String, { nullable: true })
  reason: string | null;

  @Field(() => String, { nullable: true })
  decidedBy: string | null;
}
