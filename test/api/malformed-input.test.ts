import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  astFromValue,
  buildSchema,
  getNamedType,
  isCompositeType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  print,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLObjectType,
} from 'graphql';
import { prng } from '../../server/demo/phantoms';
import { Role } from '../../server/domain';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOverWebSocket, type GraphQLResponse } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

/**
 * Malformed input, generated from the committed schema so that a new argument is covered the day it is added:
 * every `ID` position (argument, input field, list item, at any depth, on root and nested fields) with every class
 * of non-uuid, and every String position with a NUL character, by variables and by literals. Each must answer
 * BAD_USER_INPUT before anything runs; so must malformed cursors. PostgreSQL would refuse these values with an
 * error the client saw as INTERNAL_SERVER_ERROR.
 */
const schema = buildSchema(readFileSync(path.resolve(__dirname, '../../schema/schema.graphql'), 'utf8'));
const VALID_ID = '00000000-0000-4000-8000-000000000000';

type Step = string | number;
interface Position {
  kind: 'ID' | 'String';
  /** Argument name, then input fields and list indexes. */
  path: Step[];
}

function positionsOf(type: GraphQLInputType, prefix: Step[], out: Position[], depth = 0): void {
  if (depth > 6) return;
  if (isNonNullType(type)) return positionsOf(type.ofType, prefix, out, depth);
  if (isListType(type)) return positionsOf(type.ofType, [...prefix, 0], out, depth + 1);
  if (isInputObjectType(type)) {
    for (const field of Object.values(type.getFields())) positionsOf(field.type, [...prefix, field.name], out, depth + 1);
    return;
  }
  const name = getNamedType(type).name;
  if (name === 'ID' || name === 'String') out.push({ kind: name, path: prefix });
}

/** A value the type accepts, with every required input field filled (the operation must pass validation). */
function validValue(type: GraphQLInputType): unknown {
  if (isNonNullType(type)) return validValue(type.ofType);
  if (isListType(type)) return [validValue(type.ofType)];
  if (isInputObjectType(type)) {
    return Object.fromEntries(
      Object.values(type.getFields())
        .filter((f) => isNonNullType(f.type) && f.defaultValue === undefined)
        .map((f) => [f.name, validValue(f.type)]),
    );
  }
  if (isEnumType(type)) return type.getValues()[0].value;
  return ({ ID: VALID_ID, String: 'x', Int: 1, Float: 0.9, Boolean: true, DateTimeISO: '2099-01-01T00:00:00Z', JSONObject: {} } as Record<string, unknown>)[
    type.name
  ];
}

/** `base` with `bad` at `path` below `type`, creating valid intermediate objects and lists on the way. */
function withValueAt(type: GraphQLInputType, base: unknown, path: Step[], bad: unknown): unknown {
  if (!path.length) return bad;
  if (isNonNullType(type)) return withValueAt(type.ofType, base, path, bad);
  const [step, ...rest] = path;
  if (isListType(type)) {
    const list = Array.isArray(base) && base.length ? [...base] : [validValue(type.ofType)];
    list[step as number] = withValueAt(type.ofType, list[step as number], rest, bad);
    return list;
  }
  if (isInputObjectType(type)) {
    const object = { ...((base as Record<string, unknown>) ?? validValue(type)) } as Record<string, unknown>;
    const field = type.getFields()[step as string];
    object[field.name] = withValueAt(field.type, object[field.name] ?? validValue(field.type), rest, bad);
    return object;
  }
  throw new Error(`cannot descend into ${String(type)}`);
}

/** A route of argument-free fields from Query to each object type (connections through `nodes`, pages of one). */
function routes(): Map<string, string[]> {
  const found = new Map<string, string[]>([['Query', []]]);
  const queue: GraphQLObjectType[] = [schema.getQueryType()!];
  while (queue.length) {
    const type = queue.shift()!;
    for (const field of Object.values(type.getFields())) {
      if (field.args.some((a) => isNonNullType(a.type) && a.defaultValue === undefined)) continue;
      const target = getNamedType(field.type);
      if (!isObjectType(target) || found.has(target.name)) continue;
      const step = field.args.some((a) => a.name === 'first') ? `${field.name}(first: 1)` : field.name;
      found.set(target.name, [...found.get(type.name)!, step]);
      queue.push(target);
    }
  }
  return found;
}

