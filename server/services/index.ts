import type { DataSource } from 'typeorm';
import { Db } from '../db/transaction';
import { AgreementService } from './agreement.service';
import { AuditService } from './audit.service';
import { AuditBatchWriter } from './audit-writer';
import { DisclosureService, type DisclosurePolicy } from './disclosure.service';
import { ExposureService } from './exposure.service';
import { HubClient, type HubClientOptions } from '../federation/hub-client';
import { FederationClaimLoop, type ClaimLoopOptions } from './federation-node/federation-claim-loop';
import { FederationComputeService } from './federation-node/federation-compute.service';
import { FederationNodeService, type FederationNodeOptions } from './federation-node/federation-node.service';
import { FederatedInferenceRunner } from './federation-node/federated-inference-runner';
import { FederatedInferenceService } from './federation-hub/federated-inference.service';
import { GradingService } from './grading.service';
import { SessionCache } from '../inference/session-cache';
import { QUEUE_POLICY } from '../queue/job-catalogue';
import { JobQueue } from '../queue/job-queue';
import { InferenceRunner } from './inference-job/inference-runner';
import { InferenceService } from './inference-job/inference.service';
import { IngestService } from './ingest/ingest.service';
import { ManifestService } from './manifest/manifest.service';
import { MetricsService } from './metrics.service';
import { MrmcService } from './mrmc.service';
import { ModelService } from './model.service';
import { NodeKeyService } from './node-key.service';
import { PostgresPubSub } from '../pubsub/postgres-pubsub';
import { FileObjectStore } from '../storage/file-object-store';
import type { ObjectStore } from '../storage/object-store';
import { DEFAULT_READ_LIMITS, type ReadLimits } from '../dicom/reader';
import { ImagingService } from './imaging.service';
import { DicomwebService } from './dicomweb/dicomweb.service';
import { DEFAULT_RENDER_POOL, RenderPool, type RenderPoolOptions } from '../inference/render-pool';
import { MonitoringService } from './monitoring.service';
import { PatientService } from './patient.service';
import { ReaderService } from './reader.service';
import { ReadingService } from './reading.service';
import { ReferenceService } from './reference.service';
import { ReferenceImportService } from './reference-import.service';
import { SiteService } from './site.service';
import { SplitService } from './split.service';
import { TokenLifetimeService } from './token-lifetime.service';
import { TokenService } from './token.service';
import { FederatedQueryService } from './federation-hub/federated-query.service';
import { FederatedRounds } from './federation-hub/federated-rounds';
import { HubStatisticsService } from './federation-hub/hub-statistics.service';
import { chainRounds } from './federation-hub/task-status';
import { FederationHubService } from './federation-hub/federation-hub.service';
import { Hub, type HubOptions } from './federation-hub/hub-registry';

export interface ServiceOptions {
  /** Root of a file object store (`<dataDir>/objects`), used when `objects` is not given. */
  objectRoot: string;
  /** The node's object store (node.ts opens the one FACET_OBJECT_STORE names); unset: files under `objectRoot`. */
  objects?: ObjectStore;
  /** Where the LISTEN connection of the pub/sub goes (the DataSource's database); unset: no listening. */
  databaseUrl?: string;
  /** ONNX Runtime execution providers, tried in order (FACET_EXECUTION_PROVIDERS, default cpu). */
  executionProviders?: readonly string[];
  /** Inference batch size and job timing (Config's inferenceBatchSize, jobSliceSeconds, jobExpireSeconds, queueMaintenanceSeconds). */
  jobs?: Partial<JobTiming>;
  /** Release policy for roles without patient-level access (Config's minGroupPatients, rocGridSteps). */
  disclosure?: Partial<DisclosurePolicy>;
  /** How much work one DICOM object may cause (Config's dicomMaxElements, dicomMaxDepth; inflated size up to maxStowBytes). */
  dicomLimits?: Partial<ReadLimits>;
  /** WADO-RS rendering threads and queue (Config's renderThreads, renderQueue); unset: the CPU count, 4 per thread. */
  render?: Partial<RenderPoolOptions>;
  /** Set on a federation hub (`serve --hub`): its registry folder and signing identity. */
  hub?: HubOptions | null;
  /** This node's federation membership (Config's federation plus the data directory of its identity); unset: none. */
  federation?: (FederationNodeOptions & { client?: Partial<HubClientOptions>; claim?: ClaimLoopOptions }) | null;
}

export interface JobTiming {
  inferenceBatchSize: number;
  jobSliceSeconds: number;
  jobExpireSeconds: number;
  queueMaintenanceSeconds: number;
  /** Retries of a failed or expired queue job before its inference job is marked FAILED. */
  jobRetryLimit: number;
}

