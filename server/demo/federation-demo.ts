import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { DEMO_SITES } from './demo-cohort';

/**
 * `facet demo-federation`: a hub and three demo nodes on one machine, each node holding only its own site's share
 * of the demo study (`serve --demo-site CODE`), joined exactly as real members join (an identity per node, its
 * registry entry in the hub's `sites/`, the hub's signing key pinned by the nodes), then a federated query to try.
 * Every part is a separate `facet` process over a database of its own; this module only orchestrates them.
 */

/** What the composition root (main.ts) provides: the database server and the identities, which this folder may not reach. */
export interface FederationDemoHost {
  /** Starts (embedded) or reaches (DATABASE_URL) PostgreSQL and makes sure each database exists; their URLs, in order. */
  databases(names: string[]): Promise<{ urls: string[]; embedded: boolean; stop(): Promise<void> }>;
  /** The registry entry of the node identity under `dataDir` (made on first use), as `facet node identity` prints it. */
  nodeEntry(dataDir: string, site: { code: string; name: string; contact: { name: string; email: string } }): Promise<{ entry: object; keyId: string }>;
  /** The hub's signing key under `dataDir` (made on first use), as `facet hub identity` prints it. */
  hubSigningKey(dataDir: string): Promise<string>;
  /** `facet site add --replace`: the entry into the hub's registry folder (created when missing). */
  addMember(sitesDir: string, entry: object): Promise<void>;
  /** The program and leading arguments that run `facet` (node and dist/server/main.js). */
  facet: { command: string; args: string[] };
}

export interface FederationDemoOptions {
  /** Holds the demo: the embedded database, one data directory per process, their logs. */
  root: string;
  host: string;
  /** The hub's port; the nodes take the next three (0: every process takes a free port). */
  port: number;
  /** Each database's name is `<databasePrefix>_<hub|north|…>`. */
  databasePrefix: string;
  /** The environment the processes start from (federation variables of the caller are not passed on). */
  env: NodeJS.ProcessEnv;
  /** Every byte between each node and the hub, appended to this file with a header per chunk (null: nodes dial the hub directly). */
  record: string | null;
}

export interface DemoProcess {
  name: string;
  url: string;
  child: ChildProcess;
  log: string;
}

export interface RunningFederationDemo {
  hub: DemoProcess & { signingKey: string };
  nodes: Array<DemoProcess & { code: string; keyId: string }>;
  /** A STATISTICIAN token of the hub (kept in `<root>/hub/statistician-token`). */
  statisticianToken: string;
  /** What to print: the endpoints, the token, a query to try. */
  instructions: string;
  /** Resolves with the name and exit code of the first process that ends on its own. */
  firstExit: Promise<{ name: string; code: number | null }>;
  /** Nodes first (they stop claiming), then the hub, then the relay and the database. Safe to call twice. */
  stop(): Promise<void>;
}

/** The variables a parent may have set for its own node that must not leak into the demo's processes. */
const NOT_INHERITED = [
  'DATABASE_URL',
  'FACET_DATA_DIR',
  'PORT',
  'HOST',
  'FACET_MODE',
  'FACET_SITES_DIR',
  'FACET_HUB_URL',
  'FACET_HUB_SIGNING_KEY',
  'FACET_FEDERATION_SITE',
];

const READY = /Press Ctrl-C to stop/;

