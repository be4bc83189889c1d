import type { GraphQLSchema } from 'graphql';
import path from 'node:path';
import { buildSchema, type NonEmptyArray, type PubSub } from 'type-graphql';
import '../../schema/enums';
import type { Services } from '../services';
import { authChecker } from './auth-checker';
import { AdminResolver } from './resolvers/admin.resolver';
import { FederationNodeResolver } from './resolvers/federation-node.resolver';
import { IngestResolver } from './resolvers/ingest.resolver';
import { JobResolver } from './resolvers/job.resolver';
import { InstanceResolver, JointImageResolver, SeriesResolver, StudyResolver } from './resolvers/imaging.resolver';
import { JointResolver } from './resolvers/joint.resolver';
import { MrmcResolver } from './resolvers/mrmc.resolver';
import { ModelVersionResolver } from './resolvers/model-version.resolver';
import { PatientResolver } from './resolvers/patient.resolver';
import { ReaderResolver } from './resolvers/reader.resolver';
import { ReferenceGradeResolver } from './resolvers/reference-grade.resolver';
import { ReferenceConfirmationResolver, ReferenceGradeImportResolver, ReferenceImportResolver } from './resolvers/reference-import.resolver';
import { AdjudicationResolver, ReadingResolver } from './resolvers/reading.resolver';
import { SiteResolver } from './resolvers/site.resolver';
import { StatisticsResolver } from './resolvers/statistics.resolver';
import { FederationHubResolver } from './resolvers/federation-hub.resolver';
import { FederatedInferenceResolver } from './resolvers/federated-inference.resolver';
import { SplitAssignmentResolver, SplitVersionResolver } from './resolvers/split.resolver';

/** Where the SDL is committed; a test fails when it differs from what the code builds. */
const REPO_ROOT = path.resolve(__dirname, __dirname.split(path.sep).includes('dist') ? '../../..' : '../..');
export const SCHEMA_FILE = path.join(REPO_ROOT, 'schema', 'schema.graphql');

/**
 * Every subscription streams from a service through `subscribe:` (GraphQLContext's streams), never through
 * type-graphql's `topics`: a service checks access and site scope itself, and can send the current state before
 * the first event, which `topics` cannot. type-graphql still asks for a PubSub once a schema has subscriptions;
 * this one says why a `topics` subscription does not work here.
 */
const TOPICS_NOT_USED: PubSub = {
  publish: () => {
    throw new Error('Publish through PostgresPubSub (server/pubsub), typed by its topic catalogue');
  },
  subscribe: (topic) => {
    throw new Error(`@Subscription({ topics: ${String(topic)} }) is not used here: stream from a service with subscribe: (GraphQLContext.streams)`);
  },
};

/** Builds resolvers with their services (no DI framework) and the schema over them. */
export async function createSchema(services: Services, options: { emitSchemaFile?: string } = {}): Promise<GraphQLSchema> {
  const resolvers = new Map<Function, object>([
    [SiteResolver, new SiteResolver(services.sites, services.patients)],
    [ReaderResolver, new ReaderResolver(services.readers)],
    [PatientResolver, new PatientResolver(services.patients)],
    [JointResolver, new JointResolver(services.patients)],
    [StudyResolver, new StudyResolver(services.imaging)],
    [SeriesResolver, new SeriesResolver(services.imaging)],
    [InstanceResolver, new InstanceResolver(services.imaging)],
    [JointImageResolver, new JointImageResolver(services.imaging)],
    [ReadingResolver, new ReadingResolver(services.readings)],
    [AdjudicationResolver, new AdjudicationResolver(services.readings)],
    [ReferenceGradeResolver, new ReferenceGradeResolver(services.references)],
    [ReferenceGradeImportResolver, new ReferenceGradeImportResolver()],
    [ReferenceImportResolver, new ReferenceImportResolver(services.referenceImports)],
    [ReferenceConfirmationResolver, new ReferenceConfirmationResolver()],
    [SplitVersionResolver, new SplitVersionResolver(services.splits)],
    [SplitAssignmentResolver, new SplitAssignmentResolver()],
    [AdminResolver, new AdminResolver(services.tokens, services.audit, services.grading)],
    [IngestResolver, new IngestResolver(services.manifests)],
    [JobResolver, new JobResolver(services.inference)],
    [MrmcResolver, new MrmcResolver(services.mrmc)],
    [FederationHubResolver, new FederationHubResolver(services.federationHub, services.federatedQueries)],
    [FederatedInferenceResolver, new FederatedInferenceResolver(services.federatedInference, services.federatedInferenceRunner)],
    [FederationNodeResolver, new FederationNodeResolver(services.federationNode)],
    [ModelVersionResolver, new ModelVersionResolver(services.models)],
    [StatisticsResolver, new StatisticsResolver(services.metrics, services.agreement, services.hubStatistics)],
  ]);
  return buildSchema({
    resolvers: [...resolvers.keys()] as unknown as NonEmptyArray<Function>,
    container: { get: (cls) => resolvers.get(cls) },
    authChecker,
    pubSub: TOPICS_NOT_USED,
    validate: { forbidUnknownValues: false },
    emitSchemaFile: options.emitSchemaFile ?? false,
  });
}