/** Every service of a node, built once over one DataSource. The composition root hands them to resolvers. */
export function createServices(dataSource: DataSource, options: ServiceOptions) {
  const db = new Db(dataSource);
  const objects = options.objects ?? new FileObjectStore(options.objectRoot);
  const nodeKeys = new NodeKeyService(db);
  const pubSub = new PostgresPubSub(dataSource, options.databaseUrl ?? '');
  const audit = new AuditService(db, new AuditBatchWriter(db));
  const grading = new GradingService(db);
  const sites = new SiteService(db, audit);
  const readers = new ReaderService(db, audit);
  const patients = new PatientService(db, audit);
  const imaging = new ImagingService(db, audit, objects);
  const renderPool = new RenderPool({ ...DEFAULT_RENDER_POOL, ...options.render });
  const dicomweb = new DicomwebService(db, audit, objects, renderPool);
  const exposures = new ExposureService(db);
  const readings = new ReadingService(db, audit, grading, patients, readers, exposures);
  const references = new ReferenceService(db, audit, grading, readers, exposures);
  const referenceImports = new ReferenceImportService(db, audit, readers);
  const splits = new SplitService(db, audit);
  const tokens = new TokenService(db, audit, pubSub);
  const tokenLifetimes = new TokenLifetimeService(pubSub);
  const ingest = new IngestService(db, audit, nodeKeys, sites, objects, pubSub, { ...DEFAULT_READ_LIMITS, ...options.dicomLimits });
  const manifests = new ManifestService(db, audit, nodeKeys, patients, readings);
  const models = new ModelService(db, audit, objects, options.executionProviders);
  // Constructed here, started by the process that runs the node (serve: to send; worker: to send and work).
  const jobs: JobTiming = {
    inferenceBatchSize: 16,
    jobSliceSeconds: 20,
    jobExpireSeconds: QUEUE_POLICY.expireInSeconds,
    queueMaintenanceSeconds: QUEUE_POLICY.maintenanceIntervalSeconds,
    jobRetryLimit: QUEUE_POLICY.retryLimit,
    ...options.jobs,
  };
  const queue = new JobQueue(options.databaseUrl ?? '', {
    supervise: true,
    expireInSeconds: jobs.jobExpireSeconds,
    maintenanceIntervalSeconds: jobs.queueMaintenanceSeconds,
    retryLimit: jobs.jobRetryLimit,
  });
  const inference = new InferenceService(db, audit, queue, pubSub);
  const monitoring = new MonitoringService(db, queue);
  const inferenceRunner = new InferenceRunner(db, objects, queue, pubSub, new SessionCache(options.executionProviders ?? ['cpu']), {
    batchSize: jobs.inferenceBatchSize,
    sliceMs: jobs.jobSliceSeconds * 1000,
  });
  const disclosure = new DisclosureService(db, options.disclosure);
  const metrics = new MetricsService(db, disclosure);
  const agreement = new AgreementService(db, disclosure);
  const mrmc = new MrmcService(db, disclosure);
  const hub = options.hub ? new Hub(db, options.hub) : null;
  const federationHub = new FederationHubService(db, pubSub, hub, queue);
  const federatedQueries = new FederatedQueryService(db, audit, queue, pubSub, hub, undefined, disclosure.policy.minGroupPatients);
  // A multi-round query (AUC) moves to its next round when a round settles, whichever path settled it.
  if (hub) chainRounds(db, new FederatedRounds(db, queue, pubSub, disclosure.policy.minGroupPatients));
  const hubStatistics = new HubStatisticsService(db, federatedQueries, hub !== null);
  const federationCompute = new FederationComputeService(db, metrics, agreement, nodeKeys);
  const federation = options.federation ?? null;
  const hubClient = federation ? new HubClient({ url: federation.hubUrl, ...federation.client }) : null;
  const federationNode = new FederationNodeService(db, audit, queue, federationCompute, federation, hubClient);
  const federatedInferenceRunner = new FederatedInferenceRunner(db, federationNode, models, inference, hubClient);
  federationNode.useInference(federatedInferenceRunner);
  const federatedInference = new FederatedInferenceService(db, audit, queue, pubSub, hub, objects);
  // Started by the process that works the queues (worker, serve --with-worker), never by a plain server.
  // Its own client: stopping the loop closes the long-poll's connections, not those that deliver results.
  const federationClaimLoop = federation
    ? new FederationClaimLoop(db, federationNode, new HubClient({ url: federation.hubUrl, ...federation.client }), federation.claim)
    : null;
  return {
    db,
    objects,
    pubSub,
    nodeKeys,
    audit,
    exposures,
    grading,
    sites,
    readers,
    patients,
    imaging,
    dicomweb,
    renderPool,
    monitoring,
    readings,
    references,
    referenceImports,
    splits,
    tokens,
    tokenLifetimes,
    ingest,
    manifests,
    models,
    disclosure,
    metrics,
    agreement,
    mrmc,
    queue,
    inference,
    inferenceRunner,
    federationHub,
    federatedQueries,
    hubStatistics,
    federationCompute,
    federationNode,
    federationClaimLoop,
    federatedInference,
    federatedInferenceRunner,
  };
}

export type Services = ReturnType<typeof createServices>;

export {
  AgreementService,
  FederationComputeService,
  FederationNodeService,
  AuditService,
  DisclosureService,
  ExposureService,
  GradingService,
  InferenceRunner,
  InferenceService,
  IngestService,
  ManifestService,
  MetricsService,
  ModelService,
  MrmcService,
  NodeKeyService,
  ImagingService,
  PatientService,
  ReaderService,
  ReadingService,
  ReferenceImportService,
  ReferenceService,
  SiteService,
  SplitService,
  TokenLifetimeService,
  TokenService,
  FederationHubService,
  FederatedQueryService,
  HubStatisticsService,
  FederatedInferenceService,
  FederatedInferenceRunner,
};
export type { HubOptions };
export { HUB_ANONYMOUS_BODY_BYTES } from './federation-hub/hub-registry';
export type { FederatedQueryView } from './federation-hub/federated-query.service';
export type { FederatedInferenceView } from './federation-hub/federated-inference.service';
export type { FederatedInferenceRunView } from './federation-node/federated-inference-runner';
export * from './request-context';
export type { Page } from './pagination';
export type { Disclosure, DisclosurePolicy } from './disclosure.service';
