import { randomUUID } from 'node:crypto';
import { Role } from '../../server/domain';
import { createServices, systemContext, type Services } from '../../server/services';
import { AuditBatchWriter, type AuditRow } from '../../server/services/audit-writer';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

/**
 * What a GraphQL request costs besides its own rows: the token lookup (cached), the count (only when asked), the
 * audit rows of its reads (one INSERT, before the answer), the limit checks (once per document and variables).
 */
describe('fixed cost of a GraphQL request', () => {
  const node = useTestNode();
  let factory: Factory;
  let admin: string;

  const statements = async (token: string, query: string, variables: Record<string, unknown> = {}) => {
    const [before, auditBefore] = [node().queries.count, node().queries.auditInserts];
    const response = await gql(node().url, token, query, variables);
    return { response, statements: node().queries.count - before, auditInserts: node().queries.auditInserts - auditBefore };
  };

  beforeAll(async () => {
    factory = new Factory(node().services);
    const site = await factory.site();
    for (let i = 0; i < 3; i++) await factory.patient(site);
    admin = await factory.token(Role.ADMIN);
  });

  it('answers a repeated list query with its one SELECT: the token is cached and no count is made unless asked', async () => {
    await gqlOk(node().url, admin, '{ sites { nodes { code } } }');
    const plain = await statements(admin, '{ sites { nodes { code } } }');
    expect(plain.response.data?.sites.nodes.length).toBeGreaterThan(0);
    expect(plain.statements).toBe(1);
    const counted = await statements(admin, '{ sites { totalCount nodes { code } } }');
    expect(counted.statements).toBe(2);
    expect(counted.response.data?.sites.totalCount).toBe(counted.response.data?.sites.nodes.length);
  });

  it("writes every read's audit row in one INSERT, committed before the answer arrives", async () => {
    const [{ seq }] = await node().dataSource.query('SELECT coalesce(max(seq), 0) AS seq FROM audit_event');
    const read = await statements(admin, '{ patients { nodes { id joints { id } } } }');
    expect(read.response.data?.patients.nodes).toHaveLength(3);
    expect(read.auditInserts).toBe(1);
    const rows: { entity_type: string; request_id: string }[] = await node().dataSource.query(
      `SELECT entity_type, request_id FROM audit_event WHERE seq > $1 AND action = 'read' ORDER BY entity_type`,
      [seq],
    );
    expect(rows.map((r) => r.entity_type)).toEqual(['Joint', 'Patient']);
    expect(new Set(rows.map((r) => r.request_id)).size).toBe(1);
  });

  describe('when the audit rows cannot be written, nothing that was read is sent', () => {
    const failAudit = (sqlstate: string) =>
      node().dataSource.query(`
        CREATE OR REPLACE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN IF NEW.entity_type = 'Patient' THEN RAISE EXCEPTION 'audit refused' USING ERRCODE = '${sqlstate}'; END IF; RETURN NEW; END $$;
        CREATE OR REPLACE TRIGGER refuse_audit BEFORE INSERT ON audit_event FOR EACH ROW EXECUTE FUNCTION refuse_audit();`);
    afterEach(() => node().dataSource.query('DROP TRIGGER IF EXISTS refuse_audit ON audit_event'));

    it.each([
      ['a database outage (57P03)', '57P03', 503, 'SERVICE_UNAVAILABLE'],
      ['any other failure (P0001)', 'P0001', 500, 'INTERNAL_SERVER_ERROR'],
    ])('%s: only the error, with its status', async (_, sqlstate, status, code) => {
      await failAudit(sqlstate);
      const response = await fetch(`${node().url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ query: '{ patients { nodes { pseudonym } } }' }),
      });
      const body = (await response.json()) as { data?: unknown; errors: { extensions: { code: string } }[] };
      expect(response.status).toBe(status);
      expect(body.data).toBeUndefined();
      expect(JSON.stringify(body)).not.toMatch(/audit refused/);
      expect(body.errors.map((e) => e.extensions.code)).toEqual([code]);
      if (status === 503) expect(response.headers.get('retry-after')).toBeTruthy();
    });
  });

  it('refuses a revoked token at once on the server that revoked it, and within moments on every other server', async () => {
    const other: Services = createServices(node().dataSource, { objectRoot: `${node().dataDir}/objects`, databaseUrl: node().database.url });
    await other.pubSub.listen();
    try {
      const { token, secret } = await node().services.tokens.createApiToken(systemContext(), { name: 'short-lived', role: Role.STATISTICIAN });
      expect((await other.tokens.authenticate(secret))?.tokenId).toBe(token.id);
      expect((await gqlOk(node().url, secret, '{ viewer { role } }')).viewer.role).toBe('STATISTICIAN');
      await gqlOk(node().url, admin, 'mutation ($id: ID!) { revokeApiToken(id: $id) { id } }', { id: token.id });
      expect(codeOf(await gql(node().url, secret, '{ viewer { role } }'))).toBe('UNAUTHENTICATED');
      const deadline = Date.now() + 3000;
      while ((await other.tokens.authenticate(secret)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await other.tokens.authenticate(secret)).toBeNull();
    } finally {
      await other.pubSub.close();
    }
  });

  it('checks limits once per document and variables, with the verdict each set of variables earns', async () => {
    const fanOut = `query ($n: Int) { sites(first: $n) { nodes { patients(first: 500) { nodes { joints { readings { grade } } } } } } }`;
    for (const n of [500, 1, 500, 1]) {
      const response = await gql(node().url, admin, fanOut, { n });
      expect(codeOf(response)).toBe(n === 500 ? 'QUERY_TOO_COMPLEX' : undefined);
    }
  });
});

describe('AuditBatchWriter', () => {
  const node = useTestNode();
  const row = (requestId: string, overrides: Partial<AuditRow> = {}): AuditRow => ({
    id: randomUUID(),
    actorTokenId: null,
    actorRole: Role.ADMIN,
    action: 'read',
    entityType: 'Patient',
    entityId: null,
    siteId: null,
    requestId,
    clientRequestId: null,
    details: { count: 1 },
    ...overrides,
  });
  const landed = async (requestId: string) =>
    Number((await node().dataSource.query('SELECT count(*) AS n FROM audit_event WHERE request_id = $1', [requestId]))[0].n);

  it('groups the rows handed in while an INSERT is on its way into the next one, and every row lands', async () => {
    const writer = new AuditBatchWriter(node().services.db);
    const requestId = randomUUID();
    const before = node().queries.auditInserts;
    await Promise.all(Array.from({ length: 50 }, () => writer.write([row(requestId), row(requestId)])));
    expect(await landed(requestId)).toBe(100);
    expect(node().queries.auditInserts - before).toBe(2);
  });

  it('fails every writer of a failed batch and leaves none of its rows, beyond one statement too', async () => {
    const writer = new AuditBatchWriter(node().services.db);
    for (const size of [2, 2500]) {
      const requestId = randomUUID();
      const rows = Array.from({ length: size }, () => row(requestId));
      rows[size - 1] = row(requestId, { actorRole: 'NOT_A_ROLE' as Role });
      await expect(writer.write(rows)).rejects.toThrow();
      expect(await landed(requestId)).toBe(0);
    }
    const requestId = randomUUID();
    await writer.write(Array.from({ length: 2500 }, () => row(requestId)));
    expect(await landed(requestId)).toBe(2500);
  });
});
