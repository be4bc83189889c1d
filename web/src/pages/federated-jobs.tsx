import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQuery, useSubscription } from 'urql';
import {
  CANCEL_FEDERATED_INFERENCE,
  FEDERATED_JOB_PROGRESS,
  FEDERATION_SITE_CODES,
  MODALITIES,
  MODEL_VERSIONS,
  START_FEDERATED_INFERENCE,
  type CancelFederatedInferenceData,
  type FederatedInference,
  type FederatedInferenceSite,
  type FederatedJobProgressData,
  type FederationSiteCodesData,
  type Modality,
  type ModelVersionsData,
  type Role,
  type StartFederatedInferenceData,
} from '../graphql/documents';
import { duration, ErrorNote } from '../ui';

/** Site states after which nothing changes any more (docs/federation.md, section 8). */
const ENDED = new Set(['FINISHED', 'REFUSED', 'FAILED', 'CANCELLED', 'EXPIRED']);

/** Whether a job can still change: running, or cancelled with a site that has not confirmed yet. */
export const stillMoving = (job: FederatedInference): boolean => job.status === 'RUNNING' || job.sites.some((s) => s.state === 'CANCELLING');

/**
 * Of two copies of one job (the list, the subscription, a mutation's answer), the one further along: an ended job
 * never runs again, an ended site never moves again, and counters only grow. Ties go to `a`.
 */
const further = (a: FederatedInference, b: FederatedInference): FederatedInference => {
  const rank = (j: FederatedInference) =>
    (j.status === 'RUNNING' ? 0 : 1e12) + j.sites.filter((s) => ENDED.has(s.state)).length * 1e9 + j.total.done + j.total.failed;
  return rank(a) >= rank(b) ? a : b;
};

const rate = (value: number | null) => (value === null ? '—' : `${value.toFixed(1)}/s`);
const percent = (done: number, failed: number, total: number, ended: boolean) => (total > 0 ? (100 * (done + failed)) / total : ended ? 100 : 0);
const when = (iso: string | null) => (iso ? new Date(iso).toLocaleTimeString() : '—');

function SiteRow({ site }: { site: FederatedInferenceSite }) {
  const ended = ENDED.has(site.state);
  return (
    <tr className="federated-site" data-site={site.site} data-state={site.state}>
      <td className="site-code">{site.site}</td>
      <td title="when the hub last heard from the site about this job">{when(site.updatedAt)}</td>
      <td className={`status status-${site.state.toLowerCase()}`}>{site.state}</td>
      <td className="progress-cell">
        <progress max={100} value={percent(site.done, site.failed, site.total, site.state === 'FINISHED')} aria-label={`progress at ${site.site}`} />
        <span className="counts" data-testid="counts">
          {site.done} done / {site.failed} failed / {site.total}
        </span>
      </td>
      <td>{rate(site.rate)}</td>
      <td>{ended ? '—' : duration(site.etaSeconds)}</td>
      <td>{site.executionProvider ?? site.result?.executionProvider ?? '—'}</td>
      <td data-testid="reason">{site.reason ?? ''}</td>
      <td></td>
    </tr>
  );
}

/**
 * One federated job: its total row and, expanded, a row per site. While it can still change it follows its
 * `federatedJobProgress` subscription, which sends the job at once and after every report, result, deadline or
 * cancellation at any site.
 */
function FederatedJobRows({ listed, canCancel }: { listed: FederatedInference; canCancel: boolean }) {
  const [live] = useSubscription<FederatedJobProgressData>({ query: FEDERATED_JOB_PROGRESS, variables: { id: listed.id }, pause: !stillMoving(listed) });
  const [cancelState, cancel] = useMutation<CancelFederatedInferenceData>(CANCEL_FEDERATED_INFERENCE);
  const [open, setOpen] = useState(listed.status === 'RUNNING');
  let job = listed;
  for (const copy of [live.data?.federatedJobProgress, cancelState.data?.cancelFederatedInference]) if (copy) job = further(copy, job);
  const { total } = job;
  const providers = [...new Set(job.sites.map((s) => s.executionProvider ?? s.result?.executionProvider).filter(Boolean))].join(', ');
  return (
    <tbody data-testid={`fedjob-${job.id}`} data-status={job.status}>
      <tr className="federated-job">
        <td title={job.id}>
          <button className="toggle" aria-expanded={open} data-testid="toggle-sites" onClick={() => setOpen(!open)}>
            {open ? '▾' : '▸'}
          </button>{' '}
          <code>{job.id.slice(0, 8)}</code>
        </td>
        <td title={`sha256 ${job.model.sha256}`}>
          {job.model.name} {job.model.version}
          {job.modalities.length ? ` · ${job.modalities.join(', ')}` : ''}
        </td>
        <td className={`status status-${job.status.toLowerCase()}`}>{job.status}</td>
        <td className="progress-cell">
          <progress max={100} value={percent(total.done, total.failed, total.total, job.status === 'COMPLETE')} aria-label="progress" />
          <span className="counts" data-testid="counts">
            {total.done} done / {total.failed} failed / {total.total}
          </span>
        </td>
        <td>{rate(total.rate)}</td>
        <td>{job.status === 'RUNNING' ? duration(total.etaSeconds) : '—'}</td>
        <td>{providers || '—'}</td>
        <td data-testid="sites-summary">
          {total.finished} of {total.sites} finished{total.ended > total.finished ? `, ${total.ended - total.finished} ended otherwise` : ''}
        </td>
        <td>
          {canCancel && job.status === 'RUNNING' ? (
            <button disabled={cancelState.fetching} onClick={() => void cancel({ id: job.id })}>
              Cancel
            </button>
          ) : null}
          <ErrorNote error={cancelState.error ?? live.error} />
        </td>
      </tr>
      {open ? job.sites.map((site) => <SiteRow key={site.site} site={site} />) : null}
    </tbody>
  );
}

