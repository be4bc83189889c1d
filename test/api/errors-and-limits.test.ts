import express from 'express';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Role } from '../../server/domain';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk, gqlOverWebSocket, type GraphQLResponse } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { TEST_LIMITS } from '../helpers/test-node';
import { webAppRouter } from '../../server/http/web-app';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Nothing that looks like a stack trace, a source path or a stack field. */
function expectNoStack(body: string): void {
  expect(body).not.toMatch(/\n?\s+at [^\n]*[:(][^\n]*\d+:\d+\)?/);
  expect(body).not.toMatch(/&nbsp;at /);
  expect(body).not.toMatch(/node_modules/);
  expect(body).not.toMatch(/\.(ts|js):\d+/);
  expect(body).not.toMatch(/stacktrace/i);
  expect(body).not.toMatch(/"stack"/);
}

function expectNoStackInErrors(response: GraphQLResponse): void {
  expect(response.errors?.length).toBeGreaterThan(0);
  for (const error of response.errors ?? []) {
    expect(error.extensions ?? {}).not.toHaveProperty('stacktrace');
    expect(error.extensions ?? {}).not.toHaveProperty('exception');
    expect(error).not.toHaveProperty('stack');
  }
  expectNoStack(JSON.stringify(response));
}

const propertiesOf = (response: GraphQLResponse): string[] =>
  ((response.errors?.[0]?.extensions?.validationErrors ?? []) as Array<{ property: string }>).map((e) => e.property);

/**
 * Site -> patients -> nodes -> site ... chains, counted as the depth rule counts them (every field one level,
 * fragments followed, inline fragments free). Pages of one keep the estimated cost far below any cost limit.
 */
