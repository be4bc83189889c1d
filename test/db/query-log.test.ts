import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { createDataSource } from '../../server/db/data-source';
import { Role } from '../../server/domain';
import { createServices, systemContext } from '../../server/services';
import { gql } from '../helpers/graphql-client';
import { filePassed } from '../helpers/lifecycle';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db';

/** The JSON lines of a process's output. */
const jsonLines = (output: string): Array<Record<string, unknown>> =>
  output.split('\n').flatMap((line) => {
    try {
      return line.startsWith('{') ? [JSON.parse(line) as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });

describe('what a failed query leaves in the log', () => {
  let database: TestDatabase;
  let dataDir: string;
  let served: NodeProcess | null = null;
  let admin: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'facet-query-log-'));
    const ds = createDataSource(database.url, { poolSize: 2 });
    await ds.initialize();
    ({ secret: admin } = await createServices(ds, { objectRoot: path.join(dataDir, 'objects') }).tokens.createApiToken(systemContext('test'), {
      name: 'admin',
      role: Role.ADMIN,
    }));
    await ds.destroy();
    // A rule the services do not check, so the INSERT itself fails (as a race past a service's check would).
    const client = new Client({ connectionString: database.url });
    await client.connect();
    await client.query(`ALTER TABLE site ADD CONSTRAINT site_name_not_canary CHECK (name NOT LIKE '%CANARY%')`);
    // A failure no service expects, whose PostgreSQL message quotes the value (invalid input syntax for type uuid: "...").
    await client.query(`CREATE FUNCTION site_name_as_uuid() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.code = 'C2' THEN PERFORM NEW.name::uuid; END IF; RETURN NEW; END $$`);
    await client.query(`CREATE TRIGGER site_name_as_uuid BEFORE INSERT ON site FOR EACH ROW EXECUTE FUNCTION site_name_as_uuid()`);
    await client.end();
  });
  afterAll(async () => {
    await served?.stop();
    if (filePassed()) {
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('names the SQLSTATE and constraint of a failed query, never its parameters or the values PostgreSQL quotes', async () => {
    served = await startNodeProcess(['serve'], { DATABASE_URL: database.url, FACET_DATA_DIR: dataDir });
    const canary = `CANARY-${randomBytes(6).toString('hex')}`;
    // The INSERT's parameters carry the value; PostgreSQL's detail ("Failing row contains ...") too.
    const created = await gql(served.url, admin, `mutation ($name: String!) { createSite(input: { code: "C1", name: $name }) { id } }`, { name: canary });
    expect(created.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', constraint: 'site_name_not_canary' });
    // An unexpected failure whose message quotes the value.
    const uuidCanary = `CANARY-${randomBytes(6).toString('hex')}`;
    const job = await gql(served.url, admin, `mutation ($name: String!) { createSite(input: { code: "C2", name: $name }) { id } }`, { name: uuidCanary });
    expect(job.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(await served.stop()).toBe(0);

    const output = served.output();
    expect(output).not.toContain(canary);
    expect(output).not.toContain(uuidCanary);
    expect(output).not.toMatch(/PARAMETERS|Failing row|invalid input syntax/);
    const lines = jsonLines(output);
    expect(lines.filter((l) => l.message === 'query failed')).toEqual(
      expect.arrayContaining([expect.objectContaining({ code: '23514', constraint: 'site_name_not_canary' }), expect.objectContaining({ code: '22P02' })]),
    );
    // The unexpected one is logged under the id the client was given, by its SQLSTATE.
    const requestId = job.errors![0].extensions!.requestId;
    expect(lines.find((l) => l.requestId === requestId)).toMatchObject({ level: 'error', path: 'createSite', error: { code: '22P02' } });
  });
});
