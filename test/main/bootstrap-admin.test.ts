import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { filePassed } from '../helpers/lifecycle';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db';

const MAIN = path.resolve(__dirname, '../../dist/server/main.js');
const SECRET = /fct_[A-Za-z0-9_-]+/;

interface Served {
  child: ChildProcess;
  url: string;
  output: string;
  dataDir: string;
}

/** `serve` as an operator runs it (DATABASE_URL, its own data directory, any free port), up to its banner. */
async function serve(databaseUrl: string, dataDir: string): Promise<Served> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: databaseUrl, FACET_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' };
  const child = spawn(process.execPath, [MAIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 60_000;
  while (!/Press Ctrl-C to stop/.test(output)) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`serve did not start in time:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const url = /GraphQL:\s+(http:\/\/\S+)\/graphql/.exec(output)?.[1];
  if (!url) throw new Error(`No URL in the banner:\n${output}`);
  return { child, url, output, dataDir };
}

async function stop(served: Served): Promise<void> {
  if (served.child.exitCode !== null) return;
  const exited = new Promise((resolve) => served.child.once('exit', resolve));
  served.child.kill('SIGINT');
  await exited;
}

async function tokenRows(url: string): Promise<Array<{ name: string; role: string; revoked: boolean }>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query('SELECT name, role, revoked_at IS NOT NULL AS revoked FROM api_token ORDER BY created_at')).rows;
  } finally {
    await client.end();
  }
}

describe('the bootstrap admin token (dist/server/main.js serve)', () => {
  const databases: TestDatabase[] = [];
  const running: Served[] = [];
  const dirs: string[] = [];
  const tempDir = async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'facet-bootstrap-'));
    dirs.push(dir);
    return dir;
  };
  const emptyDatabase = async () => {
    const database = await createTestDatabase();
    databases.push(database);
    return database;
  };
  const started = async (databaseUrl: string, dataDir: string) => {
    const served = await serve(databaseUrl, dataDir);
    running.push(served);
    return served;
  };

  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error('Build first: `npm run build` (npm test does).');
  });
  afterAll(async () => {
    await Promise.all(running.map(stop));
    if (!filePassed()) return;
    await Promise.all(databases.map((d) => d.drop()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('is minted on an empty database and printed once; later starts only say where it is; after revocation none is minted again', async () => {
    const database = await emptyDatabase();
    const dataDir = await tempDir();
    const file = path.join(dataDir, 'admin-token');

    const first = await started(database.url, dataDir);
    const secret = SECRET.exec(first.output)?.[0];
    expect(secret).toBeDefined();
    expect(first.output.match(new RegExp(secret!, 'g'))).toHaveLength(1);
    expect((await readFile(file, 'utf8')).trim()).toBe(secret);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await gqlOk(first.url, secret!, '{ viewer { role } }')).viewer.role).toBe('ADMIN');
    expect(await tokenRows(database.url)).toEqual([{ name: 'bootstrap admin', role: 'ADMIN', revoked: false }]);
    await stop(first);

    const second = await started(database.url, dataDir);
    expect(second.output).not.toMatch(SECRET);
    expect(second.output).toContain(`Admin token: in ${file}`);
    expect(await tokenRows(database.url)).toHaveLength(1);

    // The admin revokes it (here with itself); no start mints another.
    const { apiTokens } = await gqlOk(second.url, secret!, '{ apiTokens { nodes { id } } }');
    await gqlOk(second.url, secret!, 'mutation ($id: ID!) { revokeApiToken(id: $id) { id } }', { id: apiTokens.nodes[0].id });
    expect(codeOf(await gql(second.url, secret!, '{ viewer { role } }'))).toBe('UNAUTHENTICATED');
    await stop(second);

    const third = await started(database.url, dataDir);
    expect(third.output).not.toMatch(SECRET);
    expect(third.output).toMatch(/Admin token: none made \(this database already has tokens\)/);
    expect(await tokenRows(database.url)).toEqual([{ name: 'bootstrap admin', role: 'ADMIN', revoked: true }]);
    expect((await readFile(file, 'utf8')).trim()).toBe(secret);
    await stop(third);

    // A new data directory against the same database mints nothing either.
    const elsewhere = await started(database.url, await tempDir());
    expect(elsewhere.output).not.toMatch(SECRET);
    expect(existsSync(path.join(elsewhere.dataDir, 'admin-token'))).toBe(false);
    expect(await tokenRows(database.url)).toHaveLength(1);
    await stop(elsewhere);
  });

  it('is minted exactly once when two servers start together on one empty database', async () => {
    const database = await emptyDatabase();
    const servers = await Promise.all([started(database.url, await tempDir()), started(database.url, await tempDir())]);
    const printed = servers.filter((s) => SECRET.test(s.output));
    expect(printed).toHaveLength(1);
    const secret = SECRET.exec(printed[0].output)![0];
    expect(servers.filter((s) => existsSync(path.join(s.dataDir, 'admin-token')))).toEqual(printed);
    expect(await tokenRows(database.url)).toEqual([{ name: 'bootstrap admin', role: 'ADMIN', revoked: false }]);
    for (const server of servers) expect((await gqlOk(server.url, secret, '{ viewer { role } }')).viewer.role).toBe('ADMIN');
    await Promise.all(servers.map(stop));
  });
});
