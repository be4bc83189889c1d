/**
 * A coordinator's cohort upload from the browser, by the CLI's rules (`facet upload`, docs/ingest.md): patients.csv
 * first, then the DICOM by STOW-RS in batches, then joint-images.csv, readings.csv and reference.csv. A batch lands
 * whole or not at all: its files at fault are reported and the others sent again. What landed is remembered in
 * localStorage (per server and site), so after a reload the same folder sends only the rest.
 */

export interface UploadFile {
  /** Path inside the chosen folder (`CT/IM0001.dcm`). */
  path: string;
  file: File;
}

export interface ReportLine {
  kind: 'dicom' | 'patients' | 'joint-images' | 'readings' | 'reference';
  source: string;
  status: 'stored' | 'rejected' | 'skipped';
  code: string;
  reason: string;
}

export interface UploadProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  step: string;
}

interface State {
  stored: Record<string, { size: number; lastModified: number }>;
  manifests: Record<string, string>;
}

type ManifestName = 'patients.csv' | 'joint-images.csv' | 'readings.csv' | 'reference.csv';
/** The CLI's defaults (`--batch-files`, `--batch-mb`). */
export const BATCH_FILES = 20;
export const BATCH_BYTES = 32 * 1024 * 1024;
/** Files that are never DICOM candidates (DICOMDIR is a media directory, not an image), as the CLI skips them. */
const NOT_DICOM = /(\.(csv|txt|md|json|pdf|xml|html?)$|(^|\/)DICOMDIR$)/i;

/** A 53-bit string hash (cyrb53): whether a manifest changed since it was stored. crypto.subtle needs https. */
function contentHash(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return `${text.length}:${(4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16)}`;
}

/** The files chosen with the folder picker, their paths below the chosen folder. */
export function folderFiles(files: FileList | File[]): UploadFile[] {
  return cohortFiles(
    [...files].map((file) => ({
      file,
      path: (file.webkitRelativePath || file.name)
        .split('/')
        .slice(file.webkitRelativePath ? 1 : 0)
        .join('/'),
    })),
  );
}

/** Without hidden files (a leading dot in any part of the path), sorted like the CLI's walk. */
function cohortFiles(files: UploadFile[]): UploadFile[] {
  return files
    .filter((f) => f.path && !f.path.split('/').some((part) => part.startsWith('.')))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A dropped folder's entries; readEntries answers in chunks (100 in Chromium) until it answers none. */
async function children(folder: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = folder.createReader();
  const all: FileSystemEntry[] = [];
  for (;;) {
    const chunk = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (chunk.length === 0) return all;
    all.push(...chunk);
  }
}

/** Every file under a dropped entry, its path prefixed by `prefix` (the folders between the cohort folder and it). */
async function entryFiles(entry: FileSystemEntry, prefix: string): Promise<UploadFile[]> {
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isFile) return [{ path, file: await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject)) }];
  const nested = await Promise.all((await children(entry as FileSystemDirectoryEntry)).map((child) => entryFiles(child, path)));
  return nested.flat();
}

/** What was dropped: a single folder is the cohort folder (paths below it, as with the picker); otherwise the items themselves. */
export async function droppedFiles(items: DataTransferItemList): Promise<UploadFile[]> {
  const dropped = [...items].filter((item) => item.kind === 'file');
  const entries = dropped.map((item) => item.webkitGetAsEntry()).filter((entry): entry is FileSystemEntry => entry !== null);
  // Without entries (a browser that gives none, a drop made by a script) the dropped files themselves.
  if (entries.length === 0)
    return cohortFiles(dropped.flatMap((item) => (item.getAsFile() ? [{ file: item.getAsFile()!, path: item.getAsFile()!.name }] : [])));
  const top = entries.length === 1 && entries[0].isDirectory ? await children(entries[0] as FileSystemDirectoryEntry) : entries;
  return cohortFiles((await Promise.all(top.map((entry) => entryFiles(entry, '')))).flat());
}

export interface UploadContext {
  origin: string;
  token: string;
  site: { id: string; code: string };
  onProgress: (progress: UploadProgress) => void;
}

