/**
 * DICOMweb reads for viewers over the real server: a series of CT-like 512 x 512 16-bit instances searched
 * (QIDO-RS), its metadata retrieved (WADO-RS) and its frames rendered as PNG and JPEG, each printed per request and
 * as a ratio to the same work done in this process without HTTP, database, scope or audit (reading the stored
 * objects, DICOM JSON, decode, window and encode): what the service layer and transport add.
 *
 *   npm run bench:dicomweb            # needs PostgreSQL at TEST_DATABASE_URL (default 127.0.0.1:5432)
 *   BENCH_INSTANCES=50 npm run bench:dicomweb
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { toDicomJson } from '../server/dicom/dicom-json';
import { readPart10 } from '../server/dicom/reader';
import { Role } from '../server/domain';
import { Instance } from '../server/entities';
import { renderFrame } from '../server/inference/render';
import { systemContext } from '../server/services';
import { syntheticCtSeries, SYNTHETIC_PATIENT_ID } from '../test/helpers/synthetic-dicom';
import { withBenchNode } from './bench-node';

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 200);

function multipart(files: Buffer[]): { contentType: string; body: Buffer } {
  const boundary = `bench-${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const f of files) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), f, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

/** Seconds `body` takes. */
async function timed(body: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await body();
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  await withBenchNode({ http: true }, async ({ services, url, dataSource }) => {
    const ctx = systemContext('bench');
    const site = await services.sites.createSite(ctx, { code: 'BENCH', name: 'Bench' });
    await services.manifests.importPatients(ctx, `site,patient_id\nBENCH,${SYNTHETIC_PATIENT_ID}\n`);
    const { secret } = await services.tokens.createApiToken(ctx, { name: 'bench', role: Role.COORDINATOR, siteId: site.id });
    const files = syntheticCtSeries(INSTANCES, 512, '1');
    for (let i = 0; i < files.length; i += 50) {
      const { contentType, body } = multipart(files.slice(i, i + 50));
      const response = await fetch(`${url}/dicomweb/studies`, {
        method: 'POST',
        headers: { 'content-type': contentType, authorization: `Bearer ${secret}` },
        body,
      });
      if (response.status !== 202) throw new Error(`STOW-RS answered ${response.status}`);
    }
    const auth = { authorization: `Bearer ${secret}` };
    const [search] = (await (await fetch(`${url}/dicomweb/series`, { headers: auth })).json()) as Array<Record<string, { Value: string[] }>>;
    const study = search['0020000D'].Value[0];
    const series = search['0020000E'].Value[0];
    const rows = await dataSource.getRepository(Instance).find({ order: { instanceNumber: 'ASC' } });
    const instanceUrl = (uid: string) => `${url}/dicomweb/studies/${study}/series/${series}/instances/${uid}`;

    const get = async (target: string, accept: string) => {
      const response = await fetch(target, { headers: { ...auth, accept } });
      if (response.status !== 200) throw new Error(`${target} answered ${response.status}`);
      await response.arrayBuffer();
    };
    const qido = await timed(() => get(`${url}/dicomweb/studies/${study}/series/${series}/instances`, 'application/dicom+json'));
    const metadata = await timed(() => get(`${url}/dicomweb/studies/${study}/series/${series}/metadata`, 'application/dicom+json'));
    const png = await timed(async () => {
      for (const row of rows) await get(`${instanceUrl(row.sopInstanceUid)}/rendered`, 'image/png');
    });
    const jpeg = await timed(async () => {
      for (const row of rows) await get(`${instanceUrl(row.sopInstanceUid)}/rendered`, 'image/jpeg');
    });

    // The same work in this process: the stored objects read, parsed, turned into DICOM JSON or rendered.
    const metadataBase = await timed(async () => {
      for (const row of rows) toDicomJson(readPart10(await services.objects.read(row.sha256)), 'frames');
    });
    const pngBase = await timed(async () => {
      for (const row of rows) await renderFrame(readPart10(await services.objects.read(row.sha256)), 0, 'image/png');
    });
    const jpegBase = await timed(async () => {
      for (const row of rows) await renderFrame(readPart10(await services.objects.read(row.sha256)), 0, 'image/jpeg');
    });

    const ms = (seconds: number, n = 1) => `${((seconds * 1000) / n).toFixed(1)} ms`;
    console.log(`DICOMweb reads of one series of ${INSTANCES} CT-like 512x512x16-bit instances, ${os.cpus().length} cores`);
    console.log(`  QIDO-RS instances of the series:  ${ms(qido)}`);
    console.log(
      `  series metadata over HTTP:        ${ms(metadata)}   in-process read + DICOM JSON: ${ms(metadataBase)}   ${(metadata / metadataBase).toFixed(2)}x`,
    );
    console.log(
      `  rendered PNG, per frame:          ${ms(png, INSTANCES)}   in-process decode + window + encode: ${ms(pngBase, INSTANCES)}   ${(png / pngBase).toFixed(2)}x`,
    );
    console.log(`  rendered JPEG, per frame:         ${ms(jpeg, INSTANCES)}   in-process: ${ms(jpegBase, INSTANCES)}   ${(jpeg / jpegBase).toFixed(2)}x`);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
