import { Field, Int, ObjectType } from 'type-graphql';
import { FederationInboxState } from '../../server/domain';

@ObjectType('ReleaseBudget', { description: 'At most `releases` federated releases in any `periodDays` days (a sliding window)' })
export class ReleaseBudgetType {
  @Field(() => Int)
  releases: number;

  @Field(() => Int)
  periodDays: number;
}

@ObjectType('ReleasePolicy', { description: 'What this node releases to the federation hub; set by its ADMIN, applied before anything is signed' })
export class ReleasePolicyType {
  @Field(() => [String], { description: 'Task kinds this node answers (STUDY_FLOW, BINARY_COUNTS, …); any other is REFUSED' })
  taskKinds: string[];

  @Field(() => Int, { description: 'Groups of fewer patients (but not zero) are suppressed' })
  minGroupPatients: number;

  @Field(() => Int, { description: 'The finest score grid a histogram may use, as bins on [0, 1]' })
  maxScoreBins: number;

  @Field({ description: 'Every release waits for a coordinator of this node' })
  manualApproval: boolean;

  @Field(() => ReleaseBudgetType, { nullable: true, description: 'Null: no budget' })
  budget: ReleaseBudgetType | null;

  @Field({ description: 'sha256 of the canonical policy: what each result’s provenance manifest names' })
  sha256: string;
}

@ObjectType('FederationInboxEntry', { description: 'A task from the hub at this node, and exactly what would leave or left for it' })
export class FederationInboxEntryType {
  @Field()
  taskId: string;

  @Field()
  kind: string;

  @Field(() => FederationInboxState)
  state: FederationInboxState;

  @Field(() => String, { nullable: true, description: 'REFUSED or FAILED: the code sent to the hub' })
  reason: string | null;

  @Field(() => String, { nullable: true, description: 'The local explanation (policy detail, coordinator note); never sent' })
  detail: string | null;

  @Field({ description: 'sha256 of the canonical task payload (the result names it)' })
  taskSha256: string;

  @Field(() => String, {
    nullable: true,
    description: 'HELD: the canonical JSON (RFC 8785) of the aggregate that would leave, byte for byte; RELEASED/SUBMITTED: of what left',
  })
  aggregateJson: string | null;

  @Field(() => String, { nullable: true, description: 'sha256 of aggregateJson (equals the manifest’s aggregateSha256 and the audit row’s)' })
  aggregateSha256: string | null;

  @Field(() => String, { nullable: true, description: 'Who released or refused a held result' })
  decidedBy: string | null;

  @Field()
  receivedAt: Date;

  @Field()
  updatedAt: Date;
}