async function graphql<T>(context: UploadContext, query: string, variables: Record<string, unknown>): Promise<T> {
  const response = await fetch(`${context.origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${context.token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  if (body.errors?.length) throw new Error(`${body.errors[0].extensions?.code ?? 'ERROR'}: ${body.errors[0].message}`);
  return body.data as T;
}

async function stowBatch(context: UploadContext, files: File[]): Promise<{ status: number; failures: Map<number, { code: string; reason: string }> }> {
  const boundary = `facet-${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
  const parts: BlobPart[] = [];
  for (const file of files) parts.push(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, file, '\r\n');
  parts.push(`--${boundary}--\r\n`);
  const response = await fetch(`${context.origin}/dicomweb/studies?site=${encodeURIComponent(context.site.code)}`, {
    method: 'POST',
    headers: {
      'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      accept: 'application/dicom+json',
      authorization: `Bearer ${context.token}`,
    },
    body: new Blob(parts),
  });
  const text = await response.text();
  if (response.status !== 200 && response.status !== 202 && response.status !== 409)
    throw new Error(`STOW-RS answered ${response.status}: ${text.slice(0, 300)}`);
  const failures = new Map<number, { code: string; reason: string }>();
  const failed = (JSON.parse(text || '{}')['00081198']?.Value ?? []) as Array<Record<string, { Value?: string[] }>>;
  for (const item of failed) {
    const match = /^(\w+) part (\d+): (.*)$/.exec(String(item['00000902']?.Value?.[0] ?? ''));
    if (match) failures.set(Number(match[2]) - 1, { code: match[1], reason: match[3] });
  }
  return { status: response.status, failures };
}

const stateKey = (context: UploadContext) => `facet.upload.${context.origin}.${context.site.code}`;

export async function uploadFolder(context: UploadContext, files: UploadFile[]): Promise<ReportLine[]> {
  const saved = localStorage.getItem(stateKey(context));
  const state: State = saved ? (JSON.parse(saved) as State) : { stored: {}, manifests: {} };
  const save = () => localStorage.setItem(stateKey(context), JSON.stringify(state));
  const report: ReportLine[] = [];
  const manifest = (name: ManifestName) => files.find((f) => (f.path.split('/').pop() ?? '').toLowerCase() === name);
  const candidates = files.filter((f) => !NOT_DICOM.test(f.path));
  const pending = candidates.filter((f) => {
    const known = state.stored[f.path];
    const done = known && known.size === f.file.size && known.lastModified === f.file.lastModified;
    if (done) report.push({ kind: 'dicom', source: f.path, status: 'skipped', code: '', reason: 'stored by an earlier upload' });
    return !done;
  });
  const progress: UploadProgress = {
    filesDone: 0,
    filesTotal: pending.length,
    bytesDone: 0,
    bytesTotal: pending.reduce((s, f) => s + f.file.size, 0),
    step: '',
  };
  const tell = (step: string) => context.onProgress({ ...progress, step });

  const runManifest = async (name: ManifestName) => {
    const found = manifest(name);
    if (!found) return;
    const kind = name.replace('.csv', '') as ReportLine['kind'];
    const csv = await found.file.text();
    const digest = contentHash(csv);
    if (state.manifests[found.path] === digest) {
      report.push({ kind, source: found.path, status: 'skipped', code: '', reason: 'stored by an earlier upload' });
      return;
    }
    tell(found.path);
    // The patients and reference files name their sites in a column; the others belong to the upload's site.
    const mutation =
      name === 'patients.csv'
        ? 'mutation ($csv: String!) { result: importPatientsManifest(csv: $csv) { stored rows rejected { source code reason } } }'
        : name === 'reference.csv'
          ? 'mutation ($csv: String!) { result: importReferenceStandard(csv: $csv) { stored rows rejected { source code reason } } }'
          : `mutation ($site: ID!, $csv: String!) { result: ${name === 'readings.csv' ? 'importReadingsManifest' : 'importJointImagesManifest'}(siteId: $site, csv: $csv) { stored rows rejected { source code reason } } }`;
    const { result } = await graphql<{ result: { stored: boolean; rows: number; rejected: Array<{ source: string; code: string; reason: string }> } }>(
      context,
      mutation,
      name === 'patients.csv' || name === 'reference.csv' ? { csv } : { csv, site: context.site.id },
    );
    if (result.stored) {
      state.manifests[found.path] = digest;
      save();
      report.push({ kind, source: found.path, status: 'stored', code: '', reason: `${result.rows} rows` });
    } else {
      for (const r of result.rejected) report.push({ kind, source: `${found.path} ${r.source}`, status: 'rejected', code: r.code, reason: r.reason });
    }
  };

  await runManifest('patients.csv');
  let queue = [...pending];
  while (queue.length) {
    const batch: UploadFile[] = [];
    let bytes = 0;
    while (queue.length && batch.length < BATCH_FILES && (batch.length === 0 || bytes + queue[0].file.size <= BATCH_BYTES)) {
      const next = queue.shift()!;
      batch.push(next);
      bytes += next.file.size;
    }
    tell(`DICOM ${progress.filesDone + 1}–${progress.filesDone + batch.length} of ${progress.filesTotal}`);
    const answer = await stowBatch(
      context,
      batch.map((f) => f.file),
    );
    if (answer.status !== 409) {
      for (const f of batch) {
        state.stored[f.path] = { size: f.file.size, lastModified: f.file.lastModified };
        report.push({ kind: 'dicom', source: f.path, status: 'stored', code: '', reason: '' });
      }
      save();
      progress.filesDone += batch.length;
      progress.bytesDone += bytes;
      continue;
    }
    // A batch lands whole or not at all: report the files at fault, send the innocent ones again.
    const retry: UploadFile[] = [];
    batch.forEach((f, i) => {
      const failure = answer.failures.get(i) ?? { code: 'REJECTED', reason: 'rejected without a reason' };
      if (failure.code === 'BATCH_REJECTED') retry.push(f);
      else {
        report.push({ kind: 'dicom', source: f.path, status: 'rejected', code: failure.code, reason: failure.reason });
        progress.filesDone += 1;
        progress.bytesDone += f.file.size;
      }
    });
    if (retry.length === batch.length) throw new Error('The server rejected a batch without naming a file at fault');
    queue = [...retry, ...queue];
  }
  await runManifest('joint-images.csv');
  await runManifest('readings.csv');
  await runManifest('reference.csv');
  tell('done');
  return report;
}
