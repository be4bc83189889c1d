import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { FederatedQueryStatus, HubSiteStatus } from '../../server/domain';

registerEnumType(HubSiteStatus, { name: 'HubSiteStatus', description: 'Where a site stands in a hub answer' });

@ObjectType('FederatedScoreGrid', { description: 'A declared score grid: the AUC is exact at this resolution' })
export class FederatedScoreGridType {
  @Field(() => Float)
  lower: number;

  @Field(() => Float)
  upper: number;

  @Field(() => Int)
  bins: number;
}

@ObjectType('HubSiteAnswer')
export class HubSiteAnswerType {
  @Field()
  site: string;

  @Field(() => HubSiteStatus, { description: 'ANSWERED every federated query of the answer; REFUSED one (reason: its policy code); MISSING otherwise' })
  status: HubSiteStatus;

  @Field(() => String, { nullable: true })
  reason: string | null;
}

@ObjectType('HubAnswerStatus', {
  description: "At a hub: the federated queries behind a statistics answer, each site's status and the grid the answer is exact at (null at a node)",
})
export class HubAnswerStatusType {
  @Field(() => FederatedQueryStatus, { description: 'RUNNING: not settled within waitSeconds (no groups yet; ask again, the same queries are read)' })
  status: FederatedQueryStatus;

  @Field(() => [ID], { description: 'The federated queries read (federatedQuery, federatedAnswer { export } for facet verify)' })
  queryIds: string[];

  @Field(() => [HubSiteAnswerType])
  sites: HubSiteAnswerType[];

  @Field(() => [FederatedScoreGridType], { description: 'The score grid of the AUC' })
  grids: FederatedScoreGridType[];

  @Field({ description: 'Always "exact at the declared score resolution"' })
  exactness: string;

  @Field(() => Int, { description: "The hub's minimum group size on pooled rows" })
  minGroupPatients: number;
}
