import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { DEMO_SITES, loadDemoCohort } from '../../server/demo/demo-cohort';
import { createDataSource } from '../../server/db/data-source';
import { Modality, Role } from '../../server/domain';
import { createServices, systemContext, type Services } from '../../server/services';
import { loadFederationTestData, type NodeSecrets } from '../federation/node/node-data';
import { MAIN, startNodeProcess, type NodeProcess } from './node-process';
import { adminUrl, createTestDatabase, type TestDatabase } from './test-db';

/**
 * A federation as it runs in production, on one machine: a hub (`serve --hub`, its own database, data and sites
 * folders) and one node per demo site (`serve --with-worker`, each its own database holding only that site's
 * patients, readers, readings, reference and per-case model scores), registered the way an operator registers
 * them (`facet node identity` at the node, `facet site add` at the hub, the hub's key from `facet hub identity`).
 *
 * The data is loaded once into a "union" database (every site, as one node holding all of it would have it); each
 * node's database is a copy of it with the other sites deleted, so the union's own studyFlow and metrics are the
 * single-node answers the pooled ones must equal.
 */

export const SITE_CODES = DEMO_SITES.map((s) => s.code);

/** Runs the built CLI to completion: exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, exec: string[] = []): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const [command, ...rest] = exec.length ? [...exec, process.execPath, MAIN, ...args] : [process.execPath, MAIN, ...args];
    const child = spawn(command, rest, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

async function cliOk(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const run = await runCli(args, env);
  if (run.code !== 0) throw new Error(`facet ${args.join(' ')} exited ${run.code}:\n${run.out}\n${run.err}`);
  return run.out;
}

export interface ClusterNode {
  code: string;
  database: TestDatabase;
  dataDir: string;
  /** ADMIN, COORDINATOR (of its site), STATISTICIAN and ENGINEER tokens valid at this node. */
  tokens: { admin: string; coordinator: string; statistician: string; engineer: string };
  process: NodeProcess | null;
  /** Starts (or restarts) its `serve --with-worker` process; resolves when the claim loop has started. */
  start(): Promise<NodeProcess>;
  /** SIGKILL: no clean shutdown, its claim and connections just vanish. */
  kill(): Promise<void>;
  /** SQL against its database. */
  query<T = Record<string, any>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface UnionAnswers {
  studyFlow: Array<Record<string, any>>;
  /** metrics grouped by SITE and FEATURE, and by FEATURE alone (rater: the model, threshold 1); `plain`: without patient clustering. */
  metricsBySiteFeature: Array<Record<string, any>>;
  metricsByFeature: Array<Record<string, any>>;
  plainBySiteFeature: Array<Record<string, any>>;
  plainByFeature: Array<Record<string, any>>;
}

export interface FederationCluster {
  hub: { process: NodeProcess; url: string; token: string; signingKey: string; database: TestDatabase; dataDir: string; sitesDir: string };
  nodes: Map<string, ClusterNode>;
  modelSha256: string;
  union: UnionAnswers;
  /** The union's database: every site's data in one node's database. */
  unionDatabase: TestDatabase;
  /** Every pseudonym, hospital id, row id and per-case score of every node (none may cross the wire). */
  secrets: NodeSecrets;
  close(passed: boolean): Promise<void>;
}

export interface ClusterOptions {
  /** The URL each node dials for the hub (default: the hub's own). */
  hubUrlFor?: (code: string, hubUrl: string) => string;
  /** Extra environment for a node's process. */
  nodeEnv?: (code: string) => NodeJS.ProcessEnv;
  /** argv prefix for a node's process (`ip netns exec <name>`); its database URL through `nodeDatabaseUrl`. */
  nodeExec?: (code: string) => string[];
  nodeDatabaseUrl?: (code: string, url: string) => string;
  /** Extra environment for the hub's process (FACET_SECURE_ROUND_SECONDS, FACET_MIN_GROUP_PATIENTS…). */
  hubEnv?: NodeJS.ProcessEnv;
  /** Runs once the hub listens, before the nodes start (to put a proxy and a recorder in front of it). */
  onHubStarted?: (hubUrl: string) => Promise<void>;
  /**
   * 'images': the demo study with its XR phantoms and joint regions and no model at all (each node holds its site's
   * images in its own object store), for federated inference; the union answers and secrets are then empty.
   * Default 'scores': grades and the reference model's per-case scores, no images.
   */
  data?: 'scores' | 'images';
}

