import { request } from 'node:http';
import { prng } from '../../server/demo/phantoms';
import { Role } from '../../server/domain';
import { hashToken } from '../../server/services/token.service';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOverWebSocket, type GraphQLResponse } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { TEST_LIMITS } from '../helpers/test-node';

const ANONYMOUS_LIMIT = TEST_LIMITS.maxAnonymousBodyBytes;
const MAX_TOKENS = TEST_LIMITS.maxQueryTokens;

/**
 * A valid query of exactly `tokens` lexical tokens: 12 of structure and a list of tokens - 12 strings (a long list
 * argument keeps validation cheap, where thousands of sibling fields would spend its overlap budget).
 */
const documentOfTokens = (tokens: number): string => `{ auditEvents(actions: [${Array.from({ length: tokens - 12 }, () => '"a"').join(' ')}]) { totalCount } }`;

/** A JSON body of exactly `bytes` bytes that runs `{ __typename }` (padding in an unused variable). */
function bodyOfBytes(bytes: number): string {
  const empty = JSON.stringify({ query: '{ __typename }', variables: { pad: '' } });
  return JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(bytes - empty.length) } });
}

describe('the GraphQL gate: authenticate before parsing, small anonymous bodies, token-limited documents', () => {
  const node = useTestNode();
  let admin: string;
  let revoked: string;
  let expired: string;

  const post = (body: string, token: string | null) =>
    fetch(`${node().url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body,
    });

  beforeAll(async () => {
    const factory = new Factory(node().services);
    admin = await factory.token(Role.ADMIN);
    revoked = await factory.token(Role.ADMIN);
    await node().dataSource.query(`UPDATE api_token SET revoked_at = now() WHERE token_hash = $1`, [hashToken(revoked)]);
    const { secret } = await node().services.tokens.createApiToken(factory.admin, {
      name: 'soon',
      role: Role.ADMIN,
      expiresAt: new Date(Date.now() + 3_600_000),
    });
    await node().dataSource.query(`UPDATE api_token SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, [hashToken(secret)]);
    expired = secret;
  });

  describe('anonymous bodies', () => {
    // Seeded sizes on both sides of the limit: up to it a body is read, past it 413 with a JSON error and a code.
    const random = prng(4401);
    const sizes = [
      ANONYMOUS_LIMIT,
      ANONYMOUS_LIMIT + 1,
      ...Array.from({ length: 4 }, () => Math.floor(ANONYMOUS_LIMIT / 4 + (random() * (ANONYMOUS_LIMIT * 3)) / 4)),
      ...Array.from({ length: 4 }, () => ANONYMOUS_LIMIT + 1 + Math.floor(random() * 200_000)),
    ];

    it.each(sizes)('reads an anonymous body of %i bytes only up to the anonymous limit', async (bytes) => {
      const response = await post(bodyOfBytes(bytes), null);
      if (bytes <= ANONYMOUS_LIMIT) {
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
      } else {
        expect(response.status).toBe(413);
        const body = (await response.json()) as GraphQLResponse;
        expect(codeOf(body)).toBe('PAYLOAD_TOO_LARGE');
      }
    });

    it('reads a chunked anonymous body (no Content-Length) only up to the anonymous limit too', async () => {
      const chunked = (body: string) =>
        fetch(`${node().url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: new Blob([body]).stream(),
          duplex: 'half',
        } as RequestInit & { duplex: 'half' });
      const fits = await chunked(bodyOfBytes(ANONYMOUS_LIMIT));
      expect(fits.status).toBe(200);
      const over = await chunked(bodyOfBytes(ANONYMOUS_LIMIT + 1));
      expect(over.status).toBe(413);
      expect(codeOf((await over.json()) as GraphQLResponse)).toBe('PAYLOAD_TOO_LARGE');
    });

    it.each([
      ['a revoked token', () => revoked],
      ['an expired token', () => expired],
      ['an unknown token', () => 'fct_unknown'],
      ['a malformed Authorization header', () => 'not a bearer'],
    ])('treats %s as anonymous: its large body is refused with 413', async (_label, token) => {
      const response = await post(bodyOfBytes(ANONYMOUS_LIMIT + 1), token());
      expect(response.status).toBe(413);
      expect(codeOf((await response.json()) as GraphQLResponse)).toBe('PAYLOAD_TOO_LARGE');
    });

    it('reads an authenticated body up to FACET_MAX_BODY_BYTES', async () => {
      const response = await post(bodyOfBytes(ANONYMOUS_LIMIT * 20), admin);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
      const tooLarge = await post(bodyOfBytes(TEST_LIMITS.maxBodyBytes + 1), admin);
      expect(tooLarge.status).toBe(413);
    });

    it('answers an anonymous 15 MB announcement with 413 before the body is sent', async () => {
      // Only the headers go out: the answer must come from the Content-Length alone, with no byte of the body read.
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${node().url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': String(15 * 1024 * 1024) },
        });
        req.on('response', (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body: text });
            req.destroy();
          });
        });
        req.on('error', (error) => (error.message.includes('socket hang up') ? undefined : reject(error)));
        req.flushHeaders();
      });
      expect(status).toBe(413);
      expect(codeOf(JSON.parse(body) as GraphQLResponse)).toBe('PAYLOAD_TOO_LARGE');
    });

    it('still answers anonymous callers what anonymous callers may ask, and UNAUTHENTICATED for the rest', async () => {
      expect(await gql(node().url, null, '{ __typename }')).toEqual({ data: { __typename: 'Query' } });
      expect(codeOf(await gql(node().url, expired, '{ sites { totalCount } }'))).toBe('UNAUTHENTICATED');
    });
  });

  describe('document tokens', () => {
    it('parses a document of exactly the token limit and refuses one more, with GRAPHQL_PARSE_FAILED', async () => {
      const fits = await post(JSON.stringify({ query: documentOfTokens(MAX_TOKENS) }), admin);
      expect(fits.status).toBe(200);
      expect(await fits.json()).toEqual({ data: { auditEvents: { totalCount: 0 } } });
      const over = await post(JSON.stringify({ query: documentOfTokens(MAX_TOKENS + 1) }), admin);
      expect(over.status).toBe(400);
      const body = (await over.json()) as GraphQLResponse;
      expect(codeOf(body)).toBe('GRAPHQL_PARSE_FAILED');
      expect(body.errors![0].message).toMatch(new RegExp(`Document contains more th\\w+ ${MAX_TOKENS} tokens`));
    });

    // Seeded token-heavy documents of every shape a parser spends time on: names, punctuation, numbers, variables.
    const random = prng(4402);
    const pieces = ['__typename', '{', '}', '(', ')', ':', '$a', '1', '2.5', '"s"', '...', '@include', '[', ']', 'true', 'null'];
    const heavy = Array.from({ length: 6 }, (_, i) => {
      const count = MAX_TOKENS + 1 + Math.floor(random() * MAX_TOKENS * 20);
      return [i, Array.from({ length: count }, () => pieces[Math.floor(random() * pieces.length)]).join(' ')] as const;
    });

    it.each(heavy)('refuses token-heavy document %i (past the limit) with a JSON error and a code over HTTP', async (_i, query) => {
      const response = await post(JSON.stringify({ query }), admin);
      expect(response.status).toBe(400);
      const body = (await response.json()) as GraphQLResponse;
      expect(codeOf(body)).toBe('GRAPHQL_PARSE_FAILED');
    });

    it('refuses a document past the token limit over graphql-ws too', async () => {
      expect(codeOf(await gqlOverWebSocket(node().url, admin, documentOfTokens(MAX_TOKENS)))).toBeUndefined();
      const over = await gqlOverWebSocket(node().url, admin, documentOfTokens(MAX_TOKENS + 1));
      expect(codeOf(over)).toBe('GRAPHQL_PARSE_FAILED');
      expect(over.errors![0].message).toMatch(new RegExp(`Document contains more th\\w+ ${MAX_TOKENS} tokens`));
      for (const [, query] of heavy.slice(0, 2)) expect(codeOf(await gqlOverWebSocket(node().url, admin, query))).toBe('GRAPHQL_PARSE_FAILED');
    });

    it('refuses an anonymous graphql-ws document larger than an anonymous body, before parsing it', async () => {
      const query = `{ __typename ${' '.repeat(ANONYMOUS_LIMIT)} }`;
      expect(codeOf(await gqlOverWebSocket(node().url, null, query))).toBe('PAYLOAD_TOO_LARGE');
      expect(codeOf(await gqlOverWebSocket(node().url, expired, query))).toBe('PAYLOAD_TOO_LARGE');
      expect(await gqlOverWebSocket(node().url, admin, query)).toEqual({ data: { __typename: 'Query' } });
    });
  });
});
