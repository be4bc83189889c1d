import { deflateSync, gzipSync } from 'node:zlib';
import { ErrorCode, Role } from '../../server/domain';
import { HTTP_STATUS } from '../../server/http/problem';
import { seededRandom } from '../../server/stats/bootstrap';
import { Factory } from '../helpers/factories';
import { useTestNode } from '../helpers/lifecycle';
import { TEST_LIMITS } from '../helpers/test-node';

const STOW_LIMIT = 100_000;
const CATALOGUE = new Set<string>(Object.values(ErrorCode));

/** Nothing that looks like a stack trace, a source path, an HTML page or a driver message. */
function expectNoStack(body: string): void {
  expect(body).not.toMatch(/\n?\s+at [^\n]*[:(][^\n]*\d+:\d+\)?/);
  expect(body).not.toMatch(/node_modules|\.(ts|js):\d+|stacktrace|"stack"|<html|<pre/i);
  expect(body).not.toMatch(/incorrect header check|unexpected end of file|zlib|Z_DATA_ERROR|Z_BUF_ERROR/i);
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
  code?: string;
}

/** The answer must be JSON `{ errors: [{ message, extensions: { code } }] }` with a catalogue code and its status. */
function expectProblem(answer: Answer): string {
  expect(answer.contentType).toMatch(/^application\/json/);
  expectNoStack(answer.text);
  const body = JSON.parse(answer.text) as { errors?: Array<{ message?: unknown; extensions?: { code?: string } }> };
  expect(body.errors).toHaveLength(1);
  expect(typeof body.errors![0].message).toBe('string');
  const code = body.errors![0].extensions?.code ?? '';
  expect(CATALOGUE.has(code)).toBe(true);
  expect(answer.status).toBe(HTTP_STATUS[code as ErrorCode]);
  return code;
}

/** A body-reading route: where it is, how it reads (JSON or raw bytes), its limit and the headers it needs. */
interface Route {
  name: string;
  path: string;
  reads: 'json' | 'raw';
  limit: number;
  contentType: string;
  token: () => string;
}

/** One request of the undecodable-body class, and the code the route must answer with. */
interface Case {
  kind: string;
  headers: Record<string, string>;
  body: Buffer;
  expected: (route: Route) => ErrorCode;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const UNSUPPORTED_ENCODINGS = ['compress', 'x-compress', 'exi', 'pack200-gzip', 'aes128gcm', 'gzip, gzip', 'identity, gzip', 'x-unknown'];
const FOREIGN_CHARSETS = ['latin1', 'iso-8859-1', 'windows-1252', 'koi8-r', 'shift_jis', 'us-ascii', 'ebcdic-cp-us', 'big5'];

/** The undecodable-body class, generated from `seed`: bad gzip, truncated deflate, unknown encoding, foreign charset, oversized. */
function undecodableBodies(seed: number, route: Route): Case[] {
  const random = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(0, 255)));
  const pick = <T>(items: readonly T[]) => items[int(0, items.length - 1)];
  const payload = Buffer.from(JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(int(0, 4000)) } }));
  const deflated = deflateSync(payload);
  const gzipped = gzipSync(payload);
  const randomToken = () => Array.from({ length: int(3, 12) }, () => pick([...LETTERS])).join('');
  return [
    // gzip's magic number followed by noise, or noise alone
    {
      kind: 'bad gzip',
      headers: { 'content-encoding': 'gzip' },
      body: random() < 0.5 ? Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08]), bytes(int(1, 500))]) : bytes(int(1, 500)),
      expected: () => ErrorCode.BAD_REQUEST,
    },
    {
      kind: 'corrupted gzip',
      headers: { 'content-encoding': 'gzip' },
      body: Buffer.concat([gzipped.subarray(0, 10), bytes(int(10, 200))]),
      expected: () => ErrorCode.BAD_REQUEST,
    },
    {
      kind: 'truncated deflate',
      headers: { 'content-encoding': 'deflate' },
      body: deflated.subarray(0, int(1, deflated.length - 5)),
      expected: () => ErrorCode.BAD_REQUEST,
    },
    {
      kind: 'truncated gzip',
      headers: { 'content-encoding': 'gzip' },
      body: gzipped.subarray(0, int(1, gzipped.length - 9)),
      expected: () => ErrorCode.BAD_REQUEST,
    },
    {
      kind: 'unknown encoding',
      headers: { 'content-encoding': random() < 0.5 ? pick(UNSUPPORTED_ENCODINGS) : `x-${randomToken()}` },
      body: bytes(int(1, 300)),
      expected: () => ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    },
    {
      kind: 'foreign charset',
      headers: { 'content-type': `${route.contentType}; charset=${random() < 0.7 ? pick(FOREIGN_CHARSETS) : randomToken()}` },
      body: payload,
      // A JSON route refuses the charset; a raw route reads bytes, whose multipart framing is then missing.
      expected: (r) => (r.reads === 'json' ? ErrorCode.UNSUPPORTED_MEDIA_TYPE : ErrorCode.BAD_REQUEST),
    },
    { kind: 'oversized', headers: {}, body: Buffer.alloc(route.limit + int(1, 5000), 0x20), expected: () => ErrorCode.PAYLOAD_TOO_LARGE },
    // small on the wire, over the limit once inflated
    {
      kind: 'oversized once inflated',
      headers: { 'content-encoding': 'gzip' },
      body: gzipSync(Buffer.alloc(route.limit + int(1, 5000), 0x20)),
      expected: () => ErrorCode.PAYLOAD_TOO_LARGE,
    },
  ];
}

async function send(url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  const response = await fetch(url, { method, headers, body });
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text: await response.text() };
}