/** Services over a database of the cluster (the union's, to compute the single-node answers a test compares with). */
export async function withServices<T>(url: string, fn: (services: Services) => Promise<T>, keepObjectsIn?: string): Promise<T> {
  const dataSource = createDataSource(url, { poolSize: 4 });
  await dataSource.initialize();
  const objectRoot = keepObjectsIn ?? (await mkdtemp(path.join(os.tmpdir(), 'facet-seed-')));
  const services = createServices(dataSource, { objectRoot, databaseUrl: url });
  await services.queue.start();
  try {
    return await fn(services);
  } finally {
    await services.queue.stop();
    await services.federationNode.close();
    await dataSource.destroy();
    if (!keepObjectsIn) await rm(objectRoot, { recursive: true, force: true });
  }
}

async function admin<T>(fn: (client: Client) => Promise<T>, url = adminUrl()): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const ALL_SCOPE = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };
export { ALL_SCOPE };

/** The union database: every site's data and the tokens the tests use, and its own answers to the tests' queries. */
async function seedUnion(database: TestDatabase, data: ClusterOptions['data'], objectRoot: string) {
  if (data === 'images') {
    return withServices(
      database.url,
      async (services) => {
        await loadDemoCohort(services, { images: true, modalities: [Modality.XR], registerModel: false });
        const empty: UnionAnswers = { studyFlow: [], metricsBySiteFeature: [], metricsByFeature: [], plainBySiteFeature: [], plainByFeature: [] };
        return {
          data: { modelSha256: '', secrets: { pseudonyms: [], hospitalIds: [], rowIds: [], scores: [] } },
          tokens: await seedTokens(services),
          union: empty,
        };
      },
      objectRoot,
    );
  }
  return withServices(database.url, async (services) => {
    const data = await loadFederationTestData(services);
    const ctx = systemContext('federation cluster');
    const tokens = await seedTokens(services);
    const [{ id: modelVersionId }] = await services.db.query(ctx, `SELECT id FROM model_version WHERE sha256 = $1`, [data.modelSha256]);
    const metrics = (groupBy: string[], clustered = true) =>
      services.metrics.metrics(ctx, {
        rater: { modelVersionId },
        scope: { splitVersionId: null, splits: null, modalities: null, features: null, levels: null, sides: null },
        groupBy: groupBy as never,
        threshold: 1,
        clustered,
        confirmedOnly: true,
        bootstrapReplicates: 200,
      });
    const union: UnionAnswers = {
      studyFlow: (await services.agreement.studyFlow(ctx, {})) as unknown as Array<Record<string, any>>,
      metricsBySiteFeature: (await metrics(['SITE', 'FEATURE'])).groups as unknown as Array<Record<string, any>>,
      metricsByFeature: (await metrics(['FEATURE'])).groups as unknown as Array<Record<string, any>>,
      plainBySiteFeature: (await metrics(['SITE', 'FEATURE'], false)).groups as unknown as Array<Record<string, any>>,
      plainByFeature: (await metrics(['FEATURE'], false)).groups as unknown as Array<Record<string, any>>,
    };
    return { data, tokens, union };
  });
}

/** ADMIN, STATISTICIAN and ENGINEER tokens, and a COORDINATOR token per site, in the union (so valid at every node). */
async function seedTokens(services: Services) {
  const ctx = systemContext('federation cluster');
  const token = async (role: Role, siteId: string | null = null) =>
    (await services.tokens.createApiToken(ctx, { name: `${role}-${siteId ?? 'all'}`, role, siteId })).secret;
  const sites: Array<{ id: string; code: string }> = await services.db.query(ctx, `SELECT id, code FROM site`);
  const coordinators = new Map<string, string>();
  for (const site of sites) coordinators.set(site.code, await token(Role.COORDINATOR, site.id));
  return { admin: await token(Role.ADMIN), statistician: await token(Role.STATISTICIAN), engineer: await token(Role.ENGINEER), coordinators };
}

/** A copy of the union holding only `code`'s site: the other sites' patients (their joints, readings, scores and reference with them), readers, tokens and rows go. */
async function nodeDatabase(union: TestDatabase, code: string): Promise<TestDatabase> {
  const copy = await createTestDatabase();
  await admin((c) => c.query(`DROP DATABASE ${copy.name}`));
  await admin((c) => c.query(`CREATE DATABASE ${copy.name} TEMPLATE ${union.name}`));
  await admin(async (c) => {
    await c.query('BEGIN');
    const others = `(SELECT id FROM site WHERE code <> $1)`;
    await c.query(`DELETE FROM api_token WHERE site_id IN ${others} OR reader_id IN (SELECT id FROM reader WHERE site_id IN ${others})`, [code]);
    await c.query(`DELETE FROM patient WHERE site_id IN ${others}`, [code]);
    await c.query(`DELETE FROM reader WHERE site_id IN ${others}`, [code]);
    await c.query(`DELETE FROM site WHERE code <> $1`, [code]);
    await c.query('COMMIT');
  }, copy.url);
  return copy;
}

