import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../server/db/data-source';
import { runMigrations } from '../server/db/migrate';
import { createSchema } from '../server/graphql/schema';
import { startHttpServer } from '../server/http/app';
import { createServices, type JobTiming, type Services } from '../server/services';
import type { ObjectStore } from '../server/storage/object-store';

const BASE = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function admin(sql: string): Promise<void> {
  const client = new Client({ connectionString: BASE });
  await client.connect();
  await client.query(sql);
  await client.end();
}

export interface BenchNode {
  databaseUrl: string;
  dataDir: string;
  dataSource: DataSource;
  services: Services;
  /** Set when started with `http`. */
  url: string;
  /** Services over the same database and object store with other job settings (their queue is not started). */
  servicesWith(jobs: Partial<JobTiming>): Services;
}

/**
 * Runs `body` against a node of its own: a fresh migrated database on the machine's PostgreSQL (TEST_DATABASE_URL,
 * default 127.0.0.1:5432), an object store in a temporary folder (or `objects`), the queue started, and with `http` the real
 * server on a free port. Everything is dropped afterwards.
 */
export async function withBenchNode(options: { http?: boolean; objects?: ObjectStore }, body: (node: BenchNode) => Promise<void>): Promise<void> {
  const name = `facet_bench_${randomBytes(4).toString('hex')}`;
  const url = new URL(BASE);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'facet-bench-'));
  await admin(`CREATE DATABASE ${name}`);
  const dataSource = createDataSource(databaseUrl, { poolSize: 10 });
  const servicesWith = (jobs: Partial<JobTiming>) =>
    createServices(dataSource, { objectRoot: path.join(dataDir, 'objects'), objects: options.objects, databaseUrl, jobs });
  let services: Services | null = null;
  let server: Awaited<ReturnType<typeof startHttpServer>> | null = null;
  try {
    await dataSource.initialize();
    await runMigrations(dataSource);
    services = servicesWith({});
    await services.queue.start();
    if (options.http) {
      server = await startHttpServer(
        {
          host: '127.0.0.1',
          port: 0,
          introspection: false,
          maxQueryDepth: 12,
          maxAliases: 30,
          maxQueryCost: 250_000,
          maxBodyBytes: 1 << 24,
          maxAnonymousBodyBytes: 8 * 1024,
          maxQueryTokens: 5000,
          maxStowBytes: 1 << 30,
        },
        services,
        await createSchema(services),
        dataSource,
      );
    }
    await body({ databaseUrl, dataDir, dataSource, services, url: server?.url ?? '', servicesWith });
  } finally {
    await server?.close();
    await services?.queue.stop();
    if (dataSource.isInitialized) await dataSource.destroy();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await rm(dataDir, { recursive: true, force: true });
  }
}