/** Starts `facet <args>` with its output in `log` and resolves with its URL once the banner is printed. */
async function startProcess(
  host: FederationDemoHost,
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  log: string,
  started: ChildProcess[],
  ms = 600_000,
): Promise<DemoProcess> {
  const out = createWriteStream(log, { flags: 'a' });
  // Its own process group: Ctrl-C reaches the launcher alone, which stops the members in order.
  const child = spawn(host.facet.command, [...host.facet.args, ...args], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let text = '';
  const collect = (chunk: Buffer) => {
    out.write(chunk);
    if (!READY.test(text)) text += chunk.toString();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  child.once('exit', () => out.end());
  const deadline = Date.now() + ms;
  while (!READY.test(text)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${name} exited with ${child.exitCode ?? child.signalCode} before it was ready; its log (${log}) ends:\n${text.split('\n').slice(-15).join('\n')}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} was not ready after ${ms / 1000} s; see ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const url = /GraphQL:\s+(http:\/\/\S+)\/graphql/.exec(text)?.[1];
  if (!url) throw new Error(`${name} printed no GraphQL URL; see ${log}`);
  return { name, url, child, log };
}

/** SIGTERM (the process closes HTTP, its worker and its pool), then waits; SIGKILL after `ms`. */
function stopProcess(child: ChildProcess, ms = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * A TCP relay per node in front of the hub that appends every chunk it carries to `out`, after a header line naming
 * the node, the direction (`up`: node to hub) and the chunk's size, so the file shows exactly what the hub received
 * and sent (plain HTTP here, since hub and nodes share the machine) and can be searched for anything that must not leave.
 */
async function startRecordingRelay(code: string, target: { host: string; port: number }, out: WriteStream): Promise<net.Server> {
  let connections = 0;
  const server = net.createServer((client) => {
    const connection = ++connections;
    const upstream = net.connect(target.port, target.host);
    const relay = (from: net.Socket, to: net.Socket, direction: 'up' | 'down') =>
      from.on('data', (data: Buffer) => {
        out.write(`\n### ${code} ${direction} connection ${connection} ${data.length} bytes\n`);
        out.write(data);
        to.write(data);
      });
    relay(client, upstream, 'up');
    relay(upstream, client, 'down');
    for (const socket of [client, upstream]) socket.on('error', () => (client.destroy(), upstream.destroy()));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    server.on('close', () => (client.destroy(), upstream.destroy()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, target.host, () => resolve());
  });
  return server;
}

/** A STATISTICIAN token of the hub: the one kept from an earlier start if it still works, else a new one made with the hub's admin token. */
async function statisticianToken(hubUrl: string, hubDataDir: string): Promise<string> {
  const graphql = async (token: string, query: string, variables: object = {}) => {
    const response = await fetch(`${hubUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as {
      data?: { viewer?: { role: string }; createApiToken?: { secret: string } };
      errors?: Array<{ message: string }>;
    };
  };
  const kept = path.join(hubDataDir, 'statistician-token');
  if (existsSync(kept)) {
    const token = (await readFile(kept, 'utf8')).trim();
    if ((await graphql(token, '{ viewer { role } }')).data?.viewer?.role === 'STATISTICIAN') return token;
  }
  const adminFile = path.join(hubDataDir, 'admin-token');
  if (!existsSync(adminFile))
    throw new Error(
      `The hub minted no admin token (${adminFile} is missing): its database had tokens already; remove ${hubDataDir} and its database to start afresh`,
    );
  const admin = (await readFile(adminFile, 'utf8')).trim();
  const made = await graphql(admin, 'mutation ($input: CreateApiTokenInput!) { createApiToken(input: $input) { secret } }', {
    input: { name: 'federation demo statistician', role: 'STATISTICIAN' },
  });
  const secret = made.data?.createApiToken?.secret;
  if (!secret) throw new Error(`The hub refused to make a STATISTICIAN token: ${made.errors?.[0]?.message ?? 'no answer'}`);
  await writeFile(kept, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/** The federated query the demo suggests: the first reader's calls against the reference standard, per feature, at every site. */
export const DEMO_QUERY = `mutation { startFederatedQuery(input: { kind: BINARY_COUNTS, rater: { readerSlot: FIRST }, groupBy: [FEATURE], minSites: 2, deadlineSeconds: 120 }) { id status sites { site state } } }`;

/** Reads the answer of the query `$ID` (the id the start printed). */
export const DEMO_ANSWER_QUERY = `query ($id: ID!) { federatedQuery(id: $id) { status revision missing { site code } sites { site state reason } answer { metrics { pooled site feature patients confusion { tp fp tn fn } sensitivity { value lower upper method } specificity { value lower upper method } } } } }`;

/** A shell-safe single-quoted word. */
const quoted = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

function instructions(
  demo: Omit<RunningFederationDemo, 'instructions' | 'firstExit' | 'stop'>,
  root: string,
  embedded: boolean,
  record: string | null,
): string {
  const auth = `authorization: Bearer ${demo.statisticianToken}`;
  const start = `curl -s ${demo.hub.url}/graphql -H 'content-type: application/json' -H ${quoted(auth)} -d ${quoted(JSON.stringify({ query: DEMO_QUERY }))}`;
  const answer =
    `curl -s ${demo.hub.url}/graphql -H 'content-type: application/json' -H ${quoted(auth)} ` +
    `-d "$(jq -n --arg id "$ID" ${quoted(`{query: ${JSON.stringify(DEMO_ANSWER_QUERY)}, variables: {id: $id}}`)})"`;
  return [
    '',
    `Facet federation demo is running${embedded ? ' on its embedded PostgreSQL' : ''}: a hub and ${demo.nodes.length} nodes, each node holding only its own site's patients.`,
    `  Hub:       ${demo.hub.url}/graphql  (GraphiQL: ${demo.hub.url}/graphiql; signing key ${demo.hub.signingKey})`,
    ...demo.nodes.map(
      (n) => `  ${`${n.code}:`.padEnd(10)} ${n.url}/graphql  (key id ${n.keyId}; node admin token in ${path.join(root, n.code.toLowerCase(), 'admin-token')})`,
    ),
    `  Registry:  ${path.join(root, 'hub', 'sites')}   Logs: ${root}/*.log${record ? `   Wire record (every byte between nodes and hub): ${record}` : ''}`,
    `  Statistician token for the hub: ${demo.statisticianToken}`,
    '',
    'Ask the three sites a question (the first reader against the reference standard, per feature):',
    `  ID=$(${start} | jq -r .data.startFederatedQuery.id)`,
    'Read the answer (per-site rows as each node released them, pooled rows, the sites that answered):',
    `  ${answer} | jq .data.federatedQuery`,
    `In GraphiQL (${demo.hub.url}/graphiql), with the header {"authorization": "Bearer ${demo.statisticianToken}"}:`,
    `  ${DEMO_QUERY}`,
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
}

/**
 * Starts the demo federation: databases, identities and the registry, the hub, then the three nodes (each loads its
 * share on first start), then a STATISTICIAN token. Anything that fails on the way stops what had started.
 */
export async function startFederationDemo(host: FederationDemoHost, options: FederationDemoOptions): Promise<RunningFederationDemo> {
  const root = path.resolve(options.root);
  const hubDir = path.join(root, 'hub');
  const sitesDir = path.join(hubDir, 'sites');
  await mkdir(sitesDir, { recursive: true });
  const baseEnv = Object.fromEntries(Object.entries(options.env).filter(([name]) => !NOT_INHERITED.includes(name)));
  const members = DEMO_SITES.map((site, i) => ({
    ...site,
    dir: path.join(root, site.code.toLowerCase()),
    port: options.port === 0 ? 0 : options.port + 1 + i,
  }));
  const names = ['hub', ...members.map((m) => m.code.toLowerCase())].map((n) => `${options.databasePrefix}_${n}`);
  const started: ChildProcess[] = [];
  const relays: net.Server[] = [];
  let recording: WriteStream | null = null;
  const databases = await host.databases(names);
  const release = async () => {
    await Promise.all(started.slice(1).map((child) => stopProcess(child)));
    if (started[0]) await stopProcess(started[0]);
    await Promise.all(relays.map((relay) => new Promise((resolve) => relay.close(resolve))));
    await new Promise((resolve) => (recording ? recording.end(resolve) : resolve(null)));
    await databases.stop();
  };
  // A launcher that dies without stopping (an uncaught error, SIGKILL aside) takes its members with it.
  const killAll = () => started.forEach((child) => child.kill('SIGKILL'));
  process.once('exit', killAll);
  try {
    const signingKey = await host.hubSigningKey(hubDir);
    const keyIds: string[] = [];
    for (const member of members) {
      const { entry, keyId } = await host.nodeEntry(member.dir, {
        code: member.code,
        name: member.name,
        contact: { name: 'Demo node admin', email: `facet-admin@${member.code.toLowerCase()}.example` },
      });
      await host.addMember(sitesDir, entry);
      keyIds.push(keyId);
    }
    const hub = await startProcess(
      host,
      'hub',
      ['serve', '--hub'],
      { ...baseEnv, DATABASE_URL: databases.urls[0], FACET_DATA_DIR: hubDir, FACET_SITES_DIR: sitesDir, HOST: options.host, PORT: String(options.port) },
      path.join(root, 'hub.log'),
      started,
    );
    const hubAddress = new URL(hub.url);
    if (options.record) recording = createWriteStream(options.record, { flags: 'a' });
    const nodes = await Promise.all(
      members.map(async (member, i) => {
        let hubUrl = `${hub.url}/graphql`;
        if (recording) {
          const relay = await startRecordingRelay(member.code, { host: hubAddress.hostname, port: Number(hubAddress.port) }, recording);
          relays.push(relay);
          hubUrl = `http://${hubAddress.hostname}:${(relay.address() as net.AddressInfo).port}/graphql`;
        }
        const node = await startProcess(
          host,
          member.code,
          ['serve', '--with-worker', '--demo-site', member.code],
          {
            ...baseEnv,
            DATABASE_URL: databases.urls[i + 1],
            FACET_DATA_DIR: member.dir,
            HOST: options.host,
            PORT: String(member.port),
            FACET_HUB_URL: hubUrl,
            FACET_HUB_SIGNING_KEY: signingKey,
            FACET_FEDERATION_SITE: member.code,
          },
          path.join(root, `${member.code.toLowerCase()}.log`),
          started,
        );
        return { ...node, code: member.code, keyId: keyIds[i] };
      }),
    );
    const token = await statisticianToken(hub.url, hubDir);
    const demo = { hub: { ...hub, signingKey }, nodes, statisticianToken: token };
    let stopping: Promise<void> | null = null;
    return {
      ...demo,
      instructions: instructions(demo, root, databases.embedded, options.record),
      firstExit: new Promise((resolve) => {
        for (const p of [hub, ...nodes]) p.child.once('exit', (code) => stopping === null && resolve({ name: p.name, code }));
      }),
      stop: () => {
        stopping ??= release().finally(() => process.off('exit', killAll));
        return stopping;
      },
    };
  } catch (error) {
    await release().catch(() => undefined);
    process.off('exit', killAll);
    throw error;
  }
}
