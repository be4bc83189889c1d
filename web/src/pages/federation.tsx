import { useCallback, useEffect } from 'react';
import { useQuery, useSubscription } from 'urql';
import type { FacetClient } from '../client';
import { FEDERATED_QUERY_UPDATED, FEDERATION, type FederatedQuery, type FederatedQueryUpdatedData, type FederationData } from '../graphql/documents';
import { ErrorNote } from '../ui';
import { FederatedJobsTable } from './federated-jobs';

const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : '—');

/** One federated query; while it runs, kept current by its `federatedQueryUpdated` subscription. */
function QueryCard({ listed, onUpdate }: { listed: FederatedQuery; onUpdate: () => void }) {
  const [live] = useSubscription<FederatedQueryUpdatedData>({
    query: FEDERATED_QUERY_UPDATED,
    variables: { id: listed.id },
    pause: listed.status !== 'RUNNING',
  });
  // A site that answered has also made contact: the member table is read again.
  useEffect(() => {
    if (live.data) onUpdate();
  }, [live.data, onUpdate]);
  const query = live.data?.federatedQueryUpdated ?? listed;
  return (
    <table className="federated-query" data-testid={`query-${query.id}`} data-status={query.status}>
      <caption>
        {query.kind} · <span className={`status status-${query.status.toLowerCase()}`}>{query.status}</span>
        {query.revision > 1 ? ` · revision ${query.revision}` : ''} · at least {query.minSites} site(s) by {when(query.deadline)} · asked by {query.requestedBy}
      </caption>
      <thead>
        <tr>
          <th>Site</th>
          <th>State</th>
          <th>Claimed</th>
          <th>Settled</th>
          <th>Reason</th>
        </tr>
      </thead>
      <tbody>
        {query.sites.map((s) => (
          <tr key={s.site} data-site={s.site} data-state={s.state}>
            <td>{s.site}</td>
            <td>
              {s.state}
              {s.late ? ' (late)' : ''}
            </td>
            <td>{when(s.claimedAt)}</td>
            <td>{when(s.settledAt)}</td>
            <td>{s.reason ?? query.missing.find((m) => m.site === s.site)?.code ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * A hub's view: its member sites with their last contact, and each federated query with every site's state. On a
 * server that is not a hub the API answers NOT_A_HUB, which the page shows.
 */
export function FederationPage({ client }: { client: FacetClient }) {
  const [{ data, error }, refetch] = useQuery<FederationData>({ query: FEDERATION });
  const reload = useCallback(() => refetch({ requestPolicy: 'network-only' }), [refetch]);
  useEffect(() => client.onReconnect(reload), [client, reload]);
  return (
    <section className="federation">
      <h1>Federation</h1>
      <ErrorNote error={error} />
      {data ? (
        <>
          <table data-testid="federation-sites">
            <caption>Member sites</caption>
            <thead>
              <tr>
                <th>Code</th>
                <th>Name</th>
                <th>Contact</th>
                <th>Key</th>
                <th>Last contact</th>
              </tr>
            </thead>
            <tbody>
              {data.federationSites.map((s) => (
                <tr key={s.code}>
                  <td>{s.code}</td>
                  <td>{s.name}</td>
                  <td>
                    {s.contactName} &lt;{s.contactEmail}&gt;
                  </td>
                  <td>
                    <code>{s.keyId}</code>
                  </td>
                  <td data-testid={`last-contact-${s.code}`}>{s.lastClaimAt ? when(s.lastClaimAt) : 'never'}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Federated queries</h2>
          {data.federatedQueries.length === 0 ? <p>No federated query yet (a statistician starts one: docs/federation.md).</p> : null}
          {data.federatedQueries.map((q) => (
            <QueryCard key={q.id} listed={q} onUpdate={reload} />
          ))}
          <h2>Federated inference</h2>
          <p className="hint">
            Models run at the member sites, each site's state live. An engineer starts and cancels them on the <a href="#/jobs">Jobs</a> page.
          </p>
          {data.federatedInferences.length === 0 ? (
            <p>No federated inference job yet.</p>
          ) : (
            <FederatedJobsTable jobs={data.federatedInferences} canCancel={false} />
          )}
        </>
      ) : null}
    </section>
  );
}
