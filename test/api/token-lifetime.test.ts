import 'reflect-metadata';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { createDataSource } from '../../server/db/data-source';
import { prng } from '../../server/demo/phantoms';
import { Role } from '../../server/domain';
import type { Site } from '../../server/entities';
import { createSchema } from '../../server/graphql/schema';
import { startHttpServer, type RunningServer } from '../../server/http/app';
import { createServices, type Services } from '../../server/services';
import { INGEST_PROGRESS } from '../../server/pubsub/topics';
import { untilTokenEnds } from '../../server/services/token-lifetime.service';
import { hashToken } from '../../server/services/token.service';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk, gqlOverWebSocket, type GraphQLResponse } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { TEST_LIMITS } from '../helpers/test-node';
import { TOKEN_CACHE_TTL_MS } from '../../server/services/token-cache';

const CREATE_TOKEN = `mutation ($input: CreateApiTokenInput!) { createApiToken(input: $input) { secret token { id expiresAt } } }`;
const REVOKE_TOKEN = `mutation ($id: ID!) { revokeApiToken(id: $id) { id revokedAt } }`;
const INGEST = `subscription ($siteId: ID!) { ingestProgress(siteId: $siteId) { batchId status } }`;

interface OpenSubscription {
  results: GraphQLResponse[];
  /** Settles when the server completes the subscription (or errors it). */
  ended: Promise<'complete' | 'error'>;
  close(): Promise<void>;
}

