import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import type { Config } from './config/config';
import { createDataSource } from './db/data-source';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded-postgres';
import { runMigrations } from './db/migrate';
import { Role } from './domain';
import { Site } from './entities';
import { log } from './log';
import { openObjectStore } from './storage/open-object-store';
import { createServices, systemContext, type HubOptions, type Services } from './services';

/** A node's storage and services: the database (embedded when no DATABASE_URL), migrated. */
export interface OpenNode {
  /** The connection URL in use (the embedded one when DATABASE_URL is unset). */
  url: string;
  dataSource: DataSource;
  services: Services;
  embedded: EmbeddedDatabase | null;
  close(): Promise<void>;
}

export async function openNode(config: Config, options: { migrate?: boolean; applicationName?: string; hub?: HubOptions | null } = {}): Promise<OpenNode> {
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
  const objects = openObjectStore(config.objectStore);
  return {
    url,
    dataSource,
    services: createServices(dataSource, {
      objectRoot: path.join(config.dataDir, 'objects'),
      objects,
      databaseUrl: url,
      executionProviders: config.executionProviders,
      jobs: config,
      disclosure: config,
      dicomLimits: { maxElements: config.dicomMaxElements, maxDepth: config.dicomMaxDepth, maxInflatedBytes: config.maxStowBytes },
      hub: options.hub ?? null,
      federation: config.federation ? { ...config.federation, dataDir: config.dataDir } : null,
    }),
    embedded,
    close: async () => {
      if (dataSource.isInitialized) await dataSource.destroy();
      await objects.close();
      await embedded?.stop();
    },
  };
}

export async function hasAnySite(node: OpenNode): Promise<boolean> {
  return (await node.dataSource.getRepository(Site).count()) > 0;
}

/** What this start knows of the bootstrap admin token. */
export interface BootstrapAdmin {
  /** `<dataDir>/admin-token` (0600): where the minting start wrote the secret. */
  file: string;
  /** The secret, only on the one start that minted it: it is printed then and never again. */
  secret: string | null;
  /** Whether `file` holds a secret that still authenticates (false: missing, revoked, expired or another database's). */
  fileWorks: boolean;
}

/**
 * The admin token a newcomer needs to use a fresh node: minted once, on a database with no token at all, and
 * written to `<dataDir>/admin-token` (0600) before its row commits. Later starts, a start after it was revoked, and
 * the second of two servers starting together on one database mint nothing; they only say where the token was
 * written.
 */
export async function bootstrapAdminToken(node: OpenNode, dataDir: string): Promise<BootstrapAdmin> {
  const file = path.join(dataDir, 'admin-token');
  const created = await node.services.tokens.mintBootstrapAdminToken(systemContext('bootstrap'), async (secret) => {
    await mkdir(dataDir, { recursive: true });
    // Whole or not at all (a rename), in case the other server of a pair shares this directory.
    const temp = `${file}.${process.pid}.tmp`;
    await writeFile(temp, `${secret}\n`, { mode: 0o600 });
    await rename(temp, file);
  });
  if (created) return { file, secret: created.secret, fileWorks: true };
  const kept = existsSync(file) ? (await readFile(file, 'utf8')).trim() : null;
  return { file, secret: null, fileWorks: kept !== null && (await node.services.tokens.authenticate(kept))?.role === Role.ADMIN };
}