interface Case {
  label: string;
  operation: 'query' | 'mutation' | 'subscription';
  field: GraphQLField<unknown, unknown>;
  /** Fields from the root down to the one that takes the argument (empty for a root field). */
  route: string[];
  position: Position;
}

function cases(): Case[] {
  const all: Case[] = [];
  const add = (operation: Case['operation'], route: string[], field: GraphQLField<unknown, unknown>) => {
    for (const arg of field.args) {
      const positions: Position[] = [];
      positionsOf(arg.type, [arg.name], positions);
      for (const position of positions) {
        all.push({ label: `${[...route, field.name].join('.')}(${position.path.join('.')})`, operation, field, route, position });
      }
    }
  };
  for (const field of Object.values(schema.getMutationType()!.getFields())) add('mutation', [], field);
  for (const field of Object.values(schema.getSubscriptionType()!.getFields())) add('subscription', [], field);
  for (const [typeName, route] of routes()) {
    for (const field of Object.values((schema.getType(typeName) as GraphQLObjectType).getFields())) add('query', route, field);
  }
  return all;
}

/** The document and variables of one case: every required argument valid, the one under test set to `bad`. */
function request(c: Case, bad: unknown, literal: boolean): { query: string; variables: Record<string, unknown> } {
  const variables: Record<string, unknown> = {};
  const definitions: string[] = [];
  const args: string[] = [];
  for (const arg of c.field.args) {
    const isTarget = arg.name === c.position.path[0];
    if (!isTarget && !(isNonNullType(arg.type) && arg.defaultValue === undefined)) continue;
    const value = isTarget ? withValueAt(arg.type, validValue(arg.type), c.position.path.slice(1), bad) : validValue(arg.type);
    if (literal) {
      args.push(`${arg.name}: ${print(astFromValue(value, arg.type)!)}`);
    } else {
      variables[arg.name] = value;
      definitions.push(`$${arg.name}: ${String(arg.type)}`);
      args.push(`${arg.name}: $${arg.name}`);
    }
  }
  const selection = isCompositeType(getNamedType(c.field.type)) ? ' { __typename }' : '';
  let body = `${c.field.name}(${args.join(', ')})${selection}`;
  for (const step of [...c.route].reverse()) body = `${step} { ${body} }`;
  return { query: `${c.operation}${definitions.length ? ` (${definitions.join(', ')})` : ''} { ${body} }`, variables };
}

/** Seeded members of each class of malformed `ID`. */
function malformedIds(random: () => number): Array<[string, string]> {
  const printable = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(random() * 95))).join('');
  const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(random() * 16)]).join('');
  const uuid = `${hex(8)}-${hex(4)}-4${hex(3)}-8${hex(3)}-${hex(12)}`;
  const at = (s: string) => Math.floor(random() * (s.length + 1));
  const nulAt = at(uuid);
  return [
    ['printable text', printable(1 + Math.floor(random() * 40))],
    ['a number', String(Math.floor(random() * 1e9))],
    ['an empty string', ''],
    ['a uuid without hyphens', uuid.replace(/-/g, '')],
    ['a uuid in braces', `{${uuid}}`],
    ['a uuid and one more character', `${uuid}${hex(1)}`],
    ['a uuid short of one character', uuid.slice(0, -1)],
    ['a uuid shape with a non-hex digit', `${uuid.slice(0, 9)}g${uuid.slice(10)}`],
    ['a uuid with a NUL inside', `${uuid.slice(0, nulAt)}\0${uuid.slice(nulAt)}`],
    ['an over-long string', `${uuid}${'a'.repeat(10_000 + Math.floor(random() * 10_000))}`],
  ];
}

function withNul(random: () => number): string {
  const text = Array.from({ length: 1 + Math.floor(random() * 30) }, () => String.fromCharCode(32 + Math.floor(random() * 95))).join('');
  const at = Math.floor(random() * (text.length + 1));
  return `${text.slice(0, at)}\0${text.slice(at)}`;
}

