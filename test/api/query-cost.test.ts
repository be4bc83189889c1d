import os from 'node:os';
import { parse } from 'graphql';
import { DataSource } from 'typeorm';
import { Role } from '../../server/domain';
import { queryCost } from '../../server/graphql/limits';
import { createSchema } from '../../server/graphql/schema';
import { createServices } from '../../server/services';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOverWebSocket } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const FAN_OUT = `query ($n: Int) { sites(first: $n) { nodes { patients(first: 500) { nodes { joints { readings { grade } } } } } } }`;

describe('query cost limit', () => {
  const node = useTestNode();
  let admin: string;

  beforeAll(async () => {
    admin = await new Factory(node().services).token(Role.ADMIN);
  });

  it('estimates connections by `first` (variables included) and nested lists by 10', async () => {
    const schema = await createSchema(createServices(new DataSource({ type: 'postgres' }), { objectRoot: os.tmpdir() }));
    expect(queryCost(schema, parse('{ sites(first: 2) { nodes { code } } }'))).toBe(2 * (1 + 1));
    expect(queryCost(schema, parse('{ sites { totalCount } }'))).toBe(50 * 1);
    // patients(first: 3): 3 x (nodes: 1 + joints: 10 x (1 + level))
    expect(queryCost(schema, parse('{ patients(first: 3) { nodes { joints { level } } } }'))).toBe(3 * (1 + 10 * 2));
    expect(queryCost(schema, parse(FAN_OUT), { n: 500 })).toBeGreaterThan(1_000_000);
  });

  it('rejects an over-budget query with QUERY_TOO_COMPLEX before running it, over HTTP and graphql-ws', async () => {
    const before = node().queries.count;
    const http = await gql(node().url, admin, FAN_OUT, { n: 500 });
    expect(codeOf(http)).toBe('QUERY_TOO_COMPLEX');
    expect(http.errors?.[0].message).toMatch(/limit is 250000/);
    expect(node().queries.count - before).toBeLessThanOrEqual(1); // the token lookup at most (it may be cached)
    const ws = await gqlOverWebSocket(node().url, admin, FAN_OUT, { n: 500 });
    expect(codeOf(ws)).toBe('QUERY_TOO_COMPLEX');
  });

  it('runs the same query with small pages', async () => {
    const small = await gql(node().url, admin, FAN_OUT.replace('first: 500', 'first: 5'), { n: 5 });
    expect(small.errors).toBeUndefined();
  });
});
