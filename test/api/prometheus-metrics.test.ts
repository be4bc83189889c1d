/**
 * /metrics in the Prometheus text format: scraped before and after real requests, an ingest, an inference job run
 * by a worker process and a lost LISTEN connection, and the counters compared; the refusals of the API port; the
 * worker's own listener (FACET_METRICS_PORT).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Role } from '../../server/domain';
import { startMetricsServer } from '../../server/http/metrics';
import { MAX_OPERATION_LABELS, operationLabel } from '../../server/telemetry/metrics';
import { Factory } from '../helpers/factories';
import { freePort } from '../helpers/free-port';
import { gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process';
import { stow } from '../helpers/stow';

const SCRAPE_TOKEN = 'scrape-0123456789abcdef0123456789abcdef';
const DICOM = path.resolve(__dirname, '../fixtures/dicom');
const ONNX = path.resolve(__dirname, '../fixtures/onnx');
const MRN = 'MRN-7734021';
const UID = (suffix: string) => `1.2.826.0.1.3680043.9.7134.1.20240117.1.2.3.${suffix}`;

/** One sample of the exposition: metric name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format 0.0.4: `# HELP`/`# TYPE` comments, then `name{label="value",…} number` lines. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`Not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[key] = value.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of one series (0 when absent: a counter not yet incremented has no series). */
const valueOf = (samples: Sample[], name: string, labels: Record<string, string> = {}): number =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);

