import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { Provider, useQuery } from 'urql';
import { clearToken, readToken, storeToken } from './auth';
import { createFacetClient, type FacetClient } from './client';
import { VIEWER, type Viewer, type ViewerData } from './graphql/documents';
import { JobsPage } from './pages/jobs';
import { StudyPage } from './pages/study';
import { MetricsPage } from './pages/metrics';
import { UploadPage } from './pages/upload';
import { FederationPage } from './pages/federation';
import { ReadingPage } from './pages/reading';
import { PAGES, mayOpen, type PageId } from './roles';
import { ErrorNote } from './ui';

/** Hash routes (`#/jobs`): the server serves one index.html, and a reload keeps the page. */
function usePage(): PageId | null {
  const read = () => (PAGES.find((p) => `#/${p.id}` === window.location.hash)?.id ?? null) as PageId | null;
  const [page, setPage] = useState(read);
  useEffect(() => {
    const onChange = () => setPage(read());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return page;
}

function SignIn({ onToken }: { onToken: (token: string) => void }) {
  const [value, setValue] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (value.trim()) onToken(value.trim());
  };
  return (
    <main className="sign-in">
      <h1>Facet</h1>
      <form onSubmit={submit}>
        <label>
          API token
          <input name="token" type="password" autoComplete="off" placeholder="fct_…" value={value} onChange={(e) => setValue(e.target.value)} />
        </label>
        <button type="submit">Sign in</button>
      </form>
      <p className="hint">
        Paste a token (<code>npm start</code> prints the admin token; an admin mints others with <code>createApiToken</code>). It is kept in this tab only.
      </p>
    </main>
  );
}

function Shell({ client, onSignOut }: { client: FacetClient; onSignOut: () => void }) {
  const [{ data, error, fetching }] = useQuery<ViewerData>({ query: VIEWER });
  const page = usePage();
  if (fetching && !data) return <p className="loading">Signing in…</p>;
  if (error || !data)
    return (
      <main className="sign-in">
        <ErrorNote error={error} />
        <button onClick={onSignOut}>Use another token</button>
      </main>
    );
  const viewer: Viewer = data.viewer;
  const pages = PAGES.filter((p) => p.roles.includes(viewer.role));
  const current = page ?? pages[0]?.id ?? null;
  return (
    <>
      <header>
        <strong>Facet</strong>
        <nav>
          {pages.map((p) => (
            <a key={p.id} href={`#/${p.id}`} className={p.id === current ? 'active' : undefined}>
              {p.title}
            </a>
          ))}
        </nav>
        <span className="who" data-testid="viewer">
          {viewer.name} · {viewer.role}
        </span>
        <button onClick={onSignOut}>Sign out</button>
      </header>
      <main>
        {current === null ? (
          <p className="refused">No page of this app is open to the {viewer.role} role yet; the API remains at /graphiql.</p>
        ) : !mayOpen(viewer.role, current) ? (
          <p className="refused" data-testid="refused">
            The {viewer.role} role may not open this page.
          </p>
        ) : current === 'jobs' ? (
          <JobsPage viewer={viewer} client={client} />
        ) : current === 'study' ? (
          <StudyPage />
        ) : current === 'metrics' ? (
          <MetricsPage />
        ) : current === 'upload' ? (
          <UploadPage viewer={viewer} />
        ) : current === 'federation' ? (
          <FederationPage client={client} />
        ) : (
          <ReadingPage viewer={viewer} />
        )}
      </main>
    </>
  );
}

export function App() {
  const [token, setToken] = useState(readToken);
  const client = useMemo(() => (token ? createFacetClient(token) : null), [token]);
  useEffect(() => () => void client?.ws.dispose(), [client]);
  if (!token || !client)
    return (
      <SignIn
        onToken={(value) => {
          storeToken(value);
          setToken(value);
        }}
      />
    );
  return (
    <Provider value={client.urql}>
      <Shell
        client={client}
        onSignOut={() => {
          clearToken();
          setToken(null);
        }}
      />
    </Provider>
  );
}