/** The federated jobs of a hub, a tbody per job. */
export function FederatedJobsTable({ jobs, canCancel }: { jobs: FederatedInference[]; canCancel: boolean }) {
  return (
    <table data-testid="federated-jobs-table" className="federated-jobs">
      <thead>
        <tr>
          <th>Job / site</th>
          <th>Model version / last report</th>
          <th>Status</th>
          <th>Progress</th>
          <th>Rate</th>
          <th>ETA</th>
          <th>Provider</th>
          <th>Sites / reason</th>
          <th></th>
        </tr>
      </thead>
      {jobs.map((job) => (
        <FederatedJobRows key={job.id} listed={job} canCancel={canCancel} />
      ))}
    </table>
  );
}

const codesOf = (text: string): string[] => [...new Set(text.split(/[\s,;]+/).filter(Boolean))];

/**
 * Start a federated job: a model version the hub holds (an ONNX file), the member sites (none: every member) and
 * the modalities (none: every modality its manifest preprocesses), as `startFederatedInference` reads them.
 */
export function StartFederatedJob({ role, onStarted }: { role: Role; onStarted: (job: FederatedInference) => void }) {
  const [models] = useQuery<ModelVersionsData>({ query: MODEL_VERSIONS });
  // The registry is the statistician's and admin's to read; an engineer types the codes.
  const [members] = useQuery<FederationSiteCodesData>({ query: FEDERATION_SITE_CODES, pause: role !== 'ADMIN' });
  const runnable = (models.data?.modelVersions.nodes ?? []).filter((m) => m.sha256 !== null);
  const [modelVersionId, setModel] = useState('');
  const [sites, setSites] = useState('');
  const [modalities, setModalities] = useState<Modality[]>([]);
  const [state, start] = useMutation<StartFederatedInferenceData>(START_FEDERATED_INFERENCE);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const chosen = modelVersionId || runnable[0]?.id;
    if (!chosen) return;
    const codes = codesOf(sites);
    const result = await start({ input: { modelVersionId: chosen, sites: codes.length ? codes : null, modalities: modalities.length ? modalities : null } });
    if (result.data) onStarted(result.data.startFederatedInference);
  };
  return (
    <form className="start-job start-federated-job" onSubmit={submit}>
      <h2>Start a federated job</h2>
      <label>
        Model version{' '}
        <select name="federated-model" value={modelVersionId} onChange={(e) => setModel(e.target.value)}>
          {runnable.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name} {m.version}
            </option>
          ))}
        </select>
      </label>
      <label>
        Sites (codes; empty: every member) <input name="federated-sites" value={sites} placeholder="NORTH, SOUTH" onChange={(e) => setSites(e.target.value)} />
      </label>
      {members.data ? <p className="hint">Members: {members.data.federationSites.map((s) => s.code).join(', ')}</p> : null}
      <fieldset>
        <legend>Modalities (none: all the model reads)</legend>
        {MODALITIES.map((m) => (
          <label key={m}>
            <input
              type="checkbox"
              name={`federated-modality-${m}`}
              checked={modalities.includes(m)}
              onChange={() => setModalities(modalities.includes(m) ? modalities.filter((x) => x !== m) : [...modalities, m])}
            />{' '}
            {m}
          </label>
        ))}
      </fieldset>
      <button type="submit" disabled={state.fetching || runnable.length === 0}>
        Start at the sites
      </button>
      {models.data && runnable.length === 0 ? (
        <p className="hint">The hub holds no ONNX model version yet (POST /api/model-versions, docs/models.md).</p>
      ) : null}
      <ErrorNote error={state.error ?? models.error} />
    </form>
  );
}

/** How often the list is read again, so that a job started elsewhere (another tab, curl) appears. */
const LIST_REFRESH_MS = 5000;

/**
 * The hub's dashboard: its federated inference jobs (newest first), each following its own subscription while it
 * moves, and the list read again every few seconds and after a reconnect for the jobs started elsewhere.
 */
export function FederatedJobs({
  jobs,
  role,
  canRun,
  refresh,
  onReconnect,
}: {
  jobs: FederatedInference[];
  role: Role;
  canRun: boolean;
  refresh: () => void;
  onReconnect: (listener: () => void) => () => void;
}) {
  const [started, setStarted] = useState<FederatedInference[]>([]);
  useEffect(() => onReconnect(refresh), [onReconnect, refresh]);
  useEffect(() => {
    const timer = setInterval(refresh, LIST_REFRESH_MS);
    return () => clearInterval(timer);
  }, [refresh]);
  const listed = new Set(jobs.map((j) => j.id));
  const all = [...started.filter((j) => !listed.has(j.id)), ...jobs].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return (
    <>
      {canRun ? (
        <StartFederatedJob
          role={role}
          onStarted={(job) => {
            setStarted((list) => [job, ...list]);
            refresh();
          }}
        />
      ) : null}
      <FederatedJobsTable jobs={all} canCancel={canRun} />
      {all.length === 0 ? <p>No federated job yet.</p> : null}
    </>
  );
}
