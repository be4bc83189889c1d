import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { Role } from '../../server/domain';
import { JOB_PROGRESS } from '../../server/pubsub/topics';
import { Factory } from '../helpers/factories';
import { gqlOk, gqlOverWebSocket, subscribe, type GraphQLResponse } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { withTestTopics } from '../helpers/test-topics';
import { multipartRelated } from '../helpers/stow';
import { adminUrl } from '../helpers/test-db';

/** What a client must never see of an outage: the driver's or PostgreSQL's words, SQLSTATEs, database names. */
const RAW =
  /accepting connections|terminat|ECONNREFUSED|ECONNRESET|57P01|55000|facet_t_|administrator|Connection terminated|postgres|QueryFailed|\bat \S+:\d+/i;

function expectUnavailable(text: string): void {
  const body = JSON.parse(text) as GraphQLResponse;
  expect(body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
  expect(body.errors?.[0]?.extensions?.retryAfterSeconds).toBe(5);
  expect(text).not.toMatch(RAW);
}

async function expect503(response: Response): Promise<void> {
  const text = await response.text();
  expect(response.status).toBe(503);
  expect(response.headers.get('retry-after')).toBe('5');
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expectUnavailable(text);
}

describe('a database that is unavailable', () => {
  // Before the node's own afterAll (hooks run in the order declared), which drops the database.
  afterAll(async () => {
    await server?.query(`ALTER DATABASE ${node().database.name} ALLOW_CONNECTIONS true`);
    await control?.end();
    await server?.end();
  });
  const node = useTestNode();
  let admin: string;
  let coordinator: string;
  let engineer: string;
  /** A connection of the test's own to the node's database, opened before the outages and kept through them. */
  let control: Client;
  /** A connection to the server's maintenance database, from which the node's database is closed and opened. */
  let server: Client;

  beforeAll(async () => {
    const factory = new Factory(node().services);
    admin = await factory.token(Role.ADMIN);
    coordinator = await factory.token(Role.COORDINATOR, { site: await factory.site('EAST') });
    engineer = await factory.token(Role.ENGINEER);
    control = new Client({ connectionString: node().database.url, application_name: 'facet-test-control' });
    await control.connect();
    server = new Client({ connectionString: adminUrl() });
    await server.connect();
  });

  /** The node's database refuses new connections and its open ones (but `keep`) are ended, as in a failover. */
  async function refuseConnections(keep: string[] = []): Promise<void> {
    await server.query(`ALTER DATABASE ${node().database.name} ALLOW_CONNECTIONS false`);
    await server.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name <> ALL($2::text[])`, [
      node().database.name,
      ['facet-test-control', ...keep],
    ]);
  }

  async function acceptConnections(): Promise<void> {
    await server.query(`ALTER DATABASE ${node().database.name} ALLOW_CONNECTIONS true`);
  }

  const graphql = (token: string, query: string) =>
    fetch(`${node().url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query }),
    });

  /**
   * Asks until the server answers again. pg_terminate_backend only signals: a pooled connection may learn of its end
   * on its next query, which then answers 503 like any request during the outage; a client that honours Retry-After
   * is served once that has passed. Anything but 503 or 200 fails.
   */
  async function untilServed(): Promise<void> {
    for (const deadline = Date.now() + 10_000; ;) {
      const response = await graphql(admin, '{ sites { totalCount } }');
      if (response.status === 200) return;
      await expect503(response);
      if (Date.now() > deadline) throw new Error('the server did not recover from the outage');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  describe('while it refuses connections', () => {
    beforeAll(() => refuseConnections());
    afterAll(() => acceptConnections());

    it('answers GraphQL over HTTP with a valid token 503 SERVICE_UNAVAILABLE with Retry-After (the token lookup fails)', async () => {
      await expect503(await graphql(admin, '{ sites { totalCount } }'));
      await expect503(await graphql(admin, 'mutation { createSite(input: { code: "DOWN", name: "Down" }) { id } }'));
    });

    it('answers STOW-RS, WADO-RS and model upload with a valid token 503, never 401', async () => {
      const { contentType, body } = multipartRelated([{ bytes: Buffer.from('not dicom') }]);
      await expect503(
        await fetch(`${node().url}/dicomweb/studies`, {
          method: 'POST',
          headers: { 'content-type': contentType, authorization: `Bearer ${coordinator}` },
          body,
        }),
      );
      await expect503(await fetch(`${node().url}/dicomweb/studies/1/series/2/instances/3`, { headers: { authorization: `Bearer ${coordinator}` } }));
      const form = new FormData();
      form.append('manifest', new Blob(['{}']), 'manifest.json');
      await expect503(await fetch(`${node().url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form }));
    });

    it('answers a graphql-ws operation with an error message coded SERVICE_UNAVAILABLE, not a socket closed with the driver’s text', async () => {
      // gqlOverWebSocket rejects when the socket closes instead of answering: resolving with errors proves an error message.
      const response = await gqlOverWebSocket(node().url, admin, '{ sites { totalCount } }');
      expectUnavailable(JSON.stringify(response));
      const subscription = await gqlOverWebSocket(node().url, engineer, 'subscription { jobs { id status } }');
      expectUnavailable(JSON.stringify(subscription));
    });

    it('still answers what needs no database, and /readyz 503', async () => {
      expect(await gqlOk(node().url, null, '{ __typename }')).toEqual({ __typename: 'Query' });
      expect((await fetch(`${node().url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${node().url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'unavailable', reason: 'database' });
    });
  });

  describe('when PostgreSQL ends a query’s connection (a restart or failover mid-request)', () => {
    /** Runs `request` while the site table is locked, ends the connection its resolver waits on, and returns the answer. */
    async function withResolverConnectionEnded<T>(request: () => Promise<T>): Promise<T> {
      await control.query('BEGIN');
      await control.query('LOCK TABLE site IN ACCESS EXCLUSIVE MODE');
      try {
        const answer = request();
        // The token lookup passed; the resolver's query waits for the lock.
        for (const deadline = Date.now() + 10_000; ;) {
          const { rows } = await server.query(
            `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'facet' AND wait_event_type = 'Lock'`,
            [node().database.name],
          );
          if (rows.length) {
            await server.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
            break;
          }
          if (Date.now() > deadline) throw new Error('no resolver waited for the lock');
          await new Promise((r) => setTimeout(r, 20));
        }
        return await answer;
      } finally {
        await control.query('ROLLBACK');
      }
    }

    it('answers the HTTP request 503 SERVICE_UNAVAILABLE with Retry-After', async () => {
      await expect503(await withResolverConnectionEnded(() => graphql(admin, '{ sites { totalCount } }')));
    });

    it('answers a graphql-ws query with SERVICE_UNAVAILABLE', async () => {
      expectUnavailable(JSON.stringify(await withResolverConnectionEnded(() => gqlOverWebSocket(node().url, admin, '{ sites { totalCount } }'))));
    });
  });

  it('ends a live subscription whose re-read fails with SERVICE_UNAVAILABLE, and carries on afterwards', async () => {
    // The refusals above ended the LISTEN connection too; its reconnect backs off up to 5 s, and a NOTIFY sent
    // before it listens again reaches nobody.
    for (const deadline = Date.now() + 15_000; !node().services.pubSub.listening;) {
      if (Date.now() > deadline) throw new Error('the LISTEN connection did not come back');
      await new Promise((r) => setTimeout(r, 50));
    }
    const live = await subscribe<{ jobs: { id: string } }>(node().url, engineer, 'subscription { jobs { id status } }');
    try {
      // The LISTEN connection stays; the pool's connections go and new ones are refused, so the re-read fails.
      await refuseConnections(['facet-listen']);
      const jobId = randomUUID();
      await control.query('SELECT pg_notify($1, $2)', [
        'facet_events',
        JSON.stringify({ topic: JOB_PROGRESS, id: jobId, payload: { jobId, event: randomUUID() } }),
      ]);
      for (const deadline = Date.now() + 10_000; !live.errors.length && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
      expect(live.errors).toHaveLength(1);
      expectUnavailable(JSON.stringify({ errors: live.errors }));
    } finally {
      await acceptConnections();
      await live.close();
    }
    await untilServed();
    expect((await gqlOk(node().url, admin, '{ sites { totalCount } }')).sites.totalCount).toBe(1);
  });

  it('works again once the database accepts connections: the same requests succeed, the listener is back and delivers each event once', async () => {
    await refuseConnections();
    await expect503(await graphql(admin, '{ sites { totalCount } }'));
    await acceptConnections();
    await untilServed();
    expect((await gqlOk(node().url, admin, '{ sites { totalCount } }')).sites.totalCount).toBe(1);
    expect((await fetch(`${node().url}/readyz`)).status).toBe(200);
    const wado = await fetch(`${node().url}/dicomweb/studies/1/series/2/instances/3`, { headers: { authorization: `Bearer ${coordinator}` } });
    expect(wado.status).toBe(404);

    for (const deadline = Date.now() + 15_000; !node().services.pubSub.listening;) {
      if (Date.now() > deadline) throw new Error('the LISTEN connection did not come back');
      await new Promise((r) => setTimeout(r, 50));
    }
    const { rows } = await server.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'facet-listen'`, [
      node().database.name,
    ]);
    expect(rows[0].n).toBe(1);
    const events = withTestTopics(node().services.pubSub).subscribe('TEST', 'once')[Symbol.asyncIterator]();
    const received: unknown[] = [];
    const reading = (async () => {
      for (;;) {
        const next = await events.next();
        if (next.done) return;
        received.push(next.value);
      }
    })();
    for (let n = 0; n < 20; n++) await withTestTopics(node().services.pubSub).publish('TEST', 'once', { n });
    for (const deadline = Date.now() + 10_000; received.length < 20 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300)); // a duplicate would arrive with its original
    expect(received).toEqual(Array.from({ length: 20 }, (_, n) => ({ n })));
    await events.return?.();
    await reading;
  });
});
