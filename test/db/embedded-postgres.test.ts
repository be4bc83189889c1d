import { cp, lstat, mkdtemp, readlink, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { packagedBinaries, SHARED_ROOT, startEmbeddedPostgres, type EmbeddedDatabase } from '../../server/db/embedded-postgres';
import { freePort } from '../helpers/free-port';

async function query(db: EmbeddedDatabase, sql: string): Promise<unknown[]> {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

const isRoot = process.getuid?.() === 0;

/** A fresh clone in a `mktemp -d` folder is mode 0700: as root, the `postgres` user can reach nothing inside it. */
async function privateDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'facet-private-'));
}

describe('startEmbeddedPostgres', () => {
  const cleanup: string[] = [];
  afterAll(async () => {
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
  });

  it('starts in a private directory, keeps its data across restarts, and stops cleanly', async () => {
    const root = await privateDir();
    cleanup.push(root);
    const dataDir = path.join(root, 'clone', '.facet-data');
    const port = await freePort();

    const first = await startEmbeddedPostgres(dataDir, port);
    if (first.clusterDir.startsWith(SHARED_ROOT)) cleanup.push(first.clusterDir);
    try {
      await query(first, 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)');
    } finally {
      await first.stop();
    }
    if (isRoot) {
      // The cluster moved where the service user can reach it, and <dataDir>/pg points there.
      expect(first.clusterDir.startsWith(SHARED_ROOT)).toBe(true);
      expect((await lstat(path.join(dataDir, 'pg'))).isSymbolicLink()).toBe(true);
    } else {
      expect(first.clusterDir).toBe(path.join(dataDir, 'pg'));
    }

    const second = await startEmbeddedPostgres(dataDir, port);
    try {
      expect(second.clusterDir).toBe(first.clusterDir);
      expect(await query(second, 'SELECT n FROM kept')).toEqual([{ n: 42 }]);
    } finally {
      await second.stop();
    }
    // Stopped means stopped: nothing answers on the port any more.
    await expect(query(second, 'SELECT 1')).rejects.toThrow();
  });

  (isRoot ? it : it.skip)('runs binaries that sit in a private directory (a checkout the postgres user cannot reach)', async () => {
    const root = await privateDir();
    cleanup.push(root);
    const packaged = await packagedBinaries();
    const nativeCopy = path.join(root, 'node_modules', 'native');
    await cp(path.dirname(path.dirname(packaged.postgres)), nativeCopy, { recursive: true, verbatimSymlinks: true });
    const binaries = { initdb: path.join(nativeCopy, 'bin', 'initdb'), postgres: path.join(nativeCopy, 'bin', 'postgres') };

    const db = await startEmbeddedPostgres(path.join(root, 'data'), await freePort(), () => undefined, binaries);
    cleanup.push(db.clusterDir);
    try {
      expect(await query(db, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await db.stop();
    }
  });

  it('says which port to change when the port is taken', async () => {
    const root = await privateDir();
    cleanup.push(root);
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const started = startEmbeddedPostgres(path.join(root, 'data'), port);
      await expect(started).rejects.toThrow(/FACET_EMBEDDED_PG_PORT/);
    } finally {
      taken.close();
    }
    const clusterLink = path.join(root, 'data', 'pg');
    const stat = await lstat(clusterLink).catch(() => null);
    if (stat?.isSymbolicLink()) cleanup.push(await readlink(clusterLink));
  });
});
