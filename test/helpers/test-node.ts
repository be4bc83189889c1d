import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DataSource, Logger } from 'typeorm';
import { createDataSource } from '../../server/db/data-source';
import { createSchema } from '../../server/graphql/schema';
import { startHttpServer, type RunningServer } from '../../server/http/app';
import type { ReadLimits } from '../../server/dicom/reader';
import { createServices, type DisclosurePolicy, type HubOptions, type JobTiming, type ServiceOptions, type Services } from '../../server/services';
import type { ObjectStore } from '../../server/storage/object-store';
import { createTestDatabase, type TestDatabase } from './test-db';

/** Counts the SQL statements the node sends, for the N+1 test. */
export class QueryCounter implements Logger {
  count = 0;
  /** Of which audit INSERT statements (a transaction's own, or one per GraphQL request for the rows of its reads). */
  auditInserts = 0;
  logQuery(query: string): void {
    this.count++;
    if (/^INSERT INTO "?audit_event"? /.test(query)) this.auditInserts++;
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
}

export interface TestNode {
  url: string;
  /** The node's data directory (object store under `objects/`). */
  dataDir: string;
  services: Services;
  dataSource: DataSource;
  database: TestDatabase;
  queries: QueryCounter;
  server: RunningServer;
  close(passed: boolean): Promise<void>;
}

export const TEST_LIMITS = {
  introspection: true,
  maxQueryDepth: 12,
  maxAliases: 30,
  maxQueryCost: 250_000,
  maxBodyBytes: 1_000_000,
  maxAnonymousBodyBytes: 8 * 1024,
  maxQueryTokens: 5000,
  maxStowBytes: 64 * 1024 * 1024,
};

export interface TestNodeOptions {
  jobs?: Partial<JobTiming>;
  disclosure?: Partial<DisclosurePolicy>;
  dicomLimits?: Partial<ReadLimits>;
  /** Overrides of TEST_LIMITS (e.g. a small STOW limit, so an oversized body is cheap to send). */
  limits?: Partial<typeof TEST_LIMITS>;
  /** FACET_METRICS_TOKEN of the node: a bearer secret that may scrape /metrics. */
  metricsToken?: string;
  /** Run as a federation hub with this registry and identity. */
  hub?: HubOptions;
  /** The node's object store (an S3 one, say); unset: files under the node's data directory. */
  objects?: ObjectStore;
  /** A federation member node (its identity under the node's data directory unless `dataDir` says otherwise). */
  federation?: Omit<NonNullable<ServiceOptions['federation']>, 'dataDir'> & { dataDir?: string };
}

/** The real server (Apollo, graphql-ws, services) on port 0 over a database of this file's own. */
export async function startTestNode(options: TestNodeOptions = {}): Promise<TestNode> {
  const database = await createTestDatabase();
  const queries = new QueryCounter();
  const dataSource = createDataSource(database.url, { poolSize: 5, logger: queries });
  await dataSource.initialize();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'facet-node-'));
  const services = createServices(dataSource, {
    objectRoot: path.join(dataDir, 'objects'),
    objects: options.objects,
    databaseUrl: database.url,
    jobs: options.jobs,
    disclosure: options.disclosure,
    dicomLimits: options.dicomLimits,
    hub: options.hub,
    federation: options.federation ? { dataDir, ...options.federation } : null,
  });
  await services.queue.start();
  const schema = await createSchema(services);
  const server = await startHttpServer(
    { host: '127.0.0.1', port: 0, ...TEST_LIMITS, ...options.limits, metricsToken: options.metricsToken ?? null },
    services,
    schema,
    dataSource,
  );
  return {
    url: server.url,
    dataDir,
    services,
    dataSource,
    database,
    queries,
    server,
    close: async (passed) => {
      await services.federationClaimLoop?.stop();
      await services.federationNode.close();
      await server.close();
      await services.queue.stop();
      await dataSource.destroy();
      if (passed) {
        await database.drop();
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
