import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gqlOk } from '../helpers/graphql-client';
import { filePassed } from '../helpers/lifecycle';
import { freePort } from '../helpers/free-port';

const MAIN = path.resolve(__dirname, '../../dist/server/main.js');

interface Started {
  child: ChildProcess;
  url: string;
  /** The admin token in the banner: only on the start that minted it. */
  token: string | null;
  output: () => string;
}

/** Runs the README's start command (`serve --demo`, no DATABASE_URL) and waits for its banner. */
async function start(dataDir: string, pgPort: number): Promise<Started> {
  const env: NodeJS.ProcessEnv = { ...process.env, FACET_DATA_DIR: dataDir, FACET_EMBEDDED_PG_PORT: String(pgPort), PORT: '0', HOST: '127.0.0.1' };
  delete env.DATABASE_URL;
  const child = spawn(process.execPath, [MAIN, 'serve', '--demo'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  // Loading the demo study takes minutes on a loaded 2-core machine: a ceiling below the test's own.
  const deadline = Date.now() + 480_000;
  while (!/Press Ctrl-C to stop/.test(out)) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) throw new Error(`serve did not start in time:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = /GraphQL:\s+(http:\/\/\S+)\/graphql/.exec(out)?.[1];
  const token = /\n\s+(fct_\S+)\n/.exec(out)?.[1] ?? null;
  if (!url) throw new Error(`No URL in the banner:\n${out}`);
  return { child, url, token, output: () => out };
}

async function interrupt(started: Started): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => started.child.once('exit', (code) => resolve(code)));
  started.child.kill('SIGINT');
  return exited;
}

const SUMMARY = `{ sites { totalCount nodes { code } } patients { totalCount } splitVersions { nodes { name frozen } } referenceGrades(filter: { confirmed: false }) { totalCount } modelVersions { nodes { id name } } }`;

describe('the embedded start (README: npm start)', () => {
  let dataDir: string;
  let running: Started | null = null;

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error('Build first: `npm run build` (npm test does).');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'facet-embedded-'));
  });
  afterAll(async () => {
    if (running && running.child.exitCode === null) await interrupt(running);
    if (filePassed()) await rm(dataDir, { recursive: true, force: true });
  });

  it('starts PostgreSQL, migrates, loads the demo study, serves GraphQL, stops cleanly on Ctrl-C and reuses the data', async () => {
    const pgPort = await freePort();
    running = await start(dataDir, pgPort);
    const token = running.token;
    if (!token) throw new Error(`The first start printed no admin token:\n${running.output()}`);
    const first = await gqlOk(running.url, token, SUMMARY);
    expect(first.sites.totalCount).toBe(3);
    expect(first.patients.totalCount).toBe(18);
    expect(first.splitVersions.nodes).toEqual([{ name: 'demo-v1', frozen: true }]);
    expect(first.referenceGrades.totalCount).toBe(0);
    expect(first.modelVersions.nodes.map((m: { name: string }) => m.name)).toEqual(['facet-reference']);
    const metrics = await gqlOk(
      running.url,
      token,
      `query ($id: ID!) { metrics(input: { rater: { modelVersionId: $id }, bootstrapReplicates: 200 }) { groups { cases auc { value method } } } }`,
      {
        id: first.modelVersions.nodes[0].id,
      },
    );
    // The reference model's predictions from the demo's inference job: 150 joints x 3 modalities x 5 features.
    expect(metrics.metrics.groups[0]).toMatchObject({ cases: 2250, auc: { method: 'obuchowski' } });
    expect(metrics.metrics.groups[0].auc.value).toBeGreaterThan(0.75);
    expect(await readFile(path.join(dataDir, 'admin-token'), 'utf8')).toContain(token);
    expect((await fetch(`${running.url}/graphiql`)).status).toBe(200);

    expect(await interrupt(running)).toBe(0);
    expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);

    running = await start(dataDir, pgPort);
    expect(running.output()).not.toMatch(/demo cohort loaded|migrations applied/);
    // The secret is printed once, at the first start; the restart says where it is and the token still works.
    expect(running.token).toBeNull();
    expect(running.output()).not.toContain(token);
    expect(running.output()).toContain(`Admin token: in ${path.join(dataDir, 'admin-token')}`);
    const second = await gqlOk(running.url, token, SUMMARY);
    expect(second).toEqual(first);
    expect(await interrupt(running)).toBe(0);
  });
});
