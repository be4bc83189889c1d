import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { FederationTaskKind } from '../../../server/federation/protocol';
import { filePassed } from '../../helpers/lifecycle';
import { createTestDatabase, type TestDatabase } from '../../helpers/test-db';
import { ScriptedHub } from './scripted-hub';

const MAIN = path.resolve(__dirname, '../../../dist/server/main.js');
const SITE = 'NORTH';
const ALL = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], env: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  return { child, output: () => out, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the federation node in real processes (facet node identity, facet worker)', () => {
  let database: TestDatabase;
  let dataDir: string;
  let hub: ScriptedHub;
  const workers: Running[] = [];

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error('Build first: `npm run build` (npm test does).');
    database = await createTestDatabase();
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'facet-node-process-'));
    hub = await new ScriptedHub(SITE, null).listen();
  });

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await hub?.close();
    if (filePassed()) {
      await database?.drop();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  it('`facet node identity` prints the registry entry on stdout and the key id on stderr; bad options exit 1', async () => {
    const identity = start(['node', 'identity', '--code', SITE, '--name', 'North', '--contact-name', 'Admin', '--contact-email', 'admin@north.example'], {
      FACET_DATA_DIR: dataDir,
    });
    expect(await identity.exited).toBe(0);
    const entry = JSON.parse(identity.output().slice(0, identity.output().lastIndexOf('}') + 1));
    expect(entry).toMatchObject({ code: SITE, name: 'North', contact: { name: 'Admin', email: 'admin@north.example' } });
    expect(identity.output()).toMatch(/Key id \(read it to the hub operator\): SHA256:/);
    hub.setNodeKey(entry.signingKey);
    const bad = start(['node', 'identity', '--code', SITE], { FACET_DATA_DIR: dataDir });
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/missing --name, --contact-name, --contact-email/);
  });

  it('two workers of one node: one claim loop (the advisory lock), the task answered once, both stop cleanly', async () => {
    const env = {
      DATABASE_URL: database.url,
      FACET_DATA_DIR: dataDir,
      FACET_HUB_URL: hub.url,
      FACET_HUB_SIGNING_KEY: hub.identity.public.signingKey,
      FACET_FEDERATION_SITE: SITE,
    };
    workers.push(start(['worker'], env), start(['worker'], env));
    await until('both workers', () => workers.every((w) => /federation claim loop started/.test(w.output())));
    await until('a claim', () => hub.claims.length > 0);
    const client = new Client({ connectionString: database.url });
    await client.connect();
    try {
      const locks = async () =>
        (
          await client.query(
            `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND objid::bigint = (hashtext($1)::bigint & 4294967295)`,
            [`facet-federation-claim:${SITE}`],
          )
        ).rows[0].n;
      expect(await locks()).toBe(1);
      const task = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
      hub.send(task);
      await until('the result', () => hub.resultFor(task.taskId) !== undefined);
      await until(
        'the receipt',
        async () => (await client.query(`SELECT state FROM federation_inbox_task WHERE task_id = $1`, [task.taskId])).rows[0]?.state === 'SUBMITTED',
      );
      expect(hub.results.filter((r) => r.payload.taskId === task.taskId)).toHaveLength(1);
      for (const w of workers) w.child.kill('SIGTERM');
      expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
      expect(await locks()).toBe(0);
    } finally {
      await client.end();
    }
  });

  it('`serve` alone never claims; `serve --with-worker` runs the claim loop and answers', async () => {
    const env = {
      DATABASE_URL: database.url,
      FACET_DATA_DIR: dataDir,
      PORT: '0',
      FACET_HUB_URL: hub.url,
      FACET_HUB_SIGNING_KEY: hub.identity.public.signingKey,
      FACET_FEDERATION_SITE: SITE,
    };
    const plain = start(['serve'], env);
    workers.push(plain);
    await until('the server', () => /Facet is running/.test(plain.output()));
    const claims = hub.claims.length;
    await new Promise((r) => setTimeout(r, 2000));
    expect(hub.claims.length).toBe(claims);
    plain.child.kill('SIGTERM');
    expect(await plain.exited).toBe(0);
    const serving = start(['serve', '--with-worker'], env);
    workers.push(serving);
    await until('the claim loop', () => /federation claim loop started/.test(serving.output()));
    const task = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    hub.send(task);
    await until('the result', () => hub.resultFor(task.taskId) !== undefined);
    expect(hub.resultFor(task.taskId)?.payload.state).toBe('SUCCEEDED');
    serving.child.kill('SIGTERM');
    expect(await serving.exited).toBe(0);
  });
});