const SITE_CHAIN_12 = `{ sites(first: 1) { nodes { patients(first: 1) { nodes { site { patients(first: 1) { nodes { site { patients(first: 1) { nodes { site { code } } } } } } } } } } } }`;
const SITE_CHAIN_13 = `{ sites(first: 1) { nodes { patients(first: 1) { nodes { site { patients(first: 1) { nodes { site { patients(first: 1) { nodes { site { patients(first: 1) { totalCount } } } } } } } } } } } } }`;
const FRAGMENTS_13 = `
  query Deep { sites(first: 1) { nodes { ...A } } }
  fragment A on Site { patients(first: 1) { nodes { ...B } } }
  fragment B on Patient { site { patients(first: 1) { nodes { site { ...C } } } } }
  fragment C on Site { patients(first: 1) { nodes { site { ... on Site { patients(first: 1) { totalCount } } } } } }
`;
const FRAGMENTS_12 = `
  query Fine { sites(first: 1) { nodes { ...A } } }
  fragment A on Site { patients(first: 1) { nodes { ...B } } }
  fragment B on Patient { site { patients(first: 1) { nodes { site { ...C } } } } }
  fragment C on Site { patients(first: 1) { nodes { site { ... on Site { code __typename } } } } }
`;
const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`;

describe('errors and limits', () => {
  const node = useTestNode();
  let factory: Factory;
  let admin: string;
  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${node().url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  beforeAll(async () => {
    factory = new Factory(node().services);
    admin = await factory.token(Role.ADMIN);
  });

  describe('query depth', () => {
    it('runs a query exactly at the limit', async () => {
      expect(TEST_LIMITS.maxQueryDepth).toBe(12);
      const data = await gqlOk(node().url, admin, SITE_CHAIN_12);
      expect(data.sites.nodes).toEqual([]);
      expect((await gqlOk(node().url, admin, FRAGMENTS_12)).sites.nodes).toEqual([]);
    });

    it.each([
      ['nested fields', SITE_CHAIN_13],
      ['fragments and an inline fragment', FRAGMENTS_13],
    ])('rejects a query one level too deep through %s before it executes', async (_label, query) => {
      const before = node().queries.count;
      const response = await gql(node().url, null, query);
      expect(codeOf(response)).toBe('QUERY_TOO_COMPLEX');
      expect(response.errors).toHaveLength(1);
      expect(response.errors![0].message).toBe('The query is 13 levels deep; the limit is 12');
      // rejected before execution: no data key at all (not even null), no UNAUTHENTICATED for the missing token, no SQL
      expect(response).not.toHaveProperty('data');
      expect(node().queries.count).toBe(before);
    });

    it('answers a too-deep query with HTTP 400', async () => {
      const response = await post(JSON.stringify({ query: SITE_CHAIN_13 }), { authorization: `Bearer ${admin}` });
      expect(response.status).toBe(400);
      const body = (await response.json()) as GraphQLResponse;
      expect(body.errors?.[0]?.message).toMatch(/limit is 12/);
    });

    it('applies the same limit over graphql-ws', async () => {
      const response = await gqlOverWebSocket(node().url, admin, FRAGMENTS_13);
      expect(codeOf(response)).toBe('QUERY_TOO_COMPLEX');
      expect(response.errors![0].message).toMatch(/limit is 12/);
      expect(response.data ?? null).toBeNull();
    });
  });

  describe('aliases', () => {
    it('allows 30 aliases', async () => {
      const data = await gqlOk(node().url, null, aliases(30));
      expect(Object.keys(data)).toHaveLength(30);
    });

    it('rejects 31 aliases before execution', async () => {
      const response = await gql(node().url, null, aliases(31));
      expect(codeOf(response)).toBe('QUERY_TOO_COMPLEX');
      expect(response.errors).toHaveLength(1);
      expect(response.errors![0].message).toBe('The query uses more than 30 aliases');
      expect(response).not.toHaveProperty('data');
    });

    it('counts aliases across the whole document, fragments included', async () => {
      const query = `query { ...F a0: __typename } fragment F on Query { ${Array.from({ length: 30 }, (_, i) => `f${i}: __typename`).join(' ')} }`;
      expect(codeOf(await gql(node().url, null, query))).toBe('QUERY_TOO_COMPLEX');
    });

    it('rejects 31 aliases over graphql-ws', async () => {
      const response = await gqlOverWebSocket(node().url, null, aliases(31));
      expect(codeOf(response)).toBe('QUERY_TOO_COMPLEX');
    });
  });

  describe('input validation', () => {
    const CREATE_SITE = `mutation ($input: CreateSiteInput!) { createSite(input: $input) { id code } }`;

    it.each([
      ['an empty code', { code: '', name: 'Empty' }, 'code'],
      ['a code with spaces', { code: 'SITE A', name: 'Spaces' }, 'code'],
      ['a code longer than 32 characters', { code: 'X'.repeat(33), name: 'Long' }, 'code'],
      ['an empty name', { code: 'OK1', name: '' }, 'name'],
    ])('rejects createSite with %s as BAD_USER_INPUT naming the property, and stores nothing', async (_label, input, property) => {
      const response = await gql(node().url, admin, CREATE_SITE, { input });
      expect(codeOf(response)).toBe('BAD_USER_INPUT');
      expect(propertiesOf(response)).toContain(property);
      expect(response.data).toBeNull();
      expectNoStackInErrors(response);
      const rows = await node().dataSource.query('SELECT count(*)::int AS n FROM site');
      expect(rows[0].n).toBe(0);
    });

    it.each([
      ['patients(first: 0)', `{ patients(first: 0) { totalCount } }`, 'first'],
      ['patients(first: 501)', `{ patients(first: 501) { totalCount } }`, 'first'],
      ['sites(first: -5)', `{ sites(first: -5) { totalCount } }`, 'first'],
      ['a non-uuid siteId in a patient filter', `{ patients(filter: { siteIds: ["not-a-uuid"] }) { totalCount } }`, 'siteIds'],
      ['a non-uuid patientId in a joint filter', `{ joints(filter: { patientIds: ["42"] }) { totalCount } }`, 'patientIds'],
      ['a non-uuid split version', `{ splitAssignments(filter: { splitVersionId: "v1" }) { totalCount } }`, 'splitVersionId'],
    ])('rejects %s as BAD_USER_INPUT naming the property', async (_label, query, property) => {
      const response = await gql(node().url, admin, query);
      expect(codeOf(response)).toBe('BAD_USER_INPUT');
      expect(propertiesOf(response)).toContain(property);
      expectNoStackInErrors(response);
    });

    it('accepts the page-size bounds 1 and 500', async () => {
      expect((await gqlOk(node().url, admin, `{ patients(first: 1) { totalCount } }`)).patients.totalCount).toBe(0);
      expect((await gqlOk(node().url, admin, `{ patients(first: 500) { totalCount } }`)).patients.totalCount).toBe(0);
    });

    it('reports validation errors in the documented shape: a flat list of { property, constraints: string[] }', async () => {
      const site = await gql(node().url, admin, CREATE_SITE, { input: { code: 'has space', name: 'N' } });
      expect(site.errors?.[0]?.extensions?.validationErrors).toEqual([{ property: 'code', constraints: [expect.stringMatching(/code/)] }]);
      // nested inputs are flattened to dotted paths, and the input is not echoed back
      const split = await gql(node().url, admin, `mutation ($input: CreateSplitVersionInput!) { createSplitVersion(input: $input) { id } }`, {
        input: { name: 'nested', seed: 1, ratios: { train: 1.5, validation: 0, test: 0 } },
      });
      expect(codeOf(split)).toBe('BAD_USER_INPUT');
      expect(propertiesOf(split)).toContain('ratios.train');
      expect(JSON.stringify(split)).not.toMatch(/"target"/);
    });
  });

  describe('pagination cursors', () => {
    it.each(['xyz', '!!!', Buffer.from('not-a-uuid').toString('base64url'), ''])('rejects after: %j with BAD_USER_INPUT', async (after) => {
      const response = await gql(node().url, admin, `query ($after: String) { sites(after: $after) { totalCount } }`, { after });
      if (after === '') {
        // an empty cursor is the same as no cursor
        expect(response.errors).toBeUndefined();
        return;
      }
      expect(codeOf(response)).toBe('BAD_USER_INPUT');
      expect(response.errors![0].extensions).toMatchObject({ argument: 'after' });
      expectNoStackInErrors(response);
    });

    it('rejects a garbage cursor on a patient-level list too', async () => {
      expect(codeOf(await gql(node().url, admin, `{ patients(after: "xyz") { totalCount } }`))).toBe('BAD_USER_INPUT');
    });

    it('accepts a well-formed cursor of a row that does not exist', async () => {
      const after = Buffer.from('00000000-0000-4000-8000-000000000000').toString('base64url');
      const data = await gqlOk(node().url, admin, `query ($after: String) { sites(after: $after) { nodes { id } pageInfo { hasNextPage } } }`, { after });
      expect(data.sites).toEqual({ nodes: [], pageInfo: { hasNextPage: false } });
    });
  });

  describe('no stack traces', () => {
    it.each([
      ['a parse error', '{ sites { ', 'GRAPHQL_PARSE_FAILED'],
      ['an unknown field', '{ nope }', 'GRAPHQL_VALIDATION_FAILED'],
      ['a missing token', '{ sites { totalCount } }', 'UNAUTHENTICATED'],
    ])('in %s', async (_label, query, code) => {
      const response = await gql(node().url, null, query);
      expect(codeOf(response)).toBe(code);
      expectNoStackInErrors(response);
    });

    it('in a NOT_FOUND and a FORBIDDEN error', async () => {
      const notFound = await gql(node().url, admin, `{ site(id: "00000000-0000-4000-8000-000000000000") { id } }`);
      expect(codeOf(notFound)).toBe('NOT_FOUND');
      expectNoStackInErrors(notFound);
      const statistician = await factory.token(Role.STATISTICIAN);
      const forbidden = await gql(node().url, statistician, `{ patients { totalCount } }`);
      expect(codeOf(forbidden)).toBe('FORBIDDEN');
      expectNoStackInErrors(forbidden);
    });

    it('in an invalid variable', async () => {
      const response = await gql(node().url, admin, `query ($f: Int) { sites(first: $f) { totalCount } }`, { f: 'many' });
      expect(codeOf(response)).toBe('BAD_USER_INPUT');
      expectNoStackInErrors(response);
    });

    it('in a request without a query', async () => {
      const response = await post('{}');
      expect(response.status).toBe(400);
      expectNoStack(await response.text());
    });

    it('in a body that is not valid JSON', async () => {
      const response = await post('{"query": ');
      expect(response.status).toBe(400);
      expectNoStack(await response.text());
    });

    it('in a body over the size limit', async () => {
      const response = await post(JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(TEST_LIMITS.maxBodyBytes + 1) } }));
      expect(response.status).toBe(413);
      expectNoStack(await response.text());
    });

    it('on an unknown route', async () => {
      const response = await fetch(`${node().url}/no-such-route`);
      expect(response.status).toBe(404);
      expectNoStack(await response.text());
    });
  });

  describe('HTTP endpoints', () => {
    it('GET /healthz answers 200 {status: ok}', async () => {
      const response = await fetch(`${node().url}/healthz`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: 'ok' });
    });

    it('GET /readyz answers 200 while the database is reachable', async () => {
      const response = await fetch(`${node().url}/readyz`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: 'ready' });
    });

    it('GET /graphiql serves a page that loads only local assets, each of which is served', async () => {
      const response = await fetch(`${node().url}/graphiql`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/text\/html/);
      const html = await response.text();
      expect(html).not.toMatch(/https?:\/\//i);
      expect(html).not.toMatch(/src=["']\/\//);
      const scripts = [...html.matchAll(/<script[^>]*\bsrc=["']([^"']+)["']/g)].map((m) => m[1]);
      const styles = [...html.matchAll(/<link[^>]*\bhref=["']([^"']+)["']/g)].map((m) => m[1]);
      expect(scripts.length).toBeGreaterThanOrEqual(3);
      for (const asset of [...scripts, ...styles]) {
        expect(asset).toMatch(/^\/graphiql\/assets\/[\w.-]+$/);
        const served = await fetch(`${node().url}${asset}`);
        expect(served.status).toBe(200);
        expect(served.headers.get('content-type')).toMatch(asset.endsWith('.css') ? /text\/css/ : /javascript/);
        expect((await served.arrayBuffer()).byteLength).toBeGreaterThan(1000);
      }
    });

    it('serves the web app at / with every asset from this node (npm run build makes it)', async () => {
      const response = await fetch(`${node().url}/`, { redirect: 'manual' });
      expect(response.status).toBe(200);
      const html = await response.text();
      expect(html).not.toMatch(/https?:\/\//i);
      const assets = [...html.matchAll(/<(?:script|link)[^>]*\b(?:src|href)=["']([^"']+)["']/g)].map((m) => m[1]);
      expect(assets.length).toBeGreaterThanOrEqual(2);
      for (const asset of assets) {
        expect(asset).toMatch(/^\/assets\/[\w.-]+$/);
        const served = await fetch(`${node().url}${asset}`);
        expect(served.status).toBe(200);
        const body = await served.text();
        // No font, script or style from outside: a hospital browser has no internet.
        expect(body).not.toMatch(/@import\s+url\(\s*["']?https?:|fonts\.googleapis|cdn\.jsdelivr|unpkg\.com/);
      }
      expect((await fetch(`${node().url}/assets/missing.js`)).status).toBe(404);
    });

    it('redirects / to /graphiql where the web app is not built', async () => {
      const router = webAppRouter(path.join(os.tmpdir(), 'facet-no-web-build'));
      const app = express().use(router);
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      try {
        const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { redirect: 'manual' });
        expect(response.status).toBe(302);
        expect(response.headers.get('location')).toBe('/graphiql');
      } finally {
        server.close();
      }
    });

    it('answers 404 for an unknown GraphiQL asset', async () => {
      expect((await fetch(`${node().url}/graphiql/assets/evil.js`)).status).toBe(404);
    });

    it('does not announce the framework', async () => {
      expect((await fetch(`${node().url}/healthz`)).headers.get('x-powered-by')).toBeNull();
    });
  });

  describe('CSRF prevention', () => {
    const getUrl = (query: string) => `${node().url}/graphql?query=${encodeURIComponent(query)}`;

    it('refuses a simple GET /graphql?query=… with 400 BAD_REQUEST', async () => {
      const response = await fetch(getUrl('{ __typename }'));
      expect(response.status).toBe(400);
      const body = (await response.json()) as GraphQLResponse;
      expect(codeOf(body)).toBe('BAD_REQUEST');
      expect(body.errors![0].message).toMatch(/Cross-Site Request Forgery/);
      expect(body.errors![0].message).toMatch(/apollo-require-preflight/);
      expect(body).not.toHaveProperty('data');
    });

    it('refuses a POST with a simple content type', async () => {
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const response = await fetch(`${node().url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': contentType },
          body: JSON.stringify({ query: '{ __typename }' }),
        });
        expect(response.status).toBe(400);
      }
    });

    it('allows the GET with the apollo-require-preflight header or a JSON content type', async () => {
      for (const headers of [{ 'apollo-require-preflight': 'true' }, { 'content-type': 'application/json' }] as Array<Record<string, string>>) {
        const response = await fetch(getUrl('{ __typename }'), { headers });
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
      }
    });

    it('never runs a mutation over GET', async () => {
      const mutation = `mutation { createSite(input: { code: "VIA_GET", name: "x" }) { id } }`;
      const response = await fetch(getUrl(mutation), { headers: { 'apollo-require-preflight': 'true', authorization: `Bearer ${admin}` } });
      expect(response.status).toBe(405);
      const rows = await node().dataSource.query(`SELECT count(*)::int AS n FROM site WHERE code = 'VIA_GET'`);
      expect(rows[0].n).toBe(0);
    });
  });
});

