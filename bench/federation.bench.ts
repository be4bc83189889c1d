/**
 * A federated round against one node holding the union of the data: `facet demo-federation` (a hub and three nodes,
 * separate processes and databases, each node holding its own demo site) answers a STUDY_FLOW and a BINARY_COUNTS
 * query (the first reader per feature); `facet serve --demo-site NORTH,HARBOUR,VALLEY` (the same patients and grades
 * in one database) answers `studyFlow` and `metrics` with the same rows. Printed per round (median of BENCH_ROUNDS,
 * default 5, after one warm-up round each): the time from the researcher's request to the full answer, the bytes
 * between the nodes and the hub (from the demo's wire record, both ways, whatever the nodes sent in the round,
 * their long-poll claims included), the researcher's bytes (through a counting relay; the federated answer is read
 * once it has settled, so polling is not counted), and the ratios. Then the idle cost of the long-poll, in bytes a
 * minute for the three nodes. Needs the test PostgreSQL (TEST_DATABASE_URL, default 127.0.0.1:5432).
 *
 *   npm run bench:federation
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';

const BASE = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const MAIN = path.resolve(__dirname, '../server/main.js');
const CODES = ['NORTH', 'HARBOUR', 'VALLEY'];

const urlOf = (name: string) => Object.assign(new URL(BASE), { pathname: `/${name}` }).toString();

async function admin(sql: string): Promise<void> {
  const client = new Client({ connectionString: BASE });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

async function startFacet(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<Started> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  while (!ready.test(out)) {
    if (child.exitCode !== null) throw new Error(`facet ${args.join(' ')} exited ${child.exitCode}:\n${out}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { child, output: () => out, exited };
}

/** A TCP relay in front of `target` that counts the bytes each way. */
async function countingRelay(target: URL): Promise<{ url: string; up: number; down: number; close(): void }> {
  const counts = { up: 0, down: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => (client.destroy(), upstream.destroy()));
    }
    client.on('data', (d: Buffer) => ((counts.up += d.length), upstream.write(d)));
    upstream.on('data', (d: Buffer) => ((counts.down += d.length), client.write(d)));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    get up() {
      return counts.up;
    },
    get down() {
      return counts.down;
    },
    close: () => {
      sockets.forEach((s) => s.destroy());
      server.close();
    },
  };
}

async function graphql(url: string, token: string, query: string, variables: object = {}): Promise<any> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    // A fresh connection per request, as a researcher's script or curl makes: no keep-alive advantage for either side.
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, connection: 'close' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

