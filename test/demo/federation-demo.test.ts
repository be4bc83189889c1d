import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { DEMO_SITES, demoSitesNamed, loadDemoCohort } from '../../server/demo/demo-cohort';
import { Role } from '../../server/domain';
import { prng } from '../../server/demo/phantoms';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { filePassed, useTestNode } from '../helpers/lifecycle';
import { MAIN } from '../helpers/node-process';
import { adminUrl, databaseUrl } from '../helpers/test-db';

/**
 * `facet demo-federation` as a user runs it: the built command, against the test PostgreSQL (DATABASE_URL) to stay
 * fast, its printed query run as printed, Ctrl-C, a restart on the same data, and a member that dies.
 */

const CODES = DEMO_SITES.map((s) => s.code);
/** Every pseudonym and hospital id of the demo (NORTH-P001, NORTH-MRN-001…): none may cross the wire. */
const PATIENT_LEVEL = new RegExp(`(${CODES.join('|')})-(P|MRN-)\\d{3}`);

interface Demo {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function startDemo(env: NodeJS.ProcessEnv, record: string): Demo {
  const child = spawn(process.execPath, [MAIN, 'demo-federation', '--record', record], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return { child, output: () => out, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

async function until<T>(what: string, probe: () => T | Promise<T>, ms: number): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const ready = (demo: Demo) =>
  until(
    'the demo to print its query',
    () => {
      if (demo.child.exitCode !== null) throw new Error(`demo-federation exited ${demo.child.exitCode}:\n${demo.output()}`);
      return /Press Ctrl-C to stop/.test(demo.output()) ? demo.output() : null;
    },
    300_000,
  );

/** Runs a printed shell line (bash, as a user pastes it) with `env`; its stdout. */
function sh(line: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('bash', ['-c', line], { env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      error ? reject(new Error(`${line}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

/** The two lines the demo prints to try: the start (it sets ID) and the answer (it reads $ID). */
function printedLines(output: string): { start: string; answer: string } {
  const start = /^ {2}(ID=\$\(curl .*)$/m.exec(output)?.[1];
  const answer = /^ {2}(curl .*\| jq \.data\.federatedQuery)$/m.exec(output)?.[1];
  if (!start || !answer) throw new Error(`the demo printed no query to try:\n${output}`);
  return { start, answer };
}

/** Runs the printed start line and then the printed answer line until the answer is no longer RUNNING. */
async function askAsPrinted(output: string): Promise<any> {
  const { start, answer } = printedLines(output);
  const id = (await sh(`${start} && echo "$ID"`)).trim();
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  return until(
    'a settled answer',
    async () => {
      const query = JSON.parse(await sh(answer, { ID: id }));
      return query.status !== 'RUNNING' && query;
    },
    120_000,
  );
}

const key = (row: { site: string | null; feature: string | null }) => `${row.site ?? 'POOLED'}:${row.feature}`;

describe('npm run demo:federation', () => {
  const union = useTestNode();
  const prefix = `facet_fd_${randomBytes(4).toString('hex')}`;
  const databases = ['hub', ...CODES.map((c) => c.toLowerCase())].map((n) => `${prefix}_${n}`);
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let demo: Demo;
  let output: string;
  let unionMetrics: any[];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'facet-fd-'));
    env = { DATABASE_URL: databaseUrl(prefix), FACET_DATA_DIR: dataDir };
    demo = startDemo(env, path.join(dataDir, 'wire.log'));
    // Meanwhile, the whole demo study (grades only) on one node: what the three shares must add up to.
    await loadDemoCohort(union().services, { images: false });
    const statistician = await new Factory(union().services).token(Role.STATISTICIAN);
    // Site rows are the SITE x FEATURE groups; pooled rows the FEATURE groups over every site.
    const groups = `groups { pooled site feature patients confusion { tp fp tn fn } sensitivity { value lower upper } specificity { value lower upper } }`;
    const data = await gqlOk(
      union().url,
      statistician,
      `{ bySite: metrics(input: { rater: { readerSlot: FIRST }, groupBy: [SITE, FEATURE] }) { ${groups} }
         pooled: metrics(input: { rater: { readerSlot: FIRST }, groupBy: [FEATURE] }) { ${groups} } }`,
    );
    unionMetrics = [...data.bySite.groups, ...data.pooled.groups].filter((g: any) => !g.pooled);
    output = await ready(demo);
  }, 420_000);

  afterAll(async () => {
    if (demo?.child.exitCode === null) {
      demo.child.kill('SIGINT');
      await demo.exited;
    }
    if (!filePassed()) return;
    const admin = new Client({ connectionString: adminUrl() });
    await admin.connect();
    for (const name of databases) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
    await rm(dataDir, { recursive: true, force: true });
  }, 120_000);

  it("answers the printed query COMPLETE from three nodes, each holding only its site's patients, with the union's numbers", async () => {
    const answer = await askAsPrinted(output);
    expect(answer.status).toBe('COMPLETE');
    expect(answer.missing).toEqual([]);
    expect(answer.sites.map((s: any) => [s.site, s.state]).sort()).toEqual(CODES.map((c) => [c, 'SUCCEEDED']).sort());

    // Every site row and every pooled row equals the single node holding the whole study, to the last digit.
    const federated = new Map<string, any>(answer.answer.metrics.map((row: any) => [key(row), row]));
    expect(federated.size).toBe(unionMetrics.length);
    for (const expected of unionMetrics) {
      const row = federated.get(key(expected));
      expect(row).toBeDefined();
      expect({ patients: row.patients, confusion: row.confusion }).toEqual({ patients: expected.patients, confusion: expected.confusion });
      for (const estimate of ['sensitivity', 'specificity'] as const) {
        for (const bound of ['value', 'lower', 'upper'] as const) expect(row[estimate][bound]).toBeCloseTo(expected[estimate][bound], 9);
      }
    }

    // Each node's database holds its own site and patients only.
    for (const code of CODES) {
      const db = new Client({ connectionString: databaseUrl(`${prefix}_${code.toLowerCase()}`) });
      await db.connect();
      const rows = await db.query(`SELECT s.code, count(p.id)::int AS patients FROM site s LEFT JOIN patient p ON p.site_id = s.id GROUP BY s.code`);
      await db.end();
      expect(rows.rows).toEqual([{ code, patients: 6 }]);
    }
  }, 180_000);

  it('records every byte between nodes and hub, both ways for each node, and no pseudonym or hospital id is among them', () => {
    const wire = readFileSync(path.join(dataDir, 'wire.log'), 'latin1');
    for (const code of CODES) {
      expect(wire).toMatch(new RegExp(`### ${code} up connection \\d+ \\d+ bytes\\nPOST /graphql`));
      expect(wire).toMatch(new RegExp(`### ${code} down connection \\d+ \\d+ bytes\\nHTTP/1.1 200`));
    }
    expect(wire).toMatch(/facet\.result/);
    expect(wire).not.toMatch(PATIENT_LEVEL);
  });

  it('stops every process on Ctrl-C, restarts on the same data at once, and stops the rest when a member dies', async () => {
    const hubUrl = /Hub:\s+(http:\/\/\S+)\/graphql/.exec(output)![1];
    const token = /Statistician token for the hub: (\S+)/.exec(output)![1];
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
    expect(demo.output()).toMatch(/The federation demo stopped/);
    await expect(fetch(`${hubUrl}/healthz`)).rejects.toThrow();

    // Same identities, registry, databases and token: nothing is loaded twice.
    demo = startDemo(env, path.join(dataDir, 'wire.log'));
    output = await ready(demo);
    expect(/Statistician token for the hub: (\S+)/.exec(output)![1]).toBe(token);
    const again = await askAsPrinted(output);
    expect(again.status).toBe('COMPLETE');
    for (const code of CODES)
      expect(readFileSync(path.join(dataDir, 'federation-demo', `${code.toLowerCase()}.log`), 'utf8').match(/demo cohort loaded/g)).toHaveLength(1);

    // A member that dies takes the demo down cleanly, and says which.
    const north = /NORTH:\s+(http:\/\/\S+)\/graphql/.exec(output)![1];
    const pid = Number(
      (await sh(`pgrep -f -- '--demo-site NORTH' | while read p; do grep -qz "FACET_DATA_DIR=${dataDir}" /proc/$p/environ 2>/dev/null && echo $p; done; true`))
        .trim()
        .split('\n')[0],
    );
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    expect(await demo.exited).toBe(1);
    expect(demo.output()).toMatch(/NORTH stopped on its own/);
    for (const url of [/Hub:\s+(http:\/\/\S+)\/graphql/.exec(output)![1], north]) await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  }, 420_000);
});

describe('demo shares', () => {
  it('names generated lists of demo sites in any case and order, and refuses unknown codes with the known ones', () => {
    const random = prng(11);
    for (let i = 0; i < 200; i++) {
      const picked = CODES.filter(() => random() < 0.6);
      const written = picked.map((c) => (random() < 0.5 ? c.toLowerCase() : c)).sort(() => random() - 0.5);
      if (!picked.length) {
        expect(() => demoSitesNamed(written)).toThrow(expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }));
        continue;
      }
      expect(demoSitesNamed(written).map((s) => s.code)).toEqual(picked);
      const stranger = `X${Math.floor(random() * 1000)}`;
      expect(() => demoSitesNamed([...written, stranger])).toThrow(
        expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', unknown: [stranger], known: CODES }) }),
      );
    }
    expect(demoSitesNamed(undefined)).toBe(DEMO_SITES);
  });

  it('refuses a bad --demo-site, --demo with --demo-site, and a hub with either, before anything starts', async () => {
    const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
      new Promise<{ code: number | null; out: string }>((resolve) =>
        execFile(
          process.execPath,
          [MAIN, ...args],
          { env: { ...process.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', ...extra } },
          (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, out: stdout + stderr }),
        ),
      );
    expect(existsSync(MAIN)).toBe(true);
    const unknown = await run(['serve', '--demo-site', 'NORTH,ATLANTIS']);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toMatch(/No demo site \\"ATLANTIS\\": the demo sites are NORTH, HARBOUR, VALLEY/);
    const both = await run(['serve', '--demo', '--demo-site', 'NORTH']);
    expect(both.code).toBe(1);
    expect(both.out).toMatch(/use one of them/);
    const hub = await run(['serve', '--hub', '--demo-site', 'NORTH']);
    expect(hub.code).toBe(1);
    expect(hub.out).toMatch(/a hub holds none/);
    const badName = await run(['demo-federation'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/Has-Dashes' });
    expect(badName.code).toBe(1);
    expect(badName.out).toMatch(/lower-case letters, digits and _/);
  }, 60_000);
});
