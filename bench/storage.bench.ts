/**
 * The object store's cost: STOW-RS ingest (parse, check, de-identify, store, record) and a full inference job over
 * the demo study (read each object, decode, preprocess, run, write), once with the file-system store and once with
 * the S3 store against an S3-protocol server on this machine (s3rver, the one the tests use), in the same run;
 * printed as objects or images per second and as the S3 / file-system time ratio. s3rver keeps objects in files
 * behind an HTTP server written in JavaScript, so the ratio is the price of the protocol (signing, HTTP, one HEAD
 * before each put, a hash check on each read) plus a slow server, an upper bound for MinIO or S3 on a fast network.
 *
 *   npm run bench:storage            # needs PostgreSQL at TEST_DATABASE_URL (default 127.0.0.1:5432)
 *   BENCH_OBJECTS=100 npm run bench:storage
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { loadDemoCohort } from '../server/demo/demo-cohort';
import { Role } from '../server/domain';
import { systemContext } from '../server/services';
import type { ObjectStore } from '../server/storage/object-store';
import { startS3Server } from '../test/helpers/s3-server';
import { syntheticCtSeries, SYNTHETIC_PATIENT_ID } from '../test/helpers/synthetic-dicom';
import { withBenchNode } from './bench-node';

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 300);
const BATCH = 50;

function multipart(files: Buffer[]): { contentType: string; body: Buffer } {
  const boundary = `bench-${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const f of files) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), f, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

interface Measured {
  ingestSeconds: number;
  inferenceSeconds: number;
  images: number;
}

/** Ingest of OBJECTS CT slices through the real server, then one inference job over the demo study, with `objects` (or files). */
async function measure(objects: ObjectStore | undefined, files: Buffer[]): Promise<Measured> {
  let result: Measured | null = null;
  await withBenchNode({ http: true, objects }, async (node) => {
    const ctx = systemContext('bench');
    const site = await node.services.sites.createSite(ctx, { code: 'BENCH', name: 'Bench' });
    await node.services.manifests.importPatients(ctx, `site,patient_id\nBENCH,${SYNTHETIC_PATIENT_ID}\n`);
    const { secret } = await node.services.tokens.createApiToken(ctx, { name: 'bench', role: Role.COORDINATOR, siteId: site.id });
    const started = performance.now();
    for (let i = 0; i < files.length; i += BATCH) {
      const { contentType, body } = multipart(files.slice(i, i + BATCH));
      const response = await fetch(`${node.url}/dicomweb/studies`, {
        method: 'POST',
        headers: { 'content-type': contentType, authorization: `Bearer ${secret}` },
        body,
      });
      if (response.status !== 202) throw new Error(`STOW-RS answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
    }
    const ingestSeconds = (performance.now() - started) / 1000;

    await loadDemoCohort(node.services);
    const [{ id: modelId }] = await node.dataSource.query(`SELECT id FROM model_version WHERE sha256 IS NOT NULL`);
    const worker = node.servicesWith({ inferenceBatchSize: 16, jobSliceSeconds: 3600 });
    const job = async () => {
      await node.dataSource.query('DELETE FROM prediction');
      const created = await node.services.inference.startInferenceJob(ctx, { modelVersionId: modelId });
      const begun = performance.now();
      const outcome = await worker.inferenceRunner.runSlice(systemContext('bench worker'), created.id);
      const seconds = (performance.now() - begun) / 1000;
      const done = await node.services.inference.getJob(ctx, created.id);
      if (outcome !== 'done' || done.failed) throw new Error(`job ended ${outcome} with ${done.done}/${done.total} done, ${done.failed} failed`);
      return { seconds, images: done.done };
    };
    await job(); // warm-up: opens the worker's session
    const measured = await job();
    result = { ingestSeconds, inferenceSeconds: measured.seconds, images: measured.images };
  });
  return result!;
}

async function main(): Promise<void> {
  const files = syntheticCtSeries(OBJECTS, 512, '1');
  const s3 = await startS3Server();
  try {
    await s3.createBucket('facet-bench');
    const file = await measure(undefined, files);
    const store = s3.store('facet-bench');
    const bucket = await measure(store, files);
    await store.close();
    const mb = files.reduce((n, f) => n + f.length, 0) / 1e6;
    const rate = (n: number, s: number, unit: string) => `${(n / s).toFixed(0).padStart(6)} ${unit}/s`;
    console.log(
      `Object store: ${OBJECTS} CT slices (${mb.toFixed(0)} MB) by STOW-RS in batches of ${BATCH}, then a job over ${file.images} demo joint images; ${os.cpus().length} cores`,
    );
    console.log('                 file system           S3 (s3rver, local)    S3 / file system');
    console.log(
      `  ingest         ${rate(OBJECTS, file.ingestSeconds, 'objects')}     ${rate(OBJECTS, bucket.ingestSeconds, 'objects')}     ${(bucket.ingestSeconds / file.ingestSeconds).toFixed(2)}x`,
    );
    console.log(
      `  inference      ${rate(file.images, file.inferenceSeconds, 'images')}      ${rate(bucket.images, bucket.inferenceSeconds, 'images')}      ${(bucket.inferenceSeconds / file.inferenceSeconds).toFixed(2)}x`,
    );
  } finally {
    await s3.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
