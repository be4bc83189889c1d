import { useState } from 'react';
import { useQuery } from 'urql';
import { readToken } from '../auth';
import { downloadCsv } from '../export';
import { SITES, type SitesData, type Viewer } from '../graphql/documents';
import { droppedFiles, folderFiles, uploadFolder, type ReportLine, type UploadFile, type UploadProgress } from '../upload';

/**
 * A coordinator's upload of a cohort folder (DICOM and the manifests), by the CLI's rules: the same order, batches,
 * per-file and per-row report, and a second upload of the same folder after a reload sends only the rest.
 */
export function UploadPage({ viewer }: { viewer: Viewer }) {
  const [sites] = useQuery<SitesData>({ query: SITES });
  const [siteId, setSiteId] = useState(viewer.siteId ?? '');
  const [files, setFiles] = useState<UploadFile[]>([]);
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const [report, setReport] = useState<ReportLine[] | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [running, setRunning] = useState(false);
  const [dragging, setDragging] = useState(false);
  const choices = (sites.data?.sites.nodes ?? []).filter((s) => !viewer.siteId || s.id === viewer.siteId);
  const site = choices.find((s) => s.id === (siteId || choices[0]?.id));
  const start = async () => {
    const token = readToken();
    if (!site || !token) return;
    setRunning(true);
    setReport(null);
    setFailure(null);
    try {
      setReport(await uploadFolder({ origin: window.location.origin, token, site, onProgress: setProgress }, files));
    } catch (error) {
      setFailure(error instanceof Error ? error.message : String(error));
    } finally {
      setRunning(false);
    }
  };
  const count = (status: ReportLine['status']) => report?.filter((r) => r.status === status).length ?? 0;
  return (
    <section className="upload">
      <h1>Upload</h1>
      <p className="hint">
        Choose the cohort folder: DICOM files in any structure and up to four manifests, <code>patients.csv</code> (sent first), <code>joint-images.csv</code>,{' '}
        <code>readings.csv</code> and <code>reference.csv</code> (after the DICOM, in that order), as docs/ingest.md describes.
      </p>
      <div
        className={`upload-form${dragging ? ' dragging' : ''}`}
        data-testid="drop-zone"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void droppedFiles(e.dataTransfer.items).then(setFiles);
        }}
      >
        <span>Drop the folder here, or choose it:</span>
        {viewer.siteId ? null : (
          <label>
            Site{' '}
            <select name="site" value={site?.id ?? ''} onChange={(e) => setSiteId(e.target.value)}>
              {choices.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.code}
                </option>
              ))}
            </select>
          </label>
        )}
        <input
          type="file"
          name="folder"
          multiple
          // A folder picker: Chromium, Firefox and Safari all read this attribute.
          {...{ webkitdirectory: '' }}
          onChange={(e) => setFiles(e.target.files ? folderFiles(e.target.files) : [])}
        />
        <span data-testid="chosen">{files.length} file(s)</span>
        <button type="button" disabled={running || files.length === 0 || !site} onClick={() => void start()}>
          Upload to {site?.code ?? '…'}
        </button>
      </div>
      {progress ? (
        <p className="upload-progress">
          <progress max={Math.max(progress.bytesTotal, 1)} value={progress.bytesTotal ? progress.bytesDone : 1} aria-label="upload progress" />{' '}
          <span data-testid="upload-step">
            {progress.filesDone} / {progress.filesTotal} DICOM file(s) · {progress.step}
          </span>
        </p>
      ) : null}
      {failure ? (
        <p className="error" role="alert">
          {failure}
        </p>
      ) : null}
      {report ? (
        <>
          <p data-testid="upload-summary">
            {count('stored')} stored, {count('skipped')} skipped (an earlier upload), {count('rejected')} rejected.{' '}
            <button
              type="button"
              onClick={() =>
                downloadCsv(
                  'facet-upload-report.csv',
                  ['kind', 'source', 'status', 'code', 'reason'],
                  report.map((r) => [r.kind, r.source, r.status, r.code, r.reason]),
                )
              }
            >
              Report CSV
            </button>
          </p>
          <table data-testid="upload-report">
            <thead>
              <tr>
                <th>kind</th>
                <th>source</th>
                <th>status</th>
                <th>code</th>
                <th>reason</th>
              </tr>
            </thead>
            <tbody>
              {report.map((r, i) => (
                <tr key={i} data-status={r.status}>
                  <td>{r.kind}</td>
                  <td>{r.source}</td>
                  <td className={r.status === 'rejected' ? 'error' : undefined}>{r.status}</td>
                  <td>{r.code}</td>
                  <td>{r.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </section>
  );
}