/** Bytes of the wire record's chunks between two offsets, per direction. */
function wireBytes(file: string, from: number, to: number): { up: number; down: number } {
  const text = readFileSync(file).subarray(from, to).toString('latin1');
  const sum = { up: 0, down: 0 };
  for (const m of text.matchAll(/^### \S+ (up|down) connection \d+ (\d+) bytes$/gm)) sum[m[1] as 'up' | 'down'] += Number(m[2]);
  return sum;
}

const METRICS = `groups { pooled site feature patients confusion { tp fp tn fn } sensitivity { value lower upper } specificity { value lower upper } }`;
const ROWS = `metrics { pooled site feature patients confusion { tp fp tn fn } sensitivity { value lower upper } specificity { value lower upper } }
  studyFlow { pooled site enrolled excluded eligible joints assessable notAssessable analysed }`;

async function federatedRound(hubUrl: string, relay: string, token: string): Promise<{ ms: number; rows: any }> {
  const started = performance.now();
  const ids: string[] = [];
  for (const input of [
    { kind: 'STUDY_FLOW', minSites: 3, deadlineSeconds: 120 },
    { kind: 'BINARY_COUNTS', rater: { readerSlot: 'FIRST' }, groupBy: ['FEATURE'], minSites: 3, deadlineSeconds: 120 },
  ]) {
    ids.push(
      (
        await graphql(
          relay,
          token,
          `
            mutation ($input: FederatedQueryInput!) {
              startFederatedQuery(input: $input) {
                id
              }
            }
          `,
          { input },
        )
      ).startFederatedQuery.id,
    );
  }
  for (const id of ids) {
    // Polled directly at the hub every 20 ms: the researcher's bytes count only the start and the one read below.
    while (
      (
        await graphql(
          hubUrl,
          token,
          `
            query ($id: ID!) {
              federatedQuery(id: $id) {
                status
              }
            }
          `,
          { id },
        )
      ).federatedQuery.status === 'RUNNING'
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  const answers = await graphql(
    relay,
    token,
    `query ($a: ID!, $b: ID!) { a: federatedQuery(id: $a) { status answer { ${ROWS} } } b: federatedQuery(id: $b) { status answer { ${ROWS} } } }`,
    {
      a: ids[0],
      b: ids[1],
    },
  );
  const ms = performance.now() - started;
  for (const answer of [answers.a, answers.b]) if (answer.status !== 'COMPLETE') throw new Error(`a federated query ended ${answer.status}`);
  return { ms, rows: { studyFlow: answers.a.answer.studyFlow, metrics: answers.b.answer.metrics } };
}

/**
 * The same rows from one node. Its `metrics` also computes the cluster-bootstrap intervals of F1 and Youden's J
 * (2,000 replicates by default), which the federated answer leaves out (they need the federated bootstrap): with
 * `replicates` set to the least allowed (200) the single node does about the work the hub's answer holds.
 */
async function unionRound(relay: string, token: string, replicates: number | null): Promise<{ ms: number; rows: any }> {
  const started = performance.now();
  const input = `rater: { readerSlot: FIRST }${replicates ? `, bootstrapReplicates: ${replicates}` : ''}`;
  const data = await graphql(
    relay,
    token,
    `{ studyFlow { site enrolled excluded eligible joints assessable notAssessable analysed }
       bySite: metrics(input: { ${input}, groupBy: [SITE, FEATURE] }) { ${METRICS} }
       pooled: metrics(input: { ${input}, groupBy: [FEATURE] }) { ${METRICS} } }`,
  );
  return { ms: performance.now() - started, rows: data };
}

/** The federated rows equal the union's: site and pooled metrics rows, to 1e-9. */
function sameNumbers(federated: any, union: any): boolean {
  const key = (r: any) => `${r.site ?? '*'}:${r.feature}`;
  const expected = new Map<string, any>([...union.bySite.groups, ...union.pooled.groups].filter((g: any) => !g.pooled).map((g: any) => [key(g), g]));
  if (expected.size !== federated.metrics.length) return false;
  return federated.metrics.every((row: any) => {
    const u = expected.get(key(row));
    return (
      u &&
      JSON.stringify(u.confusion) === JSON.stringify(row.confusion) &&
      (['sensitivity', 'specificity'] as const).every((e) => (['value', 'lower', 'upper'] as const).every((b) => Math.abs(u[e][b] - row[e][b]) < 1e-9))
    );
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  const tag = randomBytes(4).toString('hex');
  const prefix = `facet_bench_fed_${tag}`;
  const unionDb = `facet_bench_union_${tag}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'facet-bench-fed-'));
  const wire = path.join(dir, 'wire.log');
  let demo: Started | null = null;
  let union: Started | null = null;
  const relays: Array<{ close(): void }> = [];
  try {
    await admin(`CREATE DATABASE ${unionDb}`);
    const loading = performance.now();
    [demo, union] = await Promise.all([
      startFacet(['demo-federation', '--record', wire], { DATABASE_URL: urlOf(prefix), FACET_DATA_DIR: path.join(dir, 'federation') }, /Press Ctrl-C to stop/),
      startFacet(['serve', '--demo-site', CODES.join(',')], { DATABASE_URL: urlOf(unionDb), FACET_DATA_DIR: path.join(dir, 'union') }, /Press Ctrl-C to stop/),
    ]);
    console.log(`Started a hub, three nodes and the union node in ${((performance.now() - loading) / 1000).toFixed(0)} s`);
    const hubUrl = /Hub:\s+(http:\/\/\S+)\/graphql/.exec(demo.output())![1];
    const hubToken = /Statistician token for the hub: (\S+)/.exec(demo.output())![1];
    const unionUrl = /GraphQL:\s+(http:\/\/\S+)\/graphql/.exec(union.output())![1];
    const unionAdmin = (await readFile(path.join(dir, 'union', 'admin-token'), 'utf8')).trim();
    const unionToken = (
      await graphql(
        unionUrl,
        unionAdmin,
        `
          mutation {
            createApiToken(input: { name: "bench", role: STATISTICIAN }) {
              secret
            }
          }
        `,
      )
    ).createApiToken.secret as string;
    const hubRelay = await countingRelay(new URL(hubUrl));
    const unionRelay = await countingRelay(new URL(unionUrl));
    relays.push(hubRelay, unionRelay);

    const fed = { ms: [] as number[], wireUp: [] as number[], wireDown: [] as number[], up: [] as number[], down: [] as number[] };
    const one = { ms: [] as number[], up: [] as number[], down: [] as number[] };
    const light: number[] = [];
    let equal = true;
    for (let round = -1; round < ROUNDS; round++) {
      const offset = statSync(wire).size;
      const [u0, d0] = [hubRelay.up, hubRelay.down];
      const f = await federatedRound(hubUrl, hubRelay.url, hubToken);
      // The nodes' submit jobs end after the hub settled: give their last bytes a moment to land in the record.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const w = wireBytes(wire, offset, statSync(wire).size);
      const [v0, e0] = [unionRelay.up, unionRelay.down];
      const u = await unionRound(unionRelay.url, unionToken, null);
      const [v1, e1] = [unionRelay.up, unionRelay.down];
      const l = await unionRound(unionRelay.url, unionToken, 200);
      equal &&= sameNumbers(f.rows, u.rows) && sameNumbers(f.rows, l.rows);
      if (round < 0) continue; // warm-up
      fed.ms.push(f.ms);
      fed.wireUp.push(w.up);
      fed.wireDown.push(w.down);
      fed.up.push(hubRelay.up - u0);
      fed.down.push(hubRelay.down - d0);
      one.ms.push(u.ms);
      one.up.push(v1 - v0);
      one.down.push(e1 - e0);
      light.push(l.ms);
    }
    const idleFrom = statSync(wire).size;
    await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
    const idle = wireBytes(wire, idleFrom, statSync(wire).size);

    const kb = (n: number) => `${(n / 1024).toFixed(1)} kB`;
    const fedResearcher = median(fed.up.map((up, i) => up + fed.down[i]));
    const oneResearcher = median(one.up.map((up, i) => up + one.down[i]));
    const fedWire = median(fed.wireUp.map((up, i) => up + fed.wireDown[i]));
    console.log(`\nOne round: STUDY_FLOW + BINARY_COUNTS (first reader, per feature) over 3 sites x 6 patients; median of ${ROUNDS} rounds after a warm-up`);
    console.log(`| setup | time to the full answer | bytes between nodes and hub (up / down) | researcher's bytes (up / down) |`);
    console.log(`|---|---|---|---|`);
    console.log(
      `| federated: hub + 3 nodes | ${median(fed.ms).toFixed(0)} ms | ${kb(fedWire)} (${kb(median(fed.wireUp))} / ${kb(median(fed.wireDown))}) | ${kb(fedResearcher)} (${kb(median(fed.up))} / ${kb(median(fed.down))}) |`,
    );
    console.log(
      `| one node holding the union | ${median(one.ms).toFixed(0)} ms | none | ${kb(oneResearcher)} (${kb(median(one.up))} / ${kb(median(one.down))}) |`,
    );
    console.log(`| one node, 200 bootstrap replicates | ${median(light).toFixed(0)} ms | none | the same |`);
    console.log(
      `| ratio federated / union | ${(median(fed.ms) / median(one.ms)).toFixed(1)}x (${(median(fed.ms) / median(light)).toFixed(1)}x against 200 replicates) | | ${(fedResearcher / oneResearcher).toFixed(2)}x (all bytes, nodes included: ${((fedResearcher + fedWire) / oneResearcher).toFixed(1)}x) |`,
    );
    console.log(`Pooled and per-site rows equal the union's (1e-9): ${equal ? 'yes' : 'NO'}`);
    console.log(
      `Idle long-poll, 3 nodes: ${kb(((idle.up + idle.down) * 60) / IDLE_SECONDS)} a minute (${kb(idle.up)} up / ${kb(idle.down)} down in ${IDLE_SECONDS} s)`,
    );
    if (!equal) process.exitCode = 1;
  } finally {
    relays.forEach((r) => r.close());
    for (const [p, signal] of [
      [demo, 'SIGINT'],
      [union, 'SIGTERM'],
    ] as const) {
      if (p && p.child.exitCode === null) {
        p.child.kill(signal);
        await p.exited;
      }
    }
    for (const name of [unionDb, ...['hub', ...CODES.map((c) => c.toLowerCase())].map((n) => `${prefix}_${n}`)]) {
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