describe('pagination', () => {
  const node = useTestNode();
  let token: string;
  const ids: string[] = [];

  beforeAll(async () => {
    const factory = new Factory(node().services);
    token = await factory.token(Role.STATISTICIAN);
    for (let i = 0; i < 5; i++) ids.push((await factory.site()).id);
  });

  const PAGE = `query ($first: Int, $after: String) { sites(first: $first, after: $after) { totalCount pageInfo { endCursor hasNextPage } nodes { id code } } }`;

  it('pages through 5 sites two at a time without duplicates or gaps', async () => {
    const seen: string[] = [];
    const sizes: number[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const data: Record<string, any> = await gqlOk(node().url, token, PAGE, { first: 2, after });
      const { totalCount, pageInfo, nodes } = data.sites;
      expect(totalCount).toBe(5);
      sizes.push(nodes.length);
      seen.push(...nodes.map((n: { id: string }) => n.id));
      if (!pageInfo.hasNextPage) break;
      expect(pageInfo.endCursor).toEqual(expect.any(String));
      after = pageInfo.endCursor;
    }
    expect(sizes).toEqual([2, 2, 1]);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...ids].sort());
  });

  it('gives one full page without a next page when first covers everything', async () => {
    const data = await gqlOk(node().url, token, PAGE, { first: 5 });
    expect(data.sites.nodes).toHaveLength(5);
    expect(data.sites.pageInfo.hasNextPage).toBe(false);
    const page = await gqlOk(node().url, token, PAGE, { first: 4 });
    expect(page.sites.pageInfo.hasNextPage).toBe(true);
  });

  it('answers an empty page after the last cursor', async () => {
    const all = await gqlOk(node().url, token, PAGE, { first: 5 });
    const after = all.sites.pageInfo.endCursor;
    const data = await gqlOk(node().url, token, PAGE, { first: 2, after });
    expect(data.sites).toEqual({ totalCount: 5, pageInfo: { endCursor: null, hasNextPage: false }, nodes: [] });
  });

  it('keeps its place when a row is added between pages', async () => {
    const first = await gqlOk(node().url, token, PAGE, { first: 3 });
    const seen = first.sites.nodes.map((n: { id: string }) => n.id);
    const added = await new Factory(node().services).site('ADDED');
    let after: string | null = first.sites.pageInfo.endCursor;
    while (after) {
      const data = await gqlOk(node().url, token, PAGE, { first: 3, after });
      seen.push(...data.sites.nodes.map((n: { id: string }) => n.id));
      after = data.sites.pageInfo.hasNextPage ? data.sites.pageInfo.endCursor : null;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].filter((id: string) => id !== added.id).sort()).toEqual([...ids].sort());
    // keyset on the id: the new row shows up on a later page exactly when its id sorts after the cursor
    const cursorId = first.sites.nodes[2].id as string;
    expect(seen.includes(added.id)).toBe(added.id > cursorId);
    expect((await gqlOk(node().url, token, PAGE, { first: 1 })).sites.totalCount).toBe(6);
  });
});