describe('malformed ids, NUL characters and cursors answer BAD_USER_INPUT', () => {
  const node = useTestNode();
  let admin: string;
  const all = cases();
  const idCases = all.filter((c) => c.position.kind === 'ID');
  const stringCases = all.filter((c) => c.position.kind === 'String');

  /** Rows in every table of the node: nothing may be written by a refused request. */
  const rowCounts = async (): Promise<Record<string, number>> => {
    const tables: Array<{ table_name: string }> = await node().dataSource.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'migrations'`,
    );
    const counts: Record<string, number> = {};
    for (const { table_name } of tables) counts[table_name] = (await node().dataSource.query(`SELECT count(*)::int AS n FROM "${table_name}"`))[0].n;
    return counts;
  };

  async function send(c: Case, bad: unknown, literal: boolean): Promise<GraphQLResponse> {
    const { query, variables } = request(c, bad, literal);
    return c.operation === 'subscription' ? gqlOverWebSocket(node().url, admin, query, variables) : gql(node().url, admin, query, variables);
  }

  beforeAll(async () => {
    const factory = new Factory(node().services);
    admin = await factory.token(Role.ADMIN);
    await factory.site();
  });

  it('finds the positions to test in the schema (root, nested and input-object arguments of every operation type)', () => {
    const labels = idCases.map((c) => c.label);
    for (const expected of [
      'site(id)',
      'revokeApiToken(id)',
      'createApiToken(input.siteId)',
      'patients(filter.siteIds.0)',
      'patients(filter.split.splitVersionId)',
      'confirmReferenceGrades(input.ids.0)',
      'jobProgress(jobId)',
      'ingestProgress(siteId)',
      'compare(input.scope.siteIds.0)',
    ]) {
      expect(labels).toContain(expected);
    }
    expect(idCases.length).toBeGreaterThan(50);
    expect(stringCases.some((c) => c.route.length > 0 && c.position.path[0] === 'after')).toBe(true);
  });

  it('refuses every class of malformed ID at every ID position, by variables and by literals, and writes nothing', async () => {
    const random = prng(9001);
    const before = await rowCounts();
    const wrong: string[] = [];
    // Each position gets four of the ten classes, rotating, so every class meets every kind of position (all ten at
    // all 77 positions are about 1500 requests: twice the time, no code path more).
    for (const [i, c] of idCases.entries()) {
      const classes = malformedIds(random);
      for (const [klass, bad] of [0, 1, 2, 3].map((k) => classes[(i * 3 + k) % classes.length])) {
        for (const literal of [false, true]) {
          const response = await send(c, bad, literal);
          if (codeOf(response) !== 'BAD_USER_INPUT' || response.data)
            wrong.push(`${c.label} ${klass} ${literal ? 'literal' : 'variable'}: ${JSON.stringify(response).slice(0, 300)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(await rowCounts()).toEqual(before);
  });

  it('refuses a NUL character in every String argument and input field, by variables and by literals, and writes nothing', async () => {
    const random = prng(9002);
    const before = await rowCounts();
    const wrong: string[] = [];
    for (const c of stringCases) {
      for (const literal of [false, true]) {
        const response = await send(c, withNul(random), literal);
        if (codeOf(response) !== 'BAD_USER_INPUT' || response.data)
          wrong.push(`${c.label} ${literal ? 'literal' : 'variable'}: ${JSON.stringify(response).slice(0, 300)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(await rowCounts()).toEqual(before);
  });

  it('answers an over-long value in every String argument and input field without a server error', async () => {
    const random = prng(9005);
    const wrong: string[] = [];
    for (const c of stringCases) {
      const long = Array.from({ length: 70_000 + Math.floor(random() * 30_000) }, () => String.fromCharCode(0x41 + Math.floor(random() * 26))).join('');
      const response = await send(c, long, false);
      if (codeOf(response) === 'INTERNAL_SERVER_ERROR') wrong.push(`${c.label}: ${JSON.stringify(response).slice(0, 300)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('names the argument and the property like class-validator does, without echoing the value', async () => {
    const secret = `${VALID_ID}\0leak`;
    const response = await gql(node().url, admin, `query ($f: PatientFilter) { patients(filter: $f) { totalCount } }`, { f: { siteIds: [VALID_ID, secret] } });
    expect(codeOf(response)).toBe('BAD_USER_INPUT');
    expect(response.errors![0].extensions).toMatchObject({
      argument: 'filter',
      validationErrors: [{ property: 'siteIds', constraints: ['filter.siteIds[1] must be a UUID'] }],
    });
    expect(JSON.stringify(response)).not.toContain('leak');
    expect(response).not.toHaveProperty('data');
  });

  describe('cursors', () => {
    const random = prng(9003);
    const garbage = (n: number) => Array.from({ length: n }, () => String.fromCharCode(33 + Math.floor(random() * 94))).join('');
    const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
    const malformed: Array<[string, string]> = [
      ['printable garbage', garbage(1 + Math.floor(random() * 30))],
      ['base64url of a non-uuid', b64(garbage(10))],
      ['base64url of a uuid with a tail', b64(`${VALID_ID}${garbage(3)}`)],
      ['base64url of a uuid short of one character', b64(VALID_ID.slice(0, -1))],
      ['an over-long cursor', b64(VALID_ID) + 'A'.repeat(100_000)],
      ['a cursor with a NUL', `${b64(VALID_ID)}\0`],
    ];
    const rootConnections = Object.values(schema.getQueryType()!.getFields()).filter(
      (f) => f.args.some((a) => a.name === 'after') && !f.args.some((a) => isNonNullType(a.type) && a.defaultValue === undefined),
    );

    it('covers every root connection that takes no required argument', () => {
      expect(rootConnections.map((f) => f.name)).toEqual(
        expect.arrayContaining(['sites', 'patients', 'joints', 'readings', 'apiTokens', 'auditEvents', 'jobs']),
      );
    });

    it.each(malformed)('refuses %s on every root connection and on a nested one', async (_label, after) => {
      const wrong: string[] = [];
      for (const field of rootConnections) {
        const response = await gql(node().url, admin, `query ($after: String) { ${field.name}(after: $after) { totalCount } }`, { after });
        if (codeOf(response) !== 'BAD_USER_INPUT') wrong.push(`${field.name}: ${JSON.stringify(response).slice(0, 300)}`);
      }
      const nested = await gql(node().url, admin, `query ($after: String) { sites(first: 1) { nodes { patients(after: $after) { totalCount } } } }`, { after });
      if (codeOf(nested) !== 'BAD_USER_INPUT') wrong.push(`sites.nodes.patients: ${JSON.stringify(nested).slice(0, 300)}`);
      expect(wrong).toEqual([]);
    });
  });

  describe('DICOMweb paths and parameters', () => {
    const random = prng(9004);
    const digits = (n: number) => Array.from({ length: n }, () => String(Math.floor(random() * 10))).join('');
    const uid = () => `1.2.${digits(6)}.${digits(4)}`;
    const malformedUids: Array<[string, string]> = [
      ['a UID with a NUL', `${uid()}\0`],
      ['a UID with letters', `${uid()}.abc`],
      ['an over-long UID', `1.${digits(80)}`],
      ['an empty component', `${uid()}..1`],
    ];

    it.each(malformedUids)('answers WADO-RS with %s in any path segment 404 NOT_FOUND, not a server error', async (_label, bad) => {
      for (const segments of [
        [bad, uid(), uid()],
        [uid(), bad, uid()],
        [uid(), uid(), bad],
      ]) {
        const [study, series, instance] = segments.map(encodeURIComponent);
        const response = await fetch(`${node().url}/dicomweb/studies/${study}/series/${series}/instances/${instance}`, {
          headers: { authorization: `Bearer ${admin}` },
        });
        expect(response.status).toBe(404);
        expect(codeOf((await response.json()) as GraphQLResponse)).toBe('NOT_FOUND');
      }
    });

    it.each([
      ['a site code with a NUL', `S1\0`],
      ['an over-long site code', 'S'.repeat(33 + Math.floor(random() * 1000))],
    ])('answers STOW-RS to %s 400 BAD_USER_INPUT, not a server error', async (_label, site) => {
      const response = await fetch(`${node().url}/dicomweb/studies?site=${encodeURIComponent(site)}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'multipart/related; type="application/dicom"; boundary=x' },
        body: '--x--',
      });
      expect(response.status).toBe(400);
      expect(codeOf((await response.json()) as GraphQLResponse)).toBe('BAD_USER_INPUT');
    });
  });
});
