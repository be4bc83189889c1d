import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { MIGRATIONS } from '../../migrations';
import { createDataSource } from '../../server/db/data-source';
import { Role } from '../../server/domain';
import { createServices, systemContext } from '../../server/services';
import { stow } from '../helpers/stow';
import { syntheticCtSeries, SYNTHETIC_PATIENT_ID } from '../helpers/synthetic-dicom';
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

  const servers: NodeProcess[] = [];

  it('migrates once, mints one admin token, and all of them serve', async () => {
    const dataDirs = await Promise.all(Array.from({ length: SERVERS }, () => mkdtemp(path.join(os.tmpdir(), 'facet-together-'))));
    dirs.push(...dataDirs);
    const started = await Promise.all(
      dataDirs.map((dataDir) =>
        startNodeProcess(['serve'], { ...s3.env('facet-concurrent-start'), DATABASE_URL: database.url, FACET_DATA_DIR: dataDir }, 240_000),
      ),
    );
    servers.push(...started);
    running.push(...started);

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

  it('keeps a batch all or nothing across servers: one batch sent to every server at once lands once, a batch with one bad object lands nowhere', async () => {
    expect(servers).toHaveLength(SERVERS);
    const ds = createDataSource(database.url, { poolSize: 2 });
    await ds.initialize();
    const services = createServices(ds, { objectRoot: dirs[0], objects: s3.store('facet-concurrent-start') });
    const count = async () => {
      const [row] = await ds.query(`SELECT (SELECT count(*) FROM instance)::int AS instances, (SELECT count(*) FROM study)::int AS studies`);
      let objects = 0;
      for await (const page of services.objects.list()) objects += page.length;
      return { ...row, objects };
    };
    try {
      const ctx = systemContext('test');
      const site = await services.sites.createSite(ctx, { code: 'EAST', name: 'East' });
      await services.manifests.importPatients(ctx, `site,patient_id\nEAST,${SYNTHETIC_PATIENT_ID}\n`);
      const { secret } = await services.tokens.createApiToken(ctx, { name: 'c', role: Role.COORDINATOR, siteId: site.id });

      // The same 12 objects through every server at the same moment: each answer accepts all of them, stored once.
      const series = syntheticCtSeries(12, 64, '1');
      const answers = await Promise.all(
        servers.map((server) =>
          stow(
            server.url,
            secret,
            series.map((bytes) => ({ bytes })),
          ),
        ),
      );
      for (const answer of answers) expect([answer.status, answer.stored.length, answer.failed]).toEqual([202, 12, []]);
      expect(new Set(answers.map((a) => JSON.stringify(a.stored.map((i) => i['00081155'].Value[0]).sort()))).size).toBe(1);
      expect(await count()).toEqual({ instances: 12, studies: 1, objects: 12 });

      // Eight new objects and one that is not DICOM: refused whole, on whichever server, with nothing left behind.
      const mixed = [...syntheticCtSeries(8, 64, '2').map((bytes) => ({ bytes })), { bytes: Buffer.from('not a DICOM file') }];
      for (const server of servers.slice(0, 2)) {
        const refused = await stow(server.url, secret, mixed);
        expect([refused.status, refused.stored]).toEqual([409, []]);
        expect(refused.failed).toHaveLength(9);
      }
      expect(await count()).toEqual({ instances: 12, studies: 1, objects: 12 });
    } finally {
      await services.objects.close();
      await ds.destroy();
    }
  });
});