export async function startFederationCluster(options: ClusterOptions = {}): Promise<FederationCluster> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'facet-federation-'));
  // The hub: its own database, data folder (its identity) and registry.
  const hubDb = await createTestDatabase();
  const hubDataDir = path.join(work, 'hub-data');
  const sitesDir = path.join(work, 'sites');
  const hubEnv = { DATABASE_URL: hubDb.url, FACET_DATA_DIR: hubDataDir, FACET_SITES_DIR: sitesDir };
  // The command-line steps of registration start processes: they run while the union is loaded.
  const registration = Promise.all([
    cliOk(['hub', 'identity'], hubEnv).then((out) => JSON.parse(out).signingKey as string),
    cliOk(['create-token', '--role', 'STATISTICIAN', '--name', 'researcher'], hubEnv).then((out) => out.trim().split('\n').at(-1)!),
    Promise.all(
      SITE_CODES.map(async (code) => {
        const entry = await cliOk(
          [
            'node',
            'identity',
            '--code',
            code,
            '--name',
            `${code} hospital`,
            '--contact-name',
            'Admin',
            '--contact-email',
            `admin@${code.toLowerCase()}.example`,
          ],
          { FACET_DATA_DIR: path.join(work, `node-${code}`) },
        );
        const entryFile = path.join(work, `${code}.entry.json`);
        await writeFile(entryFile, entry);
        await cliOk(['site', 'add', entryFile], hubEnv);
      }),
    ),
  ]);
  const unionDb = await createTestDatabase();
  const seedObjects = path.join(work, 'union-objects');
  const seeded = await seedUnion(unionDb, options.data, seedObjects);
  const secrets: NodeSecrets = seeded.data.secrets;
  const [signingKey, hubToken] = await registration;

  const nodes = new Map<string, ClusterNode>();
  let hubUrl = '';
  for (const code of SITE_CODES) {
    const database = await nodeDatabase(unionDb, code);
    const dataDir = path.join(work, `node-${code}`);
    // The images the union's rows point at: each node's object store holds them (its database, only its own rows).
    if (options.data === 'images') await cp(seedObjects, path.join(dataDir, 'objects'), { recursive: true });
    const exec = options.nodeExec?.(code) ?? [];
    const node: ClusterNode = {
      code,
      database,
      dataDir,
      tokens: {
        admin: seeded.tokens.admin,
        statistician: seeded.tokens.statistician,
        engineer: seeded.tokens.engineer,
        coordinator: seeded.tokens.coordinators.get(code)!,
      },
      process: null,
      start: async () => {
        const env = {
          DATABASE_URL: options.nodeDatabaseUrl?.(code, database.url) ?? database.url,
          FACET_DATA_DIR: dataDir,
          FACET_HUB_URL: `${options.hubUrlFor?.(code, hubUrl) ?? hubUrl}/graphql`,
          FACET_HUB_SIGNING_KEY: signingKey,
          FACET_FEDERATION_SITE: code,
          ...options.nodeEnv?.(code),
        };
        node.process = await startNodeProcess(['serve', '--with-worker'], env, 120_000, exec);
        await until(`${code}'s claim loop`, () => /federation claim loop started/.test(node.process!.output()));
        return node.process;
      },
      kill: async () => {
        const running = node.process;
        if (!running?.alive()) return;
        const exited = new Promise((resolve) => running.child.once('exit', resolve));
        running.child.kill('SIGKILL');
        await exited;
      },
      query: (sql, params = []) => admin(async (c) => (await c.query(sql, params)).rows, database.url),
    };
    nodes.set(code, node);
  }
  const hubProcess = await startNodeProcess(['serve', '--hub'], { ...hubEnv, ...options.hubEnv, PORT: '0' });
  hubUrl = hubProcess.url;
  await options.onHubStarted?.(hubUrl);
  await Promise.all([...nodes.values()].map((n) => n.start()));
  return {
    hub: { process: hubProcess, url: hubUrl, token: hubToken, signingKey, database: hubDb, dataDir: hubDataDir, sitesDir },
    nodes,
    modelSha256: seeded.data.modelSha256,
    union: seeded.union,
    unionDatabase: unionDb,
    secrets,
    close: async (passed) => {
      for (const node of nodes.values()) if (node.process?.alive()) await node.process.stop();
      await hubProcess.stop();
      if (passed) {
        for (const db of [...[...nodes.values()].map((n) => n.database), hubDb, unionDb]) await db.drop();
        await rm(work, { recursive: true, force: true });
      }
    },
  };
}

/** Polls `probe` every 100 ms until it holds; fails naming `what` after `ms`. */
export async function until(what: string, probe: () => boolean | Promise<boolean>, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
