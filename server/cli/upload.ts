import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Progress } from './progress';

/**
 * `facet upload <folder>`: a coordinator's cohort upload. The folder holds DICOM files in any structure and up
 * to four manifests: patients.csv (first), joint-images.csv, readings.csv and reference.csv (after the DICOM, in
 * that order). DICOM goes by
 * STOW-RS in batches; what landed is remembered in `<folder>/.facet-upload-state.json`, so a second run after an
 * interruption sends only the rest. The end is a per-file and per-row report (`facet-upload-report.csv`).
 */
export interface UploadOptions {
  folder: string;
  url: string;
  token: string;
  /** Site code for the DICOM and the joint-images/readings manifests; a coordinator's own site by default. */
  site?: string;
  batchFiles: number;
  batchBytes: number;
  log?: (line: string) => void;
}

export interface ReportLine {
  kind: 'dicom' | 'patients' | 'joint-images' | 'readings' | 'reference';
  source: string;
  status: 'stored' | 'rejected' | 'skipped';
  code: string;
  reason: string;
}

interface FileState {
  size: number;
  mtimeMs: number;
}

interface State {
  url: string;
  site: string;
  stored: Record<string, FileState>;
  manifests: Record<string, string>;
}

type ManifestName = 'patients.csv' | 'joint-images.csv' | 'readings.csv' | 'reference.csv';
const STATE_FILE = '.facet-upload-state.json';
const REPORT_FILE = 'facet-upload-report.csv';
/** Files that are never DICOM candidates (DICOMDIR is a media directory, not an image). */
const NOT_DICOM = /(\.(csv|txt|md|json|pdf|xml|html?)$|(^|\/)DICOMDIR$)/i;

async function walk(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(root, full)));
    else if (entry.isFile()) out.push(path.relative(root, full));
  }
  return out.sort();
}

async function graphql<T>(options: UploadOptions, query: string, variables: Record<string, unknown>): Promise<T> {
  const response = await fetch(`${options.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${options.token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  if (body.errors?.length) throw new Error(`${body.errors[0].extensions?.code ?? 'ERROR'}: ${body.errors[0].message}`);
  return body.data as T;
}

/** One STOW-RS request; answers the status and the failed parts' Facet codes by part index. */
async function stowBatch(
  options: UploadOptions,
  siteCode: string,
  files: Buffer[],
): Promise<{ status: number; failures: Map<number, { code: string; reason: string }> }> {
  const boundary = `facet-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const bytes of files) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), bytes, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  const response = await fetch(`${options.url}/dicomweb/studies?site=${encodeURIComponent(siteCode)}`, {
    method: 'POST',
    headers: {
      'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      accept: 'application/dicom+json',
      authorization: `Bearer ${options.token}`,
    },
    body: Buffer.concat(chunks),
  });
  const text = await response.text();
  if (response.status !== 200 && response.status !== 202 && response.status !== 409)
    throw new Error(`STOW-RS answered ${response.status}: ${text.slice(0, 300)}`);
  const failures = new Map<number, { code: string; reason: string }>();
  const failed: Array<Record<string, { Value?: string[] }>> = (JSON.parse(text || '{}')['00081198']?.Value ?? []) as never;
  for (const item of failed) {
    const comment = String(item['00000902']?.Value?.[0] ?? '');
    const match = /^(\w+) part (\d+): (.*)$/.exec(comment);
    if (match) failures.set(Number(match[2]) - 1, { code: match[1], reason: match[3] });
  }
  return { status: response.status, failures };
}

/** A report cell; a leading = + - @ is neutralised so a spreadsheet never runs it as a formula. */
const csvCell = (raw: string) => {
  const v = /^[=+\-@]/.test(raw) ? `'${raw}` : raw;
  return /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
};

