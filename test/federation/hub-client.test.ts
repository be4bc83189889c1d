import { execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { canonicalSha256 } from '../../server/federation/canonical-json';
import { acceptEnvelope, EnvelopeKind, signEnvelope, verifyEnvelope, type SignedEnvelope } from '../../server/federation/envelope';
import { backoffDelay, HubClient, HubRequestError, runClaimLoop } from '../../server/federation/hub-client';
import { NodeIdentity, publicKeyFromBase64 } from '../../server/federation/identity';
import { FederationTaskKind } from '../../server/federation/protocol';
import { MemoryNonceStore, ReplayGuard } from '../../server/federation/replay-guard';
import { seededRandom } from '../../server/stats/bootstrap';
import { startSquid, type Squid } from '../helpers/squid';

const DIST_CLIENT = path.resolve(__dirname, '../../dist/server/federation/hub-client.js');

/** A CA and a hub certificate it signed, for 127.0.0.1, made with the openssl CLI for this run. */
async function makeCertificates(dir: string): Promise<{ ca: string; caFile: string; key: string; cert: string }> {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-subj',
    '/CN=Facet test CA',
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  );
  run('req', ...ec, '-keyout', 'hub.key', '-out', 'hub.csr', '-subj', '/CN=127.0.0.1');
  await fs.writeFile(path.join(dir, 'hub.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', 'hub.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'hub.pem', '-days', '2', '-extfile', 'hub.ext');
  const read = (f: string) => fs.readFile(path.join(dir, f), 'utf8');
  return { ca: await read('ca.pem'), caFile: path.join(dir, 'ca.pem'), key: await read('hub.key'), cert: await read('hub.pem') };
}

/**
 * A hub as far as the node can tell (the remote end, so a fake is allowed): it verifies signed claims with the real
 * envelope code and replay guard, holds a claim until a task is queued or the wait ends, and signs what it sends.
 */
class FakeHub {
  readonly identity = NodeIdentity.generate();
  readonly replay = new ReplayGuard(new MemoryNonceStore());
  private readonly queue: object[] = [];
  private waiting: (() => void)[] = [];
  private arrivals: (() => void)[] = [];
  failures: { status: number; retryAfter?: string }[] = [];
  /** Raw bodies to answer the next requests with (a broken hub or a captive portal). */
  garbage: string[] = [];
  hang = false;
  claims = 0;
  server: http.Server;
  url = '';

  constructor(
    private readonly members: Map<string, NodeIdentity>,
    tls: { key: string; cert: string } | null,
  ) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    // The hub would also offer WebSockets; the proxy is what refuses them.
    new WebSocketServer({ server: this.server });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as net.AddressInfo;
    this.url = `${this.server instanceof https.Server ? 'https' : 'http'}://127.0.0.1:${port}/graphql`;
    return this;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  queueTask(site: string): void {
    const payload = {
      taskId: `task-${this.queue.length + 1}`,
      kind: FederationTaskKind.BINARY_COUNTS,
      site,
      query: {},
      deadline: '2030-01-01T00:00:00.000Z',
      minSites: 2,
      sites: [site],
    };
    this.queue.push(signEnvelope(this.identity, { kind: EnvelopeKind.TASK, signer: 'hub', audience: site, payload }));
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Resolves when the next claim has arrived and is being held. */
  nextArrival(): Promise<void> {
    return new Promise((resolve) => this.arrivals.push(resolve));
  }

  close(): Promise<void> {
    for (const wake of this.waiting.splice(0)) wake();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private keys = (signer: string, keyId: string) => {
    const member = this.members.get(signer);
    return member && member.public.keyId === keyId ? publicKeyFromBase64('ed25519', member.public.signingKey) : null;
  };

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of req) body += chunk;
    const reply = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(json));
    };
    if (this.hang) return;
    const failure = this.failures.shift();
    if (failure) return reply(failure.status, { message: 'unavailable' }, failure.retryAfter ? { 'retry-after': failure.retryAfter } : {});
    const raw = this.garbage.shift();
    if (raw !== undefined) {
      res.writeHead(200, { 'content-type': 'text/html' });
      return void res.end(raw);
    }
    const { query, variables } = JSON.parse(body);
    if (query.includes('submitFederationResult')) {
      const checked = await acceptEnvelope(variables.result, { kind: EnvelopeKind.RESULT, audience: 'hub', keys: this.keys, replay: this.replay });
      if (!checked.ok) return reply(200, { data: { submitFederationResult: { accepted: false, code: checked.code, receipt: null } } });
      const { signer, payload } = checked.envelope;
      const receipt = signEnvelope(this.identity, {
        kind: EnvelopeKind.RECEIPT,
        signer: 'hub',
        audience: signer,
        payload: { taskId: (payload as { taskId: string }).taskId, resultSha256: canonicalSha256(checked.envelope) },
      });
      return reply(200, { data: { submitFederationResult: { accepted: true, code: null, receipt } } });
    }
    if (query.includes('claimFederationTasks')) {
      this.claims++;
      const checked = await acceptEnvelope(variables.claim, { kind: EnvelopeKind.CLAIM, audience: 'hub', keys: this.keys, replay: this.replay });
      if (!checked.ok) return reply(200, { data: null, errors: [{ message: checked.message, extensions: { code: 'UNAUTHENTICATED', reason: checked.code } }] });
      for (const arrived of this.arrivals.splice(0)) arrived();
      if (this.queue.length === 0 && variables.waitSeconds > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, variables.waitSeconds * 1000);
          this.waiting.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return reply(200, { data: { claimFederationTasks: { tasks: this.queue.splice(0), cancelled: [], serverTime: new Date().toISOString() } } });
    }
    reply(400, { errors: [{ message: 'unknown operation', extensions: { code: 'BAD_USER_INPUT' } }] });
  }
}