describe('unexpected server failures', () => {
  const node = useTestNode();
  let admin: string;

  beforeAll(async () => {
    admin = await new Factory(node().services).token(Role.ADMIN);
  });

  /** Runs `fn` while the site table is renamed away, then puts it back. */
  async function withSiteTableGone<T>(fn: () => Promise<T>): Promise<T> {
    await node().dataSource.query('ALTER TABLE site RENAME TO site_gone');
    try {
      return await fn();
    } finally {
      await node().dataSource.query('ALTER TABLE site_gone RENAME TO site');
    }
  }

  function expectMasked(error: { message: string; extensions?: Record<string, any> } | undefined): void {
    expect(error?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(error?.message).toBe('Internal server error');
    for (const leak of [/site_gone/, /\bsite\b/, /relation/i, /does not exist/, /select/i, /QueryFailed/, /postgres/i])
      expect(error?.message).not.toMatch(leak);
    expect(Object.keys(error?.extensions ?? {}).sort()).toEqual(expect.arrayContaining(['code']));
    expect(error?.extensions).not.toHaveProperty('stacktrace');
    expect(error?.extensions).not.toHaveProperty('exception');
  }

  it('masks a database failure as INTERNAL_SERVER_ERROR with a request id and logs it under that id', async () => {
    const lines: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    let response: Response;
    let text: string;
    try {
      ({ response, text } = await withSiteTableGone(async () => {
        const r = await fetch(`${node().url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
          body: JSON.stringify({ query: '{ sites { totalCount } }' }),
        });
        return { response: r, text: await r.text() };
      }));
    } finally {
      spy.mockRestore();
    }
    const body = JSON.parse(text) as GraphQLResponse;
    expect(body.data).toBeNull();
    expect(body.errors).toHaveLength(1);
    expectMasked(body.errors![0]);
    const requestId = body.errors![0].extensions!.requestId;
    expect(requestId).toMatch(UUID);
    expect(response.headers.get('x-request-id')).toBe(requestId);
    expect(text).not.toMatch(/site_gone|relation|does not exist|SELECT/i);
    expectNoStack(text);

    const logged = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, any>];
        } catch {
          return [];
        }
      });
    const entry = logged.find((e) => e.requestId === requestId);
    expect(entry).toMatchObject({ level: 'error' });
    expect(JSON.stringify(entry)).toMatch(/site/);
  });

  it.each([
    ['a trace id', 'trace-1234'],
    ['a uuid the client made up', '00000000-0000-4000-8000-000000000000'],
    ['an over-long header', 'x'.repeat(200)],
  ])('keeps its own request id when the caller sends %s as x-request-id', async (_label, header) => {
    const { body, response } = await withSiteTableGone(async () => {
      const r = await fetch(`${node().url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}`, 'x-request-id': header },
        body: JSON.stringify({ query: '{ sites { totalCount } }' }),
      });
      return { response: r, body: (await r.json()) as GraphQLResponse };
    });
    expectMasked(body.errors?.[0]);
    const requestId = body.errors![0].extensions!.requestId;
    expect(requestId).toMatch(UUID);
    expect(requestId).not.toBe(header);
    expect(response.headers.get('x-request-id')).toBe(requestId);
  });

  it('masks a failing mutation the same way', async () => {
    const response = await withSiteTableGone(() => gql(node().url, admin, `mutation { createSite(input: { code: "S1", name: "one" }) { id } }`));
    expectMasked(response.errors?.[0]);
    expect(response.errors![0].extensions!.requestId).toMatch(UUID);
  });

  it('masks it over graphql-ws too', async () => {
    const response = await withSiteTableGone(() => gqlOverWebSocket(node().url, admin, '{ sites { totalCount } }'));
    expectMasked(response.errors?.[0]);
    expectNoStack(JSON.stringify(response));
  });

  it('works again once the table is back', async () => {
    expect((await gqlOk(node().url, admin, '{ sites { totalCount } }')).sites.totalCount).toBe(0);
    expect((await fetch(`${node().url}/readyz`)).status).toBe(200);
  });
});
