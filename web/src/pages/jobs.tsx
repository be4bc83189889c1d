import { useCallback, useEffect, useMemo, useState, type FormEvent } from 'react';
import { useMutation, useQuery, useSubscription } from 'urql';
import type { FacetClient } from '../client';
import {
  CANCEL_JOB,
  FEDERATED_INFERENCES,
  JOBS,
  JOBS_LIVE,
  MODALITIES,
  SITES,
  START_JOB,
  type CancelJobData,
  type FederatedInference,
  type FederatedInferencesData,
  type Job,
  type JobsData,
  type JobsLiveData,
  type Modality,
  type SitesData,
  type StartJobData,
  type Viewer,
} from '../graphql/documents';
import { mayRunJobs } from '../roles';
import { FederatedJobs } from './federated-jobs';
import { duration, ErrorNote } from '../ui';

const ACTIVE = new Set(['QUEUED', 'RUNNING']);

/** Of two states of one job, the later: an ended job never goes back to running, and progress only grows. */
const later = (a: Job, b: Job): boolean =>
  ACTIVE.has(a.status) !== ACTIVE.has(b.status)
    ? !ACTIVE.has(a.status)
    : a.done + a.failed + (a.status === 'RUNNING' ? 0.5 : 0) >= b.done + b.failed + (b.status === 'RUNNING' ? 0.5 : 0);

function JobRow({ job, modelName, canCancel }: { job: Job; modelName: string; canCancel: boolean }) {
  const [cancelState, cancel] = useMutation<CancelJobData>(CANCEL_JOB);
  const processed = job.done + job.failed;
  const percent = job.total > 0 ? (100 * processed) / job.total : job.status === 'SUCCEEDED' ? 100 : 0;
  return (
    <tr data-testid={`job-${job.id}`} data-status={job.status}>
      <td title={job.id}>
        <code>{job.id.slice(0, 8)}</code>
      </td>
      <td>{modelName}</td>
      <td className={`status status-${job.status.toLowerCase()}`}>{job.status}</td>
      <td className="progress-cell">
        <progress max={100} value={percent} aria-label="progress" />
        <span className="counts" data-testid="counts">
          {job.done} done / {job.failed} failed / {job.total}
        </span>
      </td>
      <td>{job.rate === null ? '—' : `${job.rate.toFixed(1)}/s`}</td>
      <td>{ACTIVE.has(job.status) ? duration(job.etaSeconds) : '—'}</td>
      <td>{job.provider ?? '—'}</td>
      <td>
        {canCancel && ACTIVE.has(job.status) ? (
          <button disabled={cancelState.fetching} onClick={() => void cancel({ id: job.id })}>
            Cancel
          </button>
        ) : null}
        {job.error ? <span className="error">{job.error}</span> : null}
        <ErrorNote error={cancelState.error} />
      </td>
    </tr>
  );
}

