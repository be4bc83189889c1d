import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { MIGRATIONS } from '../../migrations';
import { gqlOk } from '../helpers/graphql-client';
import { filePassed } from '../helpers/lifecycle';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process';
import { startS3Server, type S3Server } from '../helpers/s3-server';
import { createEmptyDatabase, type TestDatabase } from '../helpers/test-db';

const SECRET = /fct_[A-Za-z0-9_-]+/;
const SERVERS = 4;

/**
 * Several `serve` processes started at the same moment against one database that has never been migrated, sharing
 * one S3 bucket, as a deployment behind a load balancer comes up for the first time: the migrations run once (an
 * advisory lock), pg-boss's schema is made once, the bootstrap admin token is minted once, and every server answers.
 */
describe('servers starting together on a fresh database', () => {
  let s3: S3Server;
  let database: TestDatabase;
  const running: NodeProcess[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    s3 = await startS3Server();
    await s3.createBucket('facet-concurrent-start');
    database = await createEmptyDatabase();
  });
  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop()));
    await s3?.stop();
    if (!filePassed()) return;
    await database?.drop();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('migrates once, mints one admin token, and all of them serve', async () => {
    const dataDirs = await Promise.all(Array.from({ length: SERVERS }, () => mkdtemp(path.join(os.tmpdir(), 'facet-together-'))));
    dirs.push(...dataDirs);
    const servers = await Promise.all(
      dataDirs.map((dataDir) =>
        startNodeProcess(['serve'], { ...s3.env('facet-concurrent-start'), DATABASE_URL: database.url, FACET_DATA_DIR: dataDir }, 240_000),
      ),
    );
    running.push(...servers);

    const client = new Client({ connectionString: database.url });
    await client.connect();
    try {
      const applied = (await client.query('SELECT name FROM migrations ORDER BY id')).rows.map((r) => r.name);
      expect(applied).toEqual(MIGRATIONS.map((m) => m.name));
      expect((await client.query(`SELECT count(*)::int AS n FROM api_token`)).rows[0].n).toBe(1);
      expect((await client.query(`SELECT count(*)::int AS n FROM pgboss.version`)).rows[0].n).toBe(1);
    } finally {
      await client.end();
    }
    const minted = servers.filter((s) => SECRET.test(s.output()));
    expect(minted).toHaveLength(1);
    const secret = SECRET.exec(minted[0].output())![0];
    expect(dataDirs.filter((d) => existsSync(path.join(d, 'admin-token')))).toHaveLength(1);
    for (const server of servers) expect((await gqlOk(server.url, secret, '{ viewer { role } }')).viewer.role).toBe('ADMIN');
  });
});
