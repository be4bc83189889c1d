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
import os from 'node:os';
import { data, log } from 'dcmjs';
import { syntheticCtSeries, SYNTHETIC_PATIENT_ID } from '../test/helpers/synthetic-dicom';
import { Role } from '../server/domain';
import { systemContext } from '../server/services';
import { withBenchNode } from './bench-node';

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 1000);
const BATCH = Number(process.env.BENCH_BATCH ?? 50);
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
  await withBenchNode({ http: true }, async ({ services, url }) => {
    const ctx = systemContext('bench');
    const site = await services.sites.createSite(ctx, { code: 'BENCH', name: 'Bench' });
    await services.manifests.importPatients(ctx, `site,patient_id\nBENCH,${SYNTHETIC_PATIENT_ID}\n`);
    const { secret } = await services.tokens.createApiToken(ctx, { name: 'bench', role: Role.COORDINATOR, siteId: site.id });

    const single = syntheticCtSeries(OBJECTS, 512, '1');
    const parallel = syntheticCtSeries(OBJECTS, 512, '2');
    const megabytes = single.reduce((s, f) => s + f.length, 0) / 1024 / 1024;
    const parse = parseWithDcmjs(single);
    const one = await ingest(url, secret, single, 1);
    const four = await ingest(url, secret, parallel, 4);

    const rate = (seconds: number) => (OBJECTS / seconds).toFixed(0);
    console.log(`STOW-RS ingest, ${OBJECTS} CT-like 512x512x16-bit instances (${megabytes.toFixed(0)} MB), batches of ${BATCH}, ${os.cpus().length} cores`);
    console.log(`  dcmjs parse alone (baseline):  ${parse.toFixed(2)} s   ${rate(parse)} objects/s`);
    console.log(`  1 client:                      ${one.toFixed(2)} s   ${rate(one)} objects/s   ${(one / parse).toFixed(1)}x the dcmjs parse`);
    console.log(`  4 parallel clients:            ${four.toFixed(2)} s   ${rate(four)} objects/s   ${(four / parse).toFixed(1)}x the dcmjs parse`);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
