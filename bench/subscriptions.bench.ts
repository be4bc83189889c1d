/**
 * Subscription delivery latency: 1,000 graphql-ws clients subscribed to one job's `jobProgress` on the real
 * server, and a job whose progress changes 20 times (four a second, as a worker announces it). Latency runs
 * from the NOTIFY (as a worker sends it after committing a batch) to each client's receipt of that state:
 * PostgreSQL to the server's LISTEN connection, one read of the job for all subscribers, GraphQL execution and
 * a WebSocket frame per client. Printed against a bare LISTEN client's NOTIFY round trip in this process. The
 * clients share the server's process and cores, so the figures are pessimistic.
 *
 *   npm run bench:subscriptions     # needs PostgreSQL at TEST_DATABASE_URL (default 127.0.0.1:5432)
 *   BENCH_SUBSCRIBERS=200 npm run bench:subscriptions
 */
import 'reflect-metadata';
import os from 'node:os';
import { createClient, type Client as WsClient } from 'graphql-ws';
import { Client } from 'pg';
import WebSocket from 'ws';
import { Role } from '../server/domain';
import { JOB_PROGRESS, jobProgressEvent } from '../server/pubsub/topics';
import { systemContext } from '../server/services';
import { withBenchNode } from './bench-node';

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const EVENTS = 20;
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const ms = (v: number) => `${v.toFixed(1).padStart(7)} ms`;

/** NOTIFY to a LISTEN client of our own, EVENTS times: the floor any PostgreSQL-backed fan-out pays. */
async function bareNotifyLatencies(databaseUrl: string): Promise<number[]> {
  const listener = new Client({ connectionString: databaseUrl });
  const sender = new Client({ connectionString: databaseUrl });
  await listener.connect();
  await sender.connect();
  await listener.query('LISTEN bench_bare');
  const latencies: number[] = [];
  for (let k = 0; k < EVENTS; k++) {
    const received = new Promise<void>((resolve) => listener.once('notification', () => resolve()));
    const started = performance.now();
    await sender.query(`SELECT pg_notify('bench_bare', $1)`, [String(k)]);
    await received;
    latencies.push(performance.now() - started);
    await new Promise((r) => setTimeout(r, 50));
  }
  await listener.end();
  await sender.end();
  return latencies;
}

async function main(): Promise<void> {
  await withBenchNode({ http: true }, async ({ services, dataSource, url, databaseUrl }) => {
    const ctx = systemContext('bench');
    const { secret } = await services.tokens.createApiToken(ctx, { name: 'dashboard', role: Role.STATISTICIAN });
    const model = await services.models.registerExternalModel(ctx, { name: 'bench', version: '1' });
    const [{ id: jobId }] = await dataSource.query(
      `INSERT INTO inference_job (model_version_id, scope, status, total, started_at) VALUES ($1, '{"siteIds":[],"modalities":[]}', 'RUNNING', $2, now()) RETURNING id`,
      [model.id, EVENTS],
    );

    // Each client records when it first sees each `done` value; `sent[k]` is when done = k was announced.
    const sent: number[] = [];
    const latencies: number[] = [];
    let received = 0;
    const clients: WsClient[] = [];
    const ready: Promise<void>[] = [];
    for (let c = 0; c < SUBSCRIBERS; c++) {
      const client = createClient({
        url: `${url.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${secret}` },
        retryAttempts: 0,
      });
      clients.push(client);
      ready.push(
        new Promise<void>((resolve, reject) => {
          client.subscribe<{ jobProgress: { done: number } }>(
            { query: `subscription ($id: ID!) { jobProgress(jobId: $id) { status done total rate etaSeconds } }`, variables: { id: jobId } },
            {
              next: ({ data }) => {
                const done = data!.jobProgress.done;
                if (done === 0) return resolve(); // the current state, sent first
                latencies.push(performance.now() - sent[done]);
                received++;
              },
              error: reject,
              complete: () => undefined,
            },
          );
        }),
      );
    }
    const connecting = performance.now();
    await Promise.all(ready);
    const connectSeconds = (performance.now() - connecting) / 1000;

    for (let k = 1; k <= EVENTS; k++) {
      await dataSource.query(`UPDATE inference_job SET done = $2, updated_at = now() WHERE id = $1`, [jobId, k]);
      sent[k] = performance.now();
      await services.pubSub.publish(JOB_PROGRESS, jobId, jobProgressEvent(jobId));
      const deadline = Date.now() + 10_000;
      while (received < k * SUBSCRIBERS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 250));
    }
    await Promise.all(clients.map((c) => c.dispose()));
    if (received < SUBSCRIBERS * EVENTS) throw new Error(`only ${received} of ${SUBSCRIBERS * EVENTS} events arrived within 10 s each`);

    const bare = (await bareNotifyLatencies(databaseUrl)).sort((a, b) => a - b);
    const sorted = latencies.sort((a, b) => a - b);
    console.log(`jobProgress delivery, ${SUBSCRIBERS} graphql-ws subscribers on one server, ${EVENTS} progress events, ${os.cpus().length} cores`);
    console.log(`  subscribed and got the current state: ${connectSeconds.toFixed(2)} s; events delivered: ${received}/${SUBSCRIBERS * EVENTS}`);
    console.log(`  bare NOTIFY -> LISTEN (baseline):  p50 ${ms(quantile(bare, 0.5))}  p95 ${ms(quantile(bare, 0.95))}`);
    console.log(
      `  NOTIFY -> every subscriber:        p50 ${ms(quantile(sorted, 0.5))}  p95 ${ms(quantile(sorted, 0.95))}  max ${ms(sorted[sorted.length - 1])}   p50 ${(quantile(sorted, 0.5) / quantile(bare, 0.5)).toFixed(0)}x the bare NOTIFY`,
    );
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