describe(HubClient.name, () => {
  let dir: string;
  let certs: Awaited<ReturnType<typeof makeCertificates>>;
  let squid: Squid;
  let hub: FakeHub;
  const north = NodeIdentity.generate();
  const claim = (waitSeconds = 25, identity = north, signer = 'NORTH'): SignedEnvelope =>
    signEnvelope(identity, { kind: EnvelopeKind.CLAIM, signer, audience: 'hub', payload: { site: signer, maxTasks: 8, waitSeconds, facetVersion: '0.1.0' } });
  const clients: HubClient[] = [];
  const client = (options: Partial<ConstructorParameters<typeof HubClient>[0]> = {}) => {
    const c = new HubClient({ url: hub.url, ca: certs.ca, proxy: { httpsProxy: squid.url, httpProxy: squid.url, noProxy: '' }, ...options });
    clients.push(c);
    return c;
  };
  const connectLines = async () => (await squid.accessLog()).filter((l) => l.includes(`CONNECT 127.0.0.1:${hub.port}`));

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facet-hub-client-'));
    certs = await makeCertificates(dir);
    squid = await startSquid();
  });
  beforeEach(async () => {
    hub = await new FakeHub(new Map([['NORTH', north]]), certs).listen();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await hub.close();
  });
  afterAll(async () => {
    await squid?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('long-polls through a CONNECT proxy over HTTPS: the hub holds the claim until a task comes, signed end to end', async () => {
    const c = client();
    const answer = c.claimTasks(claim(20), 20);
    await hub.nextArrival();
    hub.queueTask('NORTH');
    const { tasks, serverTime } = await answer;
    expect(Date.parse(serverTime)).not.toBeNaN();
    expect(tasks).toHaveLength(1);
    const hubKey = publicKeyFromBase64('ed25519', hub.identity.public.signingKey);
    const task = verifyEnvelope(tasks[0], {
      kind: EnvelopeKind.TASK,
      audience: 'NORTH',
      keys: (s, k) => (s === 'hub' && k === hub.identity.public.keyId ? hubKey : null),
    });
    expect(task).toMatchObject({ ok: true, envelope: { payload: { site: 'NORTH', kind: 'BINARY_COUNTS' } } });
    await c.close();
    // squid logs a tunnel when it closes.
    for (let i = 0; i < 50 && (await connectLines()).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await connectLines()).length).toBeGreaterThan(0);
    expect((await connectLines())[0]).toMatch(/TCP_TUNNEL\/200/);
  });

  it('answers an empty long-poll with no tasks when the wait ends', async () => {
    expect(await client().claimTasks(claim(1), 1)).toMatchObject({ tasks: [], cancelled: [] });
  });

  it('goes direct for a host in NO_PROXY', async () => {
    const before = (await connectLines()).length;
    const direct = client({ proxy: { httpsProxy: squid.url, noProxy: '127.0.0.1' } });
    expect(await direct.claimTasks(claim(0), 0)).toMatchObject({ tasks: [] });
    await direct.close();
    await new Promise((r) => setTimeout(r, 300));
    expect((await connectLines()).length).toBe(before);
    expect(hub.claims).toBe(1);
  });

  it('reports a hub that holds the request past the wait and grace as TIMEOUT', async () => {
    hub.hang = true;
    await expect(client({ graceMs: 300 }).claimTasks(claim(0), 0)).rejects.toMatchObject({ name: 'HubRequestError', kind: 'TIMEOUT' });
  });

  it('reports the hub refusing a claim as GRAPHQL with its code: unknown signer, replayed claim', async () => {
    const c = client();
    await expect(c.claimTasks(claim(0, NodeIdentity.generate()), 0)).rejects.toMatchObject({
      kind: 'GRAPHQL',
      details: { code: 'UNAUTHENTICATED', reason: 'UNKNOWN_SIGNER' },
    });
    const once = claim(0);
    await c.claimTasks(once, 0);
    await expect(c.claimTasks(once, 0)).rejects.toMatchObject({ kind: 'GRAPHQL', details: { reason: 'REPLAYED' } });
  });

  it("submits a signed result and gets the hub's signed receipt for exactly that result; a replay is not accepted", async () => {
    const c = client();
    const result = signEnvelope(north, { kind: EnvelopeKind.RESULT, signer: 'NORTH', audience: 'hub', payload: { taskId: 'task-1', state: 'SUCCEEDED' } });
    const answer = await c.submitResult(result);
    expect(answer).toMatchObject({ accepted: true, code: null });
    const hubKey = publicKeyFromBase64('ed25519', hub.identity.public.signingKey);
    const receipt = verifyEnvelope(answer.receipt, { kind: EnvelopeKind.RECEIPT, audience: 'NORTH', keys: () => hubKey });
    expect(receipt).toMatchObject({ ok: true, envelope: { payload: { taskId: 'task-1', resultSha256: canonicalSha256(result) } } });
    expect(await c.submitResult(result)).toEqual({ accepted: false, code: 'REPLAYED', receipt: null });
  });

  it('reports an answer that is not the GraphQL it should be as BAD_RESPONSE', async () => {
    const c = client();
    hub.garbage.push('<html>proxy login</html>', JSON.stringify({ data: { claimFederationTasks: { tasks: 'none' } } }), JSON.stringify({ data: null }));
    for (let i = 0; i < 3; i++) await expect(c.claimTasks(claim(0), 0)).rejects.toMatchObject({ kind: 'BAD_RESPONSE' });
    hub.garbage.push(JSON.stringify({ data: { submitFederationResult: { accepted: 'yes' } } }));
    await expect(c.submitResult(claim(0))).rejects.toMatchObject({ kind: 'BAD_RESPONSE' });
  });

  it('reports an HTTP error with its Retry-After, and an unreachable hub as NETWORK', async () => {
    hub.failures.push({ status: 503, retryAfter: '7' });
    await expect(client().claimTasks(claim(0), 0)).rejects.toMatchObject({ kind: 'HTTP_STATUS', details: { status: 503, retryAfterMs: 7000 } });
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    await expect(client({ url: `https://127.0.0.1:${closed}/graphql`, proxy: { noProxy: '*' } }).claimTasks(claim(0), 0)).rejects.toMatchObject({
      kind: 'NETWORK',
    });
    // Through the proxy, the same dead hub is squid's 503 on CONNECT: still a network failure to retry.
    await expect(client({ url: `https://127.0.0.1:${closed}/graphql` }).claimTasks(claim(0), 0)).rejects.toBeInstanceOf(HubRequestError);
  });

  it('refuses a certificate that the trusted CAs did not sign', async () => {
    const other = await fs.mkdtemp(path.join(dir, 'other-'));
    const otherCa = await makeCertificates(other);
    await expect(client({ ca: otherCa.ca }).claimTasks(claim(0), 0)).rejects.toMatchObject({ kind: 'NETWORK' });
  });

  it('keeps claiming with jittered, growing backoff through hub failures, then delivers tasks and stops on abort', async () => {
    hub.failures.push({ status: 502 }, { status: 503 }, { status: 500 });
    hub.queueTask('NORTH');
    const delays: number[] = [];
    const delivered: unknown[] = [];
    const stop = new AbortController();
    const random = seededRandom(11);
    await runClaimLoop({
      client: client(),
      makeClaim: () => claim(1),
      waitSeconds: 1,
      signal: stop.signal,
      random,
      backoff: { baseMs: 1000, maxMs: 60_000 },
      // Records the delays instead of sleeping through them.
      wait: async (ms) => void delays.push(ms),
      onTasks: async (tasks) => {
        delivered.push(...tasks);
        stop.abort();
      },
    });
    expect(delivered).toHaveLength(1);
    const replay = seededRandom(11);
    expect(delays).toEqual([1, 2, 3].map((failures) => backoffDelay(failures, { baseMs: 1000, maxMs: 60_000 }, replay)));
    delays.forEach((d, i) => expect(d).toBeLessThanOrEqual(1000 * 2 ** i));
  });

  it('waits out the rest of a second after an empty answer that came back at once', async () => {
    const waits: number[] = [];
    const stop = new AbortController();
    let now = 0;
    await runClaimLoop({
      client: client(),
      makeClaim: () => claim(0),
      waitSeconds: 0,
      signal: stop.signal,
      now: () => now,
      minIntervalMs: 1000,
      onTasks: async () => undefined,
      wait: async (ms) => {
        waits.push(ms);
        now += ms;
        if (waits.length === 3) stop.abort();
      },
    });
    expect(waits).toEqual([1000, 1000, 1000]);
    expect(hub.claims).toBe(3);
  });

  it('bounds every backoff by the doubling ceiling and the maximum (generated)', () => {
    const random = seededRandom(3);
    for (let failures = 1; failures < 60; failures++) {
      const d = backoffDelay(failures, { baseMs: 250, maxMs: 30_000 }, random);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(30_000, 250 * 2 ** (failures - 1)));
    }
  });

  it('works through a proxy that refuses WebSocket upgrades', async () => {
    const plain = await new FakeHub(new Map([['NORTH', north]]), null).listen();
    try {
      // Direct, the hub speaks WebSocket...
      const direct = new WebSocket(plain.url.replace('http', 'ws'));
      await new Promise((resolve, reject) => direct.once('open', resolve).once('error', reject));
      direct.close();
      // ...through squid, the upgrade is refused...
      const status = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(squid.port, '127.0.0.1', () =>
          socket.write(
            `GET ${plain.url} HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
          ),
        );
        socket.once('data', (d) => {
          resolve(d.toString().split('\r\n')[0]);
          socket.destroy();
        });
        socket.once('error', reject);
      });
      expect(status).toMatch(/^HTTP\/1\.1 403/);
      // ...and the long-poll gets through the same proxy.
      const c = new HubClient({ url: plain.url, proxy: { httpProxy: squid.url, noProxy: '' } });
      clients.push(c);
      const answer = c.claimTasks(claim(5), 5);
      await plain.nextArrival();
      plain.queueTask('NORTH');
      expect((await answer).tasks).toHaveLength(1);
      await c.close();
      const tunnels = async () => (await squid.accessLog()).filter((l) => l.includes(`CONNECT 127.0.0.1:${plain.port}`));
      for (let i = 0; i < 50 && (await tunnels()).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(await tunnels()).toHaveLength(1);
    } finally {
      await plain.close();
    }
  });

  it('trusts a CA from NODE_EXTRA_CA_CERTS and finds the proxy in HTTPS_PROXY, in a process configured by environment only', async () => {
    if (!existsSync(DIST_CLIENT)) throw new Error(`${DIST_CLIENT} is missing: run npm run build first`);
    const script = `
      const { HubClient } = require(${JSON.stringify(DIST_CLIENT)});
      const client = new HubClient({ url: process.env.HUB_URL });
      client.claimTasks(JSON.parse(process.env.CLAIM), 0)
        .then((a) => console.log(JSON.stringify({ ok: true, tasks: a.tasks.length })))
        .catch((e) => console.log(JSON.stringify({ ok: false, kind: e.kind, message: e.message })))
        .finally(() => client.close());`;
    const runChild = (env: Record<string, string>) =>
      new Promise<{ ok: boolean; kind?: string; tasks?: number }>((resolve, reject) => {
        const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(https?|no)_proxy$/i.test(k) && k !== 'NODE_EXTRA_CA_CERTS'));
        const child = spawn(process.execPath, ['-e', script], { env: { ...clean, HUB_URL: hub.url, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.once('error', reject);
        child.once('exit', () => resolve(JSON.parse(out.trim().split('\n').pop() as string)));
      });
    const before = (await connectLines()).length;
    expect(await runChild({ HTTPS_PROXY: squid.url, NODE_EXTRA_CA_CERTS: certs.caFile, CLAIM: JSON.stringify(claim(0)) })).toEqual({ ok: true, tasks: 0 });
    for (let i = 0; i < 50 && (await connectLines()).length === before; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await connectLines()).length).toBeGreaterThan(before);
    // Without the CA the hub's certificate is refused.
    expect(await runChild({ HTTPS_PROXY: squid.url, CLAIM: JSON.stringify(claim(0)) })).toMatchObject({ ok: false, kind: 'NETWORK' });
  });
});
