import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import type { Config } from './config/config';
import { createDataSource } from './db/data-source';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded-postgres';
import { runMigrations } from './db/migrate';
import { Role } from './domain';
import { ApiToken, Site } from './entities';
import { log } from './http/log';
import { createServices, systemContext, type Services } from './services';

/** A node's storage and services: the database (embedded when no DATABASE_URL), migrated. */
export interface OpenNode {
  /** The connection URL in use (the embedded one when DATABASE_URL is unset). */
  url: string;
  dataSource: DataSource;
  services: Services;
  embedded: EmbeddedDatabase | null;
  close(): Promise<void>;
}

export async function openNode(config: Config, options: { migrate?: boolean; applicationName?: string } = {}): Promise<OpenNode> {
  const embedded = config.databaseUrl
    ? null
    : await startEmbeddedPostgres(config.dataDir, config.embeddedPostgresPort, (line) => {
        if (/FATAL|PANIC|ERROR/.test(line)) log.warn('embedded postgres', { line });
      });
  const url = embedded?.url ?? (config.databaseUrl as string);
  const dataSource = createDataSource(url, { applicationName: options.applicationName });
  try {
    await dataSource.initialize();
    if (options.migrate !== false) {
      const applied = await runMigrations(dataSource);
      if (applied.length) log.info('migrations applied', { applied });
    }
  } catch (error) {
    if (dataSource.isInitialized) await dataSource.destroy();
    await embedded?.stop();
    throw error;
  }
  return {
    url,
    dataSource,
    services: createServices(dataSource, {
      objectRoot: path.join(config.dataDir, 'objects'),
      databaseUrl: url,
      executionProviders: config.executionProviders,
      jobs: config,
      dicomLimits: { maxElements: config.dicomMaxElements, maxDepth: config.dicomMaxDepth, maxInflatedBytes: config.maxStowBytes },
    }),
    embedded,
    close: async () => {
      if (dataSource.isInitialized) await dataSource.destroy();
      await embedded?.stop();
    },
  };
}

export async function hasAnySite(node: OpenNode): Promise<boolean> {
  return (await node.dataSource.getRepository(Site).count()) > 0;
}

/**
 * The admin token a newcomer needs to use a fresh node. Kept in `<dataDir>/admin-token` (0600) so a restart
 * prints the same one; a new one is made when the file is missing or its token was revoked.
 */
export async function bootstrapAdminToken(node: OpenNode, dataDir: string): Promise<{ secret: string; file: string }> {
  const file = path.join(dataDir, 'admin-token');
  if (existsSync(file)) {
    const secret = (await readFile(file, 'utf8')).trim();
    const actor = await node.services.tokens.authenticate(secret);
    if (actor?.role === Role.ADMIN) return { secret, file };
  }
  const { secret } = await node.services.tokens.createApiToken(systemContext('bootstrap'), { name: 'bootstrap admin', role: Role.ADMIN });
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  return { secret, file };
}

export async function countActiveAdminTokens(node: OpenNode): Promise<number> {
  return node.dataSource
    .getRepository(ApiToken)
    .createQueryBuilder('t')
    .where('t.role = :role', { role: Role.ADMIN })
    .andWhere('t.revoked_at IS NULL')
    .getCount();
}