/** The whole class on every route, under one NODE_ENV (Express shows stacks outside production by default). */
function describeUnder(env: 'production' | 'development'): void {
  describe(`under NODE_ENV=${env}`, () => {
    let before: string | undefined;
    beforeAll(() => {
      before = process.env.NODE_ENV;
      process.env.NODE_ENV = env; // Express reads it when the app is made, in the node's beforeAll below
    });
    const node = useTestNode({ limits: { maxStowBytes: STOW_LIMIT } });
    afterAll(() => {
      process.env.NODE_ENV = before;
    });
    let coordinator: string;
    let engineer: string;

    beforeAll(async () => {
      const factory = new Factory(node().services);
      coordinator = await factory.token(Role.COORDINATOR, { site: await factory.site('EAST') });
      engineer = await factory.token(Role.ENGINEER);
    });

    const routes: Route[] = [
      { name: 'POST /graphql', path: '/graphql', reads: 'json', limit: TEST_LIMITS.maxBodyBytes, contentType: 'application/json', token: () => coordinator },
      {
        name: 'STOW-RS',
        path: '/dicomweb/studies',
        reads: 'raw',
        limit: STOW_LIMIT,
        contentType: 'multipart/related; type="application/dicom"',
        token: () => coordinator,
      },
      {
        name: 'STOW-RS of a study',
        path: '/dicomweb/studies/1.2.3',
        reads: 'raw',
        limit: STOW_LIMIT,
        contentType: 'multipart/related; type="application/dicom"',
        token: () => coordinator,
      },
      { name: 'model upload', path: '/api/model-versions', reads: 'raw', limit: STOW_LIMIT, contentType: 'multipart/form-data', token: () => engineer },
    ];

    it.each(routes.map((r) => [r.name, r] as const))('answers every undecodable body on %s with JSON, the class’s code and no stack', async (_name, route) => {
      const seen: string[] = [];
      for (let seed = 1; seed <= 4; seed++) {
        for (const c of undecodableBodies(seed * 7919 + route.path.length, route)) {
          const headers = { 'content-type': route.contentType, authorization: `Bearer ${route.token()}`, ...c.headers };
          const answer = await send(`${node().url}${route.path}`, 'POST', headers, c.body);
          const code = expectProblem(answer);
          seen.push(`${c.kind}: ${code}`);
          expect(`${c.kind}: ${code}`).toBe(`${c.kind}: ${c.expected(route)}`);
        }
      }
      expect(seen).toHaveLength(32);
    });

    it('answers unknown routes and methods with JSON 404 NOT_FOUND, whatever the body', async () => {
      const random = seededRandom(11);
      for (const [method, path] of [
        ['GET', '/no-such-route'],
        ['POST', '/no-such-route'],
        ['POST', '/healthz'],
        ['DELETE', '/graphiql'],
        ['PUT', '/dicomweb/studies'],
        ['GET', '/api/model-versions'],
        ['GET', '/graphiql/assets/evil.js'],
        ['GET', `/${'deep/'.repeat(50)}x`],
      ] as const) {
        const body = method === 'GET' ? undefined : Buffer.from(Array.from({ length: 64 }, () => Math.floor(random() * 256)));
        const answer = await send(`${node().url}${path}`, method, { 'content-encoding': 'gzip', 'content-type': 'application/json' }, body);
        expect(expectProblem(answer)).toBe(ErrorCode.NOT_FOUND);
      }
    });

    it('answers a broken multipart body with BAD_REQUEST and a wrong media type with UNSUPPORTED_MEDIA_TYPE', async () => {
      const stow = (contentType: string, body: string) =>
        send(`${node().url}/dicomweb/studies`, 'POST', { 'content-type': contentType, authorization: `Bearer ${coordinator}` }, Buffer.from(body));
      expect(expectProblem(await stow('multipart/related; type="application/dicom"; boundary=abc', '--abc\r\nno end of headers'))).toBe(ErrorCode.BAD_REQUEST);
      expect(expectProblem(await stow('application/json', '{}'))).toBe(ErrorCode.UNSUPPORTED_MEDIA_TYPE);
      const upload = await send(
        `${node().url}/api/model-versions`,
        'POST',
        { 'content-type': 'text/plain', authorization: `Bearer ${engineer}` },
        Buffer.from('x'),
      );
      expect(expectProblem(upload)).toBe(ErrorCode.UNSUPPORTED_MEDIA_TYPE);
    });

    it('answers a missing or unknown token on every upload route with 401 UNAUTHENTICATED before reading the body', async () => {
      for (const path of ['/dicomweb/studies', '/api/model-versions', '/dicomweb/studies/1/series/2/instances/3']) {
        for (const headers of [{}, { authorization: 'Bearer fct_unknown' }, { authorization: 'Basic x' }] as Array<Record<string, string>>) {
          const method = path.includes('instances') ? 'GET' : 'POST';
          const answer = await send(
            `${node().url}${path}`,
            method,
            { ...headers, 'content-encoding': 'gzip' },
            method === 'POST' ? Buffer.from('not gzip') : undefined,
          );
          expect(expectProblem(answer)).toBe(ErrorCode.UNAUTHENTICATED);
        }
      }
    });
  });
}

describe('HTTP errors: JSON with a code on every route', () => {
  describeUnder('production');
  describeUnder('development');

  it('gives every error code an HTTP status', () => {
    for (const code of Object.values(ErrorCode)) expect(HTTP_STATUS[code]).toBeGreaterThanOrEqual(400);
    expect(HTTP_STATUS[ErrorCode.SERVICE_UNAVAILABLE]).toBe(503);
  });
});
