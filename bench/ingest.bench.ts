/**
 * STOW-RS ingest throughput: 1,000 CT-like 512 x 512 16-bit instances through the real server (parse, check,
 * de-identify, write, fsync, record), one client and then 4 parallel clients, printed as objects per second and
 * as a ratio to parsing the same files with dcmjs alone in this process (the floor any DICOM service pays).
 *
 *   npm run bench:ingest            # needs PostgreSQL at TEST_DATABASE_URL (default 127.0.0.1:5432)
 *   BENCH_OBJECTS=200 npm run bench:ingest
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { data, log } from 'dcmjs';
import { Client } from 'pg';
import { syntheticCtSeries, SYNTHETIC_PATIENT_ID } from '../scripts/synthetic-dicom';
import { createDataSource } from '../server/db/data-source';
import { runMigrations } from '../server/db/migrate';
import { Role } from '../server/domain';
import { createSchema } from '../server/graphql/schema';
import { startHttpServer } from '../server/http/app';
import { createServices, systemContext } from '../server/services';

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 1000);
const BATCH = Number(process.env.BENCH_BATCH ?? 50);
const BASE = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function databaseUrl(name: string): string {
  const url = new URL(BASE);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin(sql: string): Promise<void> {
  const client = new Client({ connectionString: BASE });
  await client.connect();
  await client.query(sql);
  await client.end();
}

function multipart(files: Buffer[]): { contentType: string; body: Buffer } {
  const boundary = `bench-${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const f of files) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), f, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

async function send(url: string, token: string, files: Buffer[]): Promise<void> {
  const { contentType, body } = multipart(files);
  const response = await fetch(`${url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': contentType, authorization: `Bearer ${token}` }, body });
  if (response.status !== 202) throw new Error(`STOW-RS answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
}

/** `clients` concurrent clients, each sending its share of `files` in batches of BATCH. */
async function ingest(url: string, token: string, files: Buffer[], clients: number): Promise<number> {
  const shares = Array.from({ length: clients }, (_, c) => files.filter((_, i) => i % clients === c));
  const started = performance.now();
  await Promise.all(
    shares.map(async (share) => {
      for (let i = 0; i < share.length; i += BATCH) await send(url, token, share.slice(i, i + BATCH));
    }),
  );
  return (performance.now() - started) / 1000;
}

function parseWithDcmjs(files: Buffer[]): number {
  log.setLevel('silent');
  const started = performance.now();
  for (const f of files) data.DicomMessage.readFile(f.buffer.slice(f.byteOffset, f.byteOffset + f.length) as ArrayBuffer);
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const name = `facet_bench_${randomBytes(4).toString('hex')}`;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'facet-bench-'));
  await admin(`CREATE DATABASE ${name}`);
  const dataSource = createDataSource(databaseUrl(name), { poolSize: 10 });
  try {
    await dataSource.initialize();
    await runMigrations(dataSource);
    const services = createServices(dataSource, { objectRoot: path.join(dataDir, 'objects'), databaseUrl: databaseUrl(name) });
    const server = await startHttpServer(
      { host: '127.0.0.1', port: 0, introspection: false, maxQueryDepth: 12, maxAliases: 30, maxQueryCost: 250_000, maxBodyBytes: 1 << 24, maxStowBytes: 1 << 30 },
      services,
      await createSchema(services),
      dataSource,
    );
    const ctx = systemContext('bench');
    const site = await services.sites.createSite(ctx, { code: 'BENCH', name: 'Bench' });
    await services.manifests.importPatients(ctx, `site,patient_id\nBENCH,${SYNTHETIC_PATIENT_ID}\n`);
    const { secret } = await services.tokens.createApiToken(ctx, { name: 'bench', role: Role.COORDINATOR, siteId: site.id });

    const single = syntheticCtSeries(OBJECTS, 512, '1');
    const parallel = syntheticCtSeries(OBJECTS, 512, '2');
    const megabytes = single.reduce((s, f) => s + f.length, 0) / 1024 / 1024;
    const parse = parseWithDcmjs(single);
    const one = await ingest(server.url, secret, single, 1);
    const four = await ingest(server.url, secret, parallel, 4);
    await server.close();

    const rate = (seconds: number) => (OBJECTS / seconds).toFixed(0);
    console.log(`STOW-RS ingest, ${OBJECTS} CT-like 512x512x16-bit instances (${megabytes.toFixed(0)} MB), batches of ${BATCH}, ${os.cpus().length} cores`);
    console.log(`  dcmjs parse alone (baseline):  ${parse.toFixed(2)} s   ${rate(parse)} objects/s`);
    console.log(`  1 client:                      ${one.toFixed(2)} s   ${rate(one)} objects/s   ${(one / parse).toFixed(1)}x the dcmjs parse`);
    console.log(`  4 parallel clients:            ${four.toFixed(2)} s   ${rate(four)} objects/s   ${(four / parse).toFixed(1)}x the dcmjs parse`);
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