function StartJob({ models, onStarted }: { models: JobsData['modelVersions']['nodes']; onStarted: (job: Job) => void }) {
  const [sites] = useQuery<SitesData>({ query: SITES });
  const runnable = models.filter((m) => m.sha256 !== null);
  const [modelVersionId, setModel] = useState('');
  const [siteIds, setSiteIds] = useState<string[]>([]);
  const [modalities, setModalities] = useState<Modality[]>([]);
  const [state, start] = useMutation<StartJobData>(START_JOB);
  const toggle = <T,>(list: T[], value: T) => (list.includes(value) ? list.filter((v) => v !== value) : [...list, value]);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const chosen = modelVersionId || runnable[0]?.id;
    if (!chosen) return;
    // An empty choice means every site (modality) in the token's scope, as the API reads a missing list.
    const result = await start({ modelVersionId: chosen, siteIds: siteIds.length ? siteIds : null, modalities: modalities.length ? modalities : null });
    if (result.data) onStarted(result.data.startInferenceJob);
  };
  return (
    <form className="start-job" onSubmit={submit}>
      <h2>Start a job</h2>
      <label>
        Model version{' '}
        <select name="model" value={modelVersionId} onChange={(e) => setModel(e.target.value)}>
          {runnable.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name} {m.version}
            </option>
          ))}
        </select>
      </label>
      <fieldset>
        <legend>Sites (none: all)</legend>
        {(sites.data?.sites.nodes ?? []).map((site) => (
          <label key={site.id}>
            <input type="checkbox" checked={siteIds.includes(site.id)} onChange={() => setSiteIds(toggle(siteIds, site.id))} /> {site.code}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>Modalities (none: all)</legend>
        {MODALITIES.map((m) => (
          <label key={m}>
            <input type="checkbox" checked={modalities.includes(m)} onChange={() => setModalities(toggle(modalities, m))} /> {m}
          </label>
        ))}
      </fieldset>
      <button type="submit" disabled={state.fetching || runnable.length === 0}>
        Start
      </button>
      <ErrorNote error={state.error} />
    </form>
  );
}

/**
 * Every job the token may list (the `jobs` query), kept current by the `jobs` subscription: it sends the queued and
 * running jobs at once and then every change. When the socket comes back after a server restart the list is fetched
 * again, so a job that ended during the outage shows its end.
 */
function LocalJobs({ viewer, client }: { viewer: Viewer; client: FacetClient }) {
  const [list, refetch] = useQuery<JobsData>({ query: JOBS });
  const [started, setStarted] = useState<Job[]>([]);
  const [live] = useSubscription<JobsLiveData, Map<string, Job>>({ query: JOBS_LIVE, variables: { siteId: viewer.siteId } }, (seen, event) =>
    new Map(seen ?? []).set(event.jobs.id, event.jobs),
  );
  useEffect(() => client.onReconnect(() => refetch({ requestPolicy: 'network-only' })), [client, refetch]);
  const jobs = useMemo(() => {
    const byId = new Map<string, Job>();
    for (const job of [...started, ...(list.data?.jobs.nodes ?? []), ...(live.data?.values() ?? [])]) {
      const known = byId.get(job.id);
      if (!known || later(job, known)) byId.set(job.id, job);
    }
    return [...byId.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }, [started, list.data, live.data]);
  const models = list.data?.modelVersions.nodes ?? [];
  const modelName = (id: string) => {
    const model = models.find((m) => m.id === id);
    return model ? `${model.name} ${model.version}` : id.slice(0, 8);
  };
  const canRun = mayRunJobs(viewer.role);
  return (
    <>
      <ErrorNote error={list.error} />
      {canRun ? <StartJob models={models} onStarted={(job) => setStarted((jobs) => [job, ...jobs])} /> : null}
      <table data-testid="jobs-table">
        <thead>
          <tr>
            <th>Job</th>
            <th>Model version</th>
            <th>Status</th>
            <th>Progress</th>
            <th>Rate</th>
            <th>ETA</th>
            <th>Provider</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <JobRow key={job.id} job={job} modelName={modelName(job.modelVersionId)} canCancel={canRun} />
          ))}
        </tbody>
      </table>
      {list.data && jobs.length === 0 ? <p>No jobs yet.</p> : null}
    </>
  );
}

/**
 * The jobs dashboard. A hub runs no job of its own (it holds no images): there the page shows its federated jobs,
 * each with a row per site. The page asks for those first; a server that is not a hub answers NOT_A_HUB, as the
 * federation page learns it, and the page shows the server's own jobs instead.
 */
export function JobsPage({ viewer, client }: { viewer: Viewer; client: FacetClient }) {
  const [federated, refetch] = useQuery<FederatedInferencesData>({ query: FEDERATED_INFERENCES });
  const refresh = useCallback(() => refetch({ requestPolicy: 'network-only' }), [refetch]);
  // The last list read: a failed refresh (the network, a restart) shows its error above it instead of blanking it.
  const [known, setKnown] = useState<FederatedInference[] | null>(null);
  useEffect(() => {
    if (federated.data) setKnown(federated.data.federatedInferences);
  }, [federated.data]);
  const notAHub = federated.error?.graphQLErrors.some((e) => e.extensions?.code === 'NOT_A_HUB') ?? false;
  return (
    <section className="jobs">
      <h1>{known ? 'Federated inference jobs' : 'Inference jobs'}</h1>
      {notAHub ? null : <ErrorNote error={federated.error} />}
      {notAHub ? (
        <LocalJobs viewer={viewer} client={client} />
      ) : known ? (
        <FederatedJobs jobs={known} role={viewer.role} canRun={mayRunJobs(viewer.role)} refresh={refresh} onReconnect={client.onReconnect} />
      ) : null}
    </section>
  );
}