export async function upload(options: UploadOptions): Promise<{ report: ReportLine[]; rejected: number }> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const folder = path.resolve(options.folder);
  const viewer = await graphql<{ viewer: { role: string; siteId: string | null } }>(options, '{ viewer { role siteId } }', {});
  const sites = await graphql<{ sites: { nodes: Array<{ id: string; code: string }> } }>(options, '{ sites(first: 500) { nodes { id code } } }', {});
  const site = options.site ? sites.sites.nodes.find((s) => s.code === options.site) : sites.sites.nodes.find((s) => s.id === viewer.viewer.siteId);
  if (!site) throw new Error(options.site ? `No site with code ${options.site}` : 'Name the site with --site CODE');

  const statePath = path.join(folder, STATE_FILE);
  const previous = await readFile(statePath, 'utf8')
    .then((t) => JSON.parse(t) as State)
    .catch(() => null);
  const state: State =
    previous && previous.url === options.url && previous.site === site.code ? previous : { url: options.url, site: site.code, stored: {}, manifests: {} };
  const saveState = async () => {
    await writeFile(`${statePath}.tmp`, JSON.stringify(state, null, 1));
    await rename(`${statePath}.tmp`, statePath);
  };

  const report: ReportLine[] = [];
  const files = await walk(folder);
  const manifestPath = (name: string) => files.find((f) => path.basename(f).toLowerCase() === name);

  const runManifest = async (name: ManifestName) => {
    const file = manifestPath(name);
    if (!file) return;
    const csv = await readFile(path.join(folder, file), 'utf8');
    const digest = createHash('sha256').update(csv).digest('hex');
    const kind = name.replace('.csv', '') as ReportLine['kind'];
    if (state.manifests[file] === digest) {
      report.push({ kind, source: file, status: 'skipped', code: '', reason: 'stored by an earlier run' });
      return;
    }
    // The patients and reference files name their sites in a column (keyed by hospital ID and by pseudonym); the
    // others belong to the upload's site.
    const mutation =
      name === 'patients.csv'
        ? 'mutation ($csv: String!) { result: importPatientsManifest(csv: $csv) { stored rows rejected { source code reason } } }'
        : name === 'reference.csv'
          ? 'mutation ($csv: String!) { result: importReferenceStandard(csv: $csv) { stored rows rejected { source code reason } } }'
          : `mutation ($site: ID!, $csv: String!) { result: ${name === 'readings.csv' ? 'importReadingsManifest' : 'importJointImagesManifest'}(siteId: $site, csv: $csv) { stored rows rejected { source code reason } } }`;
    const { result } = await graphql<{ result: { stored: boolean; rows: number; rejected: Array<{ source: string; code: string; reason: string }> } }>(
      options,
      mutation,
      name === 'patients.csv' || name === 'reference.csv' ? { csv } : { csv, site: site.id },
    );
    if (result.stored) {
      state.manifests[file] = digest;
      await saveState();
      report.push({ kind, source: file, status: 'stored', code: '', reason: `${result.rows} rows` });
      log(`${file}: ${result.rows} rows stored`);
    } else {
      for (const r of result.rejected) report.push({ kind, source: `${file} ${r.source}`, status: 'rejected', code: r.code, reason: r.reason });
      log(`${file}: rejected (${result.rejected.length} rows with errors; nothing of it stored)`);
    }
  };

  await runManifest('patients.csv');

  const candidates = files.filter((f) => !NOT_DICOM.test(f));
  const pending: Array<{ file: string; size: number; mtimeMs: number }> = [];
  for (const file of candidates) {
    const info = await stat(path.join(folder, file));
    const known = state.stored[file];
    if (known && known.size === info.size && known.mtimeMs === info.mtimeMs) {
      report.push({ kind: 'dicom', source: file, status: 'skipped', code: '', reason: 'stored by an earlier run' });
    } else {
      pending.push({ file, size: info.size, mtimeMs: info.mtimeMs });
    }
  }
  log(`${pending.length} file(s) to send to ${site.code}, ${candidates.length - pending.length} already stored`);
  const progress = new Progress({ files: pending.length, bytes: pending.reduce((s, f) => s + f.size, 0) });
  let queue = [...pending];
  let batchNumber = 0;
  while (queue.length) {
    const batch: typeof pending = [];
    let bytes = 0;
    while (queue.length && batch.length < options.batchFiles && (batch.length === 0 || bytes + queue[0].size <= options.batchBytes)) {
      const next = queue.shift() as (typeof pending)[number];
      batch.push(next);
      bytes += next.size;
    }
    const contents = await Promise.all(batch.map((f) => readFile(path.join(folder, f.file))));
    const answer = await stowBatch(options, site.code, contents);
    batchNumber++;
    if (answer.status !== 409) {
      for (const f of batch) state.stored[f.file] = { size: f.size, mtimeMs: f.mtimeMs };
      for (const f of batch) report.push({ kind: 'dicom', source: f.file, status: 'stored', code: '', reason: '' });
      await saveState();
      progress.advance(batch.length, bytes);
      if (!process.stderr.isTTY) log(`batch ${batchNumber}: ${batch.length} file(s) stored`);
      continue;
    }
    // A batch lands whole or not at all: report the files at fault, send the innocent ones again.
    const retry: typeof pending = [];
    batch.forEach((f, i) => {
      const failure = answer.failures.get(i) ?? { code: 'REJECTED', reason: 'rejected without a reason' };
      if (failure.code === 'BATCH_REJECTED') {
        retry.push(f);
      } else {
        report.push({ kind: 'dicom', source: f.file, status: 'rejected', code: failure.code, reason: failure.reason });
        progress.advance(1, f.size);
      }
    });
    if (retry.length === batch.length) throw new Error('The server rejected a batch without naming a file at fault');
    queue = [...retry, ...queue];
  }
  progress.finish();

  await runManifest('joint-images.csv');
  await runManifest('readings.csv');
  await runManifest('reference.csv');

  const lines = ['kind,source,status,code,reason', ...report.map((r) => [r.kind, r.source, r.status, r.code, r.reason].map(csvCell).join(','))];
  await writeFile(path.join(folder, REPORT_FILE), `${lines.join('\n')}\n`);
  const rejected = report.filter((r) => r.status === 'rejected').length;
  const stored = report.filter((r) => r.status === 'stored').length;
  const skipped = report.filter((r) => r.status === 'skipped').length;
  log(`done: ${stored} stored, ${skipped} skipped (earlier run), ${rejected} rejected; report in ${path.join(folder, REPORT_FILE)}`);
  for (const r of report.filter((x) => x.status === 'rejected')) log(`  rejected ${r.source}: ${r.code} ${r.reason}`);
  return { report, rejected };
}
