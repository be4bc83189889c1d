import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { MIGRATIONS } from '../../migrations';
import { filePassed } from '../helpers/lifecycle';
import { adminUrl, databaseUrl, type TestDatabase } from '../helpers/test-db';
import { randomBytes } from 'node:crypto';

const MAIN = path.resolve(__dirname, '../../dist/server/main.js');

interface Run {
  code: number | null;
  out: string;
}

/** Runs the CLI; with `until`, sends SIGTERM once the output matches it. */
function cli(args: string[], env: NodeJS.ProcessEnv, until?: RegExp): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (until?.test(out)) child.kill('SIGTERM');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out }));
  });
}

async function query<T>(url: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('the facet CLI', () => {
  // An empty database (not the migrated template): `migrate` must build everything itself.
  const database: TestDatabase = (() => {
    const name = `facet_t_${randomBytes(6).toString('hex')}`;
    return { name, url: databaseUrl(name), drop: async () => void (await query(adminUrl(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)) };
  })();

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error('Build first: `npm run build` (npm test does).');
    await query(adminUrl(), `CREATE DATABASE ${database.name}`);
  });
  afterAll(async () => {
    if (filePassed()) await database.drop();
  });

  it('migrate applies every migration to an empty DATABASE_URL and exits 0', async () => {
    const run = await cli(['migrate'], { DATABASE_URL: database.url });
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/Migrations are up to date/);
    expect(await query(database.url, 'SELECT name FROM migrations')).toHaveLength(MIGRATIONS.length);
  });

  it('create-token prints a working secret, and rejects an unknown role or site', async () => {
    const run = await cli(['create-token', '--role', 'ADMIN', '--name', 'ops'], { DATABASE_URL: database.url });
    expect(run.code).toBe(0);
    expect(run.out.trim()).toMatch(/^fct_[A-Za-z0-9_-]{43}$/);
    const badRole = await cli(['create-token', '--role', 'ROOT', '--name', 'x'], { DATABASE_URL: database.url });
    expect(badRole.code).toBe(1);
    expect(badRole.out).toMatch(/needs --role/);
    const badSite = await cli(['create-token', '--role', 'COORDINATOR', '--name', 'x', '--site', 'NOWHERE'], { DATABASE_URL: database.url });
    expect(badSite.code).toBe(1);
    expect(badSite.out).toMatch(/No site with code NOWHERE/);
  });

  it('create-token --expires-in / --expires-at stores the expiry, and refuses a malformed, past or doubled one', async () => {
    const before = Date.now();
    const run = await cli(['create-token', '--role', 'ENGINEER', '--name', 'ci', '--expires-in', '2h'], { DATABASE_URL: database.url });
    expect(run.code).toBe(0);
    const secret = run.out.trim();
    const [row] = await query<{ expires_at: Date }>(database.url, `SELECT expires_at FROM api_token WHERE name = 'ci'`);
    expect(row.expires_at.getTime()).toBeGreaterThanOrEqual(before + 2 * 3_600_000 - 1000);
    expect(row.expires_at.getTime()).toBeLessThanOrEqual(Date.now() + 2 * 3_600_000 + 1000);
    expect(secret).toMatch(/^fct_/);
    const at = await cli(['create-token', '--role', 'ENGINEER', '--name', 'until', '--expires-at', '2099-01-31T18:00:00Z'], { DATABASE_URL: database.url });
    expect(at.code).toBe(0);
    const [until] = await query<{ expires_at: Date }>(database.url, `SELECT expires_at FROM api_token WHERE name = 'until'`);
    expect(until.expires_at.toISOString()).toBe('2099-01-31T18:00:00.000Z');
    for (const [args, message] of [
      [['--expires-in', '2 hours'], /--expires-in takes/],
      [['--expires-at', '2000-01-01T00:00:00Z'], /not in the future/],
      [['--expires-at', 'tomorrow'], /--expires-at takes/],
      [['--expires-in', '1h', '--expires-at', '2099-01-01'], /not both/],
    ] as Array<[string[], RegExp]>) {
      const bad = await cli(['create-token', '--role', 'ENGINEER', '--name', 'bad', ...args], { DATABASE_URL: database.url });
      expect(bad.code).toBe(1);
      expect(bad.out).toMatch(message);
    }
    expect(await query(database.url, `SELECT 1 FROM api_token WHERE name = 'bad'`)).toHaveLength(0);
  });

  it('worker starts the PostgreSQL queue and stops cleanly on SIGTERM', async () => {
    const run = await cli(['worker'], { DATABASE_URL: database.url }, /worker ready/);
    expect(run.code).toBe(0);
    expect(await query(database.url, `SELECT 1 FROM information_schema.schemata WHERE schema_name = 'pgboss'`)).toHaveLength(1);
  });

  it('worker refuses to start without DATABASE_URL, saying why', async () => {
    const run = await cli(['worker'], { DATABASE_URL: '' });
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/worker needs DATABASE_URL/);
  });

  it('prints usage for an unknown command and exits 2', async () => {
    const run = await cli(['frobnicate'], {});
    expect(run.code).toBe(2);
    expect(run.out).toMatch(/Commands:/);
  });
});
