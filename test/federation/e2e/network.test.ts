import { execFile, spawnSync } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { gqlOk } from '../../helpers/graphql-client';
import { filePassed } from '../../helpers/lifecycle';
import { createNetworkNamespace, unixSocketUrl, type NetworkNamespace } from '../../helpers/netns';
import { SQUID_BINARY, startSquid, type Squid } from '../../helpers/squid';
import { startTcpRecorder, type TcpRecorder } from '../../helpers/tcp-recorder';
import { SITE_CODES, startFederationCluster, until, type FederationCluster } from '../../helpers/federation-cluster';
import { READ, START } from '../hub/hub-harness';

const run = promisify(execFile);

/**
 * The federation on a network shaped like hospitals': each node process in its own network namespace, its server
 * on the namespace's loopback (nothing outside can reach it), its only way out a squid proxy that tunnels to the
 * hub's one port and refuses WebSocket upgrades. Between squid and the hub a relay keeps every byte that crossed.
 * Needs root, iproute2 and squid (CI has them); elsewhere its tests are reported as skipped.
 */
const available = process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0 && SQUID_BINARY !== null;
const describeWhereAvailable = available ? describe : describe.skip;
let cluster: FederationCluster;
let squid: Squid;
let recorder: TcpRecorder;
const namespaces = new Map<string, NetworkNamespace>();

/** Runs a short Node script inside a namespace; its stdout. */
async function inside(ns: NetworkNamespace, script: string): Promise<string> {
  return (await run(ns.exec[0], [...ns.exec.slice(1), process.execPath, '-e', script], { timeout: 60_000 })).stdout.trim();
}

/** Whether a TCP connection from inside the namespace to host:port opens (3 s limit). */
const CONNECT = (host: string, port: number) => `
  const s = require('node:net').connect(${port}, '${host}');
  s.setTimeout(3000, () => { console.log('timeout'); process.exit(0); });
  s.on('connect', () => { console.log('connected'); process.exit(0); });
  s.on('error', (e) => { console.log(e.code); process.exit(0); });`;