/** A graphql-ws subscription that records what the server sends and when it ends. */
async function openSubscription(url: string, token: string, query: string, variables: Record<string, unknown>): Promise<OpenSubscription> {
  const client = createClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  const results: GraphQLResponse[] = [];
  const ended = new Promise<'complete' | 'error'>((resolve) =>
    client.subscribe(
      { query, variables },
      {
        next: (value) => void results.push(value as GraphQLResponse),
        error: (error) => {
          results.push({ errors: Array.isArray(error) ? error : [{ message: String(error) }] });
          resolve('error');
        },
        complete: () => resolve('complete'),
      },
    ),
  );
  return { results, ended, close: () => client.dispose() as Promise<void> };
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const within = <T>(promise: Promise<T>, ms = 15_000): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not settled in ${ms} ms`)), ms).unref())]);

describe('token expiry and the end of open subscriptions', () => {
  const node = useTestNode();
  let factory: Factory;
  let admin: string;
  let site: Site;

  const createToken = async (input: Record<string, unknown>): Promise<{ id: string; secret: string; expiresAt: string | null }> => {
    const data = await gqlOk(node().url, admin, CREATE_TOKEN, { input: { name: `t${Math.random()}`.slice(0, 20), ...input } });
    return { id: data.createApiToken.token.id, secret: data.createApiToken.secret, expiresAt: data.createApiToken.token.expiresAt };
  };
  const coordinatorToken = (expiresAt?: Date) =>
    createToken({ role: 'COORDINATOR', siteId: site.id, ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}) });
  const watched = () => node().services.tokenLifetimes.watchedCount();

  beforeAll(async () => {
    factory = new Factory(node().services);
    admin = await factory.token(Role.ADMIN);
    site = await factory.site();
  });

  describe('createApiToken(input: { expiresAt })', () => {
    const random = prng(5501);
    const past = Array.from({ length: 5 }, () => Math.floor(random() * 10 * 365 * 86_400_000));

    it.each([0, ...past])('refuses an expiry %i ms in the past with BAD_USER_INPUT and stores nothing', async (ago) => {
      const before = (await node().dataSource.query('SELECT count(*)::int AS n FROM api_token'))[0].n;
      const response = await gql(node().url, admin, CREATE_TOKEN, {
        input: { name: 'past', role: 'ENGINEER', expiresAt: new Date(Date.now() - ago).toISOString() },
      });
      expect(codeOf(response)).toBe('BAD_USER_INPUT');
      expect(response.errors![0].extensions).toMatchObject({ field: 'expiresAt' });
      expect((await node().dataSource.query('SELECT count(*)::int AS n FROM api_token'))[0].n).toBe(before);
    });

    it('makes a token that works until its expiry and authenticates nothing after it, over HTTP and graphql-ws', async () => {
      const expiresAt = new Date(Date.now() + 3_600_000);
      const token = await createToken({ role: 'ENGINEER', expiresAt: expiresAt.toISOString() });
      expect(token.expiresAt).toBe(expiresAt.toISOString());
      expect((await gqlOk(node().url, token.secret, '{ viewer { role } }')).viewer.role).toBe('ENGINEER');
      const listed = await gqlOk(node().url, admin, '{ apiTokens(first: 500) { nodes { id expiresAt } } }');
      expect(listed.apiTokens.nodes).toContainEqual({ id: token.id, expiresAt: expiresAt.toISOString() });
      const [audit] = await node().dataSource.query(`SELECT details FROM audit_event WHERE action = 'createApiToken' AND entity_id = $1`, [token.id]);
      expect(audit.details).toEqual({ role: 'ENGINEER', expiresAt: expiresAt.toISOString() });

      // Moved behind the server's back (no API shortens a token): the server's cached lookup lasts at most its TTL.
      await node().dataSource.query(`UPDATE api_token SET expires_at = now() - interval '1 millisecond' WHERE id = $1`, [token.id]);
      const seen = Date.now();
      while (!codeOf(await gql(node().url, token.secret, '{ viewer { role } }')) && Date.now() - seen < TOKEN_CACHE_TTL_MS + 2000) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(codeOf(await gql(node().url, token.secret, '{ viewer { role } }'))).toBe('UNAUTHENTICATED');
      expect(codeOf(await gqlOverWebSocket(node().url, token.secret, '{ viewer { role } }'))).toBe('UNAUTHENTICATED');
      expect(await node().services.tokens.authenticate(token.secret)).toBeNull();
    });

    it('keeps a token without expiresAt until it is revoked', async () => {
      const token = await createToken({ role: 'ENGINEER' });
      expect(token.expiresAt).toBeNull();
      const [row] = await node().dataSource.query('SELECT expires_at FROM api_token WHERE token_hash = $1', [hashToken(token.secret)]);
      expect(row.expires_at).toBeNull();
    });
  });

  describe('open subscriptions', () => {
    it('ends a subscription with UNAUTHENTICATED (REVOKED) and completes it when its token is revoked', async () => {
      const token = await coordinatorToken();
      const subscription = await openSubscription(node().url, token.secret, INGEST, { siteId: site.id });
      try {
        await until(() => watched() === 1);
        await gqlOk(node().url, admin, REVOKE_TOKEN, { id: token.id });
        expect(await within(subscription.ended)).toBe('complete');
        const last = subscription.results.at(-1)!;
        expect(codeOf(last)).toBe('UNAUTHENTICATED');
        expect(last.errors![0].extensions).toMatchObject({ reason: 'REVOKED' });
        expect(last.data ?? null).toBeNull();
        expect(watched()).toBe(0);
      } finally {
        await subscription.close();
      }
    });

    it('ends it when its token expires, on a timer at the expiry instant (no event needed)', async () => {
      const token = await coordinatorToken(new Date(Date.now() + 1500));
      const subscription = await openSubscription(node().url, token.secret, INGEST, { siteId: site.id });
      try {
        await until(() => watched() === 1);
        expect(await within(subscription.ended)).toBe('complete');
        expect(codeOf(subscription.results.at(-1)!)).toBe('UNAUTHENTICATED');
        expect(subscription.results.at(-1)!.errors![0].extensions).toMatchObject({ reason: 'EXPIRED' });
        expect(watched()).toBe(0);
      } finally {
        await subscription.close();
      }
    });

    it('keeps a subscription whose token stays good running through another token’s revocation, and forgets it on unsubscribe', async () => {
      const token = await coordinatorToken(new Date(Date.now() + 3_600_000));
      const other = await coordinatorToken();
      const subscription = await openSubscription(node().url, token.secret, INGEST, { siteId: site.id });
      try {
        await until(() => watched() === 1);
        await gqlOk(node().url, admin, REVOKE_TOKEN, { id: other.id });
        // The revocation's NOTIFY and this event travel the same LISTEN connection, in order.
        await node().services.pubSub.publish(INGEST_PROGRESS, site.id, {
          batchId: 'b1',
          siteId: site.id,
          kind: 'DICOM',
          status: 'RUNNING',
          objectsTotal: 1,
          objectsDone: 0,
          rejected: 0,
          bytes: 0,
          at: new Date().toISOString(),
        });
        await until(() => subscription.results.length > 0);
        expect(subscription.results).toEqual([{ data: { ingestProgress: { batchId: 'b1', status: 'RUNNING' } } }]);
      } finally {
        await subscription.close();
      }
      await until(() => watched() === 0);
    });

    it('ends a subscription on another server of the node: the revocation travels by LISTEN/NOTIFY', async () => {
      const dataSource = createDataSource(node().database.url, { poolSize: 2 });
      await dataSource.initialize();
      const services: Services = createServices(dataSource, { objectRoot: path.join(os.tmpdir(), 'facet-second-server'), databaseUrl: node().database.url });
      let second: RunningServer | null = null;
      try {
        second = await startHttpServer({ host: '127.0.0.1', port: 0, ...TEST_LIMITS }, services, await createSchema(services), dataSource);
        const token = await coordinatorToken();
        const subscription = await openSubscription(second.url, token.secret, INGEST, { siteId: site.id });
        try {
          await until(() => services.tokenLifetimes.watchedCount() === 1);
          await gqlOk(node().url, admin, REVOKE_TOKEN, { id: token.id });
          expect(await within(subscription.ended)).toBe('complete');
          expect(subscription.results.at(-1)!.errors![0].extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'REVOKED' });
        } finally {
          await subscription.close();
        }
      } finally {
        await second?.close();
        await dataSource.destroy();
      }
    });

    it('ends at once an operation that authenticated just before a revocation it learns of only afterwards', async () => {
      const token = await coordinatorToken();
      const actor = (await node().services.tokens.authenticate(token.secret))!;
      await gqlOk(node().url, admin, REVOKE_TOKEN, { id: token.id });
      // The NOTIFY arrives; a watch that starts now (its operation authenticated before the revocation) ends at once.
      const probe = node().services.tokenLifetimes;
      await until(() => {
        const watch = probe.watch(actor);
        const ended = watch.check() === 'REVOKED';
        watch.stop();
        return ended;
      });
    });
  });

  describe(untilTokenEnds.name, () => {
    async function* forever(): AsyncGenerator<number> {
      for (let i = 0; ; i++) {
        yield i;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }

    it('delivers no event once the expiry instant has passed, even before the timer fires', async () => {
      const watch = node().services.tokenLifetimes.watch({
        tokenId: null,
        name: 'x',
        role: Role.ADMIN,
        siteId: null,
        readerId: null,
        readerRole: null,
        expiresAt: new Date(Date.now() - 1),
      });
      const results = untilTokenEnds(forever(), watch, (end) => -1 * (end === 'EXPIRED' ? 1 : 2));
      expect(await results.next()).toEqual({ done: false, value: -1 });
      expect(await results.next()).toEqual({ done: true, value: undefined });
    });

    it('passes events through while the token is good and ends cleanly when the consumer returns', async () => {
      const watch = node().services.tokenLifetimes.watch({
        tokenId: null,
        name: 'x',
        role: Role.ADMIN,
        siteId: null,
        readerId: null,
        readerRole: null,
        expiresAt: new Date(Date.now() + 3_600_000),
      });
      const results = untilTokenEnds(forever(), watch, () => -1);
      expect((await results.next()).value).toBe(0);
      expect((await results.next()).value).toBe(1);
      expect(await results.return(undefined)).toEqual({ done: true, value: undefined });
      expect(await results.next()).toEqual({ done: true, value: undefined });
      expect(watch.check()).toBeNull();
    });
  });
});