describe('Prometheus metrics', () => {
  const node = useTestNode({ metricsToken: SCRAPE_TOKEN });
  let admin: string;
  let coordinator: string;
  let engineer: string;
  let siteId: string;
  const scrape = async (token = SCRAPE_TOKEN): Promise<Sample[]> => {
    const response = await fetch(`${node().url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    return parseExposition(await response.text());
  };

  beforeAll(async () => {
    const factory = new Factory(node().services);
    const site = await factory.site('EAST');
    siteId = site.id;
    admin = await factory.token(Role.ADMIN);
    coordinator = await factory.token(Role.COORDINATOR, { site });
    engineer = await factory.token(Role.ENGINEER);
    await gqlOk(node().url, coordinator, `mutation Patients($csv: String!) { importPatientsManifest(csv: $csv) { stored } }`, {
      csv: `site,patient_id\nEAST,${MRN}\n`,
    });
  });

  describe('who may scrape', () => {
    it('answers the scrape token and ADMIN tokens, in the text format', async () => {
      const response = await fetch(`${node().url}/metrics`, { headers: { authorization: `Bearer ${SCRAPE_TOKEN}` } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(valueOf(parseExposition(await response.text()), 'facet_process_resident_memory_bytes')).toBeGreaterThan(0);
      expect((await scrape(admin)).length).toBeGreaterThan(0);
    });

    it.each([
      ['no token', null, 401, 'UNAUTHENTICATED'],
      ['a wrong scrape token', `${SCRAPE_TOKEN}x`, 401, 'UNAUTHENTICATED'],
      ['a COORDINATOR token', 'coordinator', 403, 'FORBIDDEN'],
      ['an ENGINEER token', 'engineer', 403, 'FORBIDDEN'],
    ])('refuses %s', async (_label, token, status, code) => {
      const secret = token === 'coordinator' ? coordinator : token === 'engineer' ? engineer : token;
      const response = await fetch(`${node().url}/metrics`, { headers: secret ? { authorization: `Bearer ${secret}` } : {} });
      expect(response.status).toBe(status);
      expect(((await response.json()) as any).errors[0].extensions.code).toBe(code);
    });
  });

  it('counts HTTP requests by route pattern and GraphQL operations by name and outcome', async () => {
    const before = await scrape();
    for (let i = 0; i < 3; i++) await gqlOk(node().url, admin, `query SitesForMetrics { sites { nodes { code } } }`);
    expect((await gql(node().url, admin, `query Broken { noSuchField }`)).errors).toBeDefined();
    await fetch(`${node().url}/dicomweb/studies/1.2.3/metadata`, { headers: { authorization: `Bearer ${admin}` } });
    await fetch(`${node().url}/healthz`);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels);
    expect(delta('facet_graphql_operations_total', { type: 'query', operation: 'SitesForMetrics', outcome: 'ok' })).toBe(3);
    expect(delta('facet_graphql_operation_duration_seconds_count', { type: 'query', operation: 'SitesForMetrics' })).toBe(3);
    expect(delta('facet_graphql_operations_total', { operation: 'invalid', outcome: 'error' })).toBe(1);
    expect(delta('facet_http_requests_total', { method: 'POST', route: '/graphql', status: '200' })).toBe(3);
    expect(delta('facet_http_requests_total', { method: 'GET', route: '/dicomweb/studies/:study/metadata', status: '404' })).toBe(1);
    expect(delta('facet_http_requests_total', { method: 'GET', route: '/healthz', status: '200' })).toBe(1);
    expect(delta('facet_http_request_duration_seconds_count', { method: 'GET', route: '/healthz' })).toBe(1);
    // Paths never become labels: no UID in any label value.
    expect(after.some((s) => Object.values(s.labels).some((v) => v.includes('1.2.3')))).toBe(false);
  });

  it('bounds the GraphQL operation label: names past the first MAX_OPERATION_LABELS share `other`', () => {
    const labels = new Set(Array.from({ length: MAX_OPERATION_LABELS + 50 }, (_, i) => operationLabel(`Generated${i}`)));
    expect(labels.size).toBeLessThanOrEqual(MAX_OPERATION_LABELS + 1);
    expect(labels.has('other')).toBe(true);
    expect(operationLabel(null)).toBe('anonymous');
    expect(operationLabel('not a name!')).toBe('other');
  });

  it('counts ingested objects and bytes, stored and rejected', async () => {
    const before = await scrape();
    const files = ['identified-explicit-le.dcm', 'identified-mr.dcm', 'identified-jpeg-ls.dcm'].map((f) => ({ bytes: readFileSync(path.join(DICOM, f)) }));
    expect((await stow(node().url, coordinator, files)).status).toBe(202);
    const rejected = [{ bytes: Buffer.from('not DICOM at all') }];
    expect((await stow(node().url, coordinator, rejected)).status).toBe(409);
    const after = await scrape();
    const delta = (name: string, outcome: string) => valueOf(after, name, { outcome }) - valueOf(before, name, { outcome });
    expect(delta('facet_ingest_objects_total', 'stored')).toBe(3);
    expect(delta('facet_ingest_bytes_total', 'stored')).toBe(files.reduce((sum, f) => sum + f.bytes.length, 0));
    expect(delta('facet_ingest_objects_total', 'rejected')).toBe(1);
    expect(delta('facet_ingest_bytes_total', 'rejected')).toBe(rejected[0].bytes.length);
  });

  it('reports the pool of this process', async () => {
    const samples = await scrape();
    expect(valueOf(samples, 'facet_db_pool_connections', { state: 'total' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(samples, 'facet_db_pool_connections', { state: 'waiting' })).toBe(0);
  });

  it('counts a LISTEN connection lost and opened again', async () => {
    const before = valueOf(await scrape(), 'facet_listen_reconnects_total');
    await node().dataSource.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`);
    const deadline = Date.now() + 60_000;
    let after = before;
    while (after === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      after = valueOf(await scrape(), 'facet_listen_reconnects_total');
    }
    expect(after).toBe(before + 1);
  });

  describe('a worker process with its own listener (FACET_METRICS_PORT)', () => {
    let worker: NodeProcess | null = null;
    afterAll(async () => {
      await worker?.stop();
    });

    it('serves the predictions it wrote; the API process shows the job and the queue from the shared database', async () => {
      const csv = [
        'patient_id,level,side,sop_instance_uid,frame,x,y,width,height',
        `${MRN},L4_L5,LEFT,${UID('1')},0,4,4,32,32`,
        `${MRN},L4_L5,LEFT,${UID('4')},0,8,8,40,40`,
        `${MRN},L4_L5,RIGHT,${UID('14')},0,0,0,64,64`,
      ].join('\n');
      const images = await gqlOk(
        node().url,
        coordinator,
        `mutation Images($site: ID!, $csv: String!) { importJointImagesManifest(siteId: $site, csv: $csv) { stored } }`,
        {
          site: siteId,
          csv,
        },
      );
      expect(images.importJointImagesManifest.stored).toBe(true);
      const form = new FormData();
      form.append('manifest', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.manifest.json'))]), 'manifest.json');
      form.append('model', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.onnx'))]), 'model.onnx');
      const registered = await fetch(`${node().url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form });
      const modelId = ((await registered.json()) as { id: string }).id;
      const job = await gqlOk(node().url, engineer, `mutation Start($id: ID!) { startInferenceJob(modelVersionId: $id) { id } }`, { id: modelId });
      const queued = await scrape();
      expect(valueOf(queued, 'facet_inference_jobs', { status: 'QUEUED' })).toBe(1);
      expect(valueOf(queued, 'facet_queue_depth', { queue: 'run-inference' })).toBe(1);

      const port = await freePort();
      worker = await startNodeProcess(['worker'], { DATABASE_URL: node().database.url, FACET_DATA_DIR: node().dataDir, FACET_METRICS_PORT: String(port) });
      const deadline = Date.now() + 180_000;
      let status = '';
      while (status !== 'SUCCEEDED' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        status = (await gqlOk(node().url, engineer, `query Job($id: ID!) { job(id: $id) { status } }`, { id: job.startInferenceJob.id })).job.status;
      }
      expect(status).toBe('SUCCEEDED');
      const fromWorker = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(fromWorker.status).toBe(200);
      const workerSamples = parseExposition(await fromWorker.text());
      expect(valueOf(workerSamples, 'facet_predictions_total')).toBe(3 * 5);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
      const api = await scrape();
      expect(valueOf(api, 'facet_predictions_total')).toBe(0);
      expect(valueOf(api, 'facet_inference_jobs', { status: 'SUCCEEDED' })).toBe(1);
      expect(valueOf(api, 'facet_inference_jobs', { status: 'QUEUED' })).toBe(0);
      expect(valueOf(api, 'facet_queue_depth', { queue: 'run-inference' })).toBe(0);
    });
  });

  it('serves the same registry on a listener of its own, without a token', async () => {
    const listener = await startMetricsServer('127.0.0.1', 0, node().services);
    try {
      const read = async () => {
        const response = await fetch(listener.url);
        expect(response.status).toBe(200);
        return valueOf(parseExposition(await response.text()), 'facet_graphql_operations_total', { operation: 'SitesForMetrics', outcome: 'ok' });
      };
      const before = await read();
      // A name seen before: the label bound of the test above may have filled the set with generated names since.
      await gqlOk(node().url, admin, `query SitesForMetrics { sites { nodes { code } } }`);
      expect(await read()).toBe(before + 1);
      expect((await fetch(listener.url, { method: 'POST' })).status).toBe(404);
    } finally {
      await listener.close();
    }
  });
});