/** The same connection attempt from the host (the test's own process). */
function connectFromHost(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.on('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

/** A WebSocket upgrade asked of the proxy for the hub's URL, from inside: the HTTP status the proxy answers. */
const UPGRADE = (proxy: string, port: number, target: string) => `
  const req = require('node:http').request({ host: '${proxy}', port: ${port}, path: '${target}', headers: {
    connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
  req.on('response', (res) => { console.log(res.statusCode); process.exit(0); });
  req.on('upgrade', () => { console.log(101); process.exit(0); });
  req.on('error', (e) => { console.log(e.code); process.exit(0); });
  req.end();`;

beforeAll(async () => {
  if (!available) return;
  for (const [i, code] of SITE_CODES.entries()) namespaces.set(code, await createNetworkNamespace(`e${process.pid % 10_000}`, i + 1));
  cluster = await startFederationCluster({
    nodeExec: (code) => namespaces.get(code)!.exec,
    nodeDatabaseUrl: (_code, url) => unixSocketUrl(url),
    onHubStarted: async (hubUrl) => {
      recorder = await startTcpRecorder({ host: '127.0.0.1', port: Number(new URL(hubUrl).port) });
      squid = await startSquid({
        listen: [...namespaces.values()].map((ns) => ns.hostAddress),
        allowSources: [...namespaces.values()].map((ns) => `${ns.innerAddress}/32`),
        onlyTo: { host: '127.0.0.1', port: recorder.port },
      });
    },
    // Seen from inside, 127.0.0.1 is the namespace's own loopback: only the proxy resolves it to the host's relay.
    hubUrlFor: () => `http://127.0.0.1:${recorder.port}`,
    nodeEnv: (code) => {
      const proxy = `http://${namespaces.get(code)!.hostAddress}:${squid.port}`;
      return { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, https_proxy: proxy, http_proxy: proxy, NO_PROXY: '', no_proxy: '' };
    },
  });
});

afterAll(async () => {
  await cluster?.close(filePassed());
  await squid?.stop();
  await recorder?.close();
  for (const ns of namespaces.values()) await ns.destroy();
});

describeWhereAvailable('nodes in network namespaces, out only through squid (root, iproute2, squid)', () => {
  it('has no inbound path to a node and no direct path from it to the hub, and the proxy refuses a WebSocket upgrade to the hub', async () => {
    const hubPort = Number(new URL(cluster.hub.url).port);
    for (const ns of namespaces.values()) {
      for (const [host, port] of [
        ['127.0.0.1', hubPort],
        [ns.hostAddress, hubPort],
        [ns.hostAddress, recorder.port],
      ] as const) {
        expect([ns.name, host, port, await inside(ns, CONNECT(host, port))]).toEqual([
          ns.name,
          host,
          port,
          expect.stringMatching(/^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|timeout)$/),
        ]);
      }
      // The node's own server listens on its namespace's loopback: up inside, out of reach from the host.
      const node = [...cluster.nodes.values()].find((n) => namespaces.get(n.code) === ns)!;
      const nodePort = Number(new URL(node.process!.url).port);
      expect(await inside(ns, CONNECT('127.0.0.1', nodePort))).toBe('connected');
      expect(await connectFromHost(ns.innerAddress, nodePort)).toMatch(/^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|timeout)$/);
      // The proxy itself is reachable, and refuses the upgrade a push channel would need.
      expect(await inside(ns, UPGRADE(ns.hostAddress, squid.port, `http://127.0.0.1:${recorder.port}/graphql`))).toBe('403');
    }
  });

  it('answers STUDY_FLOW and BINARY_COUNTS from all three through the proxy, and no patient-level value crossed', async () => {
    const start = async (input: Record<string, unknown>) => (await gqlOk(cluster.hub.url, cluster.hub.token, START, { input })).startFederatedQuery;
    const queries = [
      await start({ kind: 'STUDY_FLOW', deadlineSeconds: 300 }),
      await start({ kind: 'BINARY_COUNTS', rater: { modelSha256: cluster.modelSha256 }, groupBy: ['FEATURE', 'LEVEL'], threshold: 1, deadlineSeconds: 300 }),
      await start({ kind: 'BINARY_COUNTS', rater: { readerSlot: 'FIRST' }, groupBy: ['FEATURE'], threshold: 2, deadlineSeconds: 300 }),
    ];
    for (const query of queries) {
      let answer: Record<string, any> = {};
      await until(
        `query ${query.id}`,
        async () => (answer = (await gqlOk(cluster.hub.url, cluster.hub.token, READ, { id: query.id })).federatedQuery).status !== 'RUNNING',
      );
      expect([query.query, answer.status, answer.missing]).toEqual([query.query, 'COMPLETE', []]);
    }
    const flow = (await gqlOk(cluster.hub.url, cluster.hub.token, READ, { id: queries[0].id })).federatedQuery;
    const pooled = flow.answer.studyFlow.find((r: { pooled: boolean }) => r.pooled);
    expect(pooled.enrolled).toBe(cluster.union.studyFlow.find((r) => r.site === null)!.enrolled);

    // What each node holds, read from its own database: none of it is in any byte that crossed.
    const secrets = new Set<string>([...cluster.secrets.pseudonyms, ...cluster.secrets.hospitalIds, ...cluster.secrets.scores]);
    for (const node of cluster.nodes.values()) {
      const [held] = await node.query<{ values: string[] }>(
        `SELECT (SELECT array_agg(pseudonym) FROM patient) || (SELECT array_agg(id::text) FROM patient) || (SELECT array_agg(id::text) FROM joint)
                || (SELECT array_agg(id::text) FROM reading) || coalesce((SELECT array_agg(trim(patient_key)) FROM patient WHERE patient_key IS NOT NULL), '{}') AS values`,
      );
      expect(held.values.length).toBeGreaterThan(50);
      for (const value of held.values) secrets.add(value);
    }
    const wire = recorder.bytes().toString('latin1');
    // The recording is the real traffic (the relay is reachable only through the proxy, and the nodes reach nothing
    // else): the claims, the tasks and the results of every site are in it.
    expect(recorder.connections()).toBeGreaterThanOrEqual(3);
    for (const code of SITE_CODES) expect(wire).toContain(`"signer":"${code}"`);
    for (const query of queries) expect(wire).toContain(query.id);
    expect(wire).toContain('claimFederationTasks');
    expect(wire).toContain('submitFederationResult');
    const leaked = [...secrets].filter((value) => wire.includes(value));
    expect(leaked).toEqual([]);
  });
});
