import { spawn } from 'node:child_process';
import path from 'node:path';
import { ReaderRole, ReaderSlot, Role } from '../../server/domain';
import type { Site } from '../../server/entities';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const CREATE = `mutation ($input: CreateReaderInput!) { createReader(input: $input) { id code role slot siteId } }`;
const SET_SLOT = `mutation ($id: ID!, $slot: ReaderSlot) { setReaderSlot(readerId: $id, slot: $slot) { id slot } }`;

describe('reader slots', () => {
  const node = useTestNode();
  let factory: Factory;
  let east: Site;
  let west: Site;
  let admin: string;
  let coordinator: string;
  let westCoordinator: string;
  const create = (input: Record<string, unknown>, token = coordinator) =>
    gql(node().url, token, CREATE, { input: { role: 'READER', yearsOfExperience: 4, siteId: east.id, ...input } });

  beforeAll(async () => {
    factory = new Factory(node().services);
    east = await factory.site('EAST');
    west = await factory.site('WEST');
    admin = await factory.token(Role.ADMIN);
    coordinator = await factory.token(Role.COORDINATOR, { site: east });
    westCoordinator = await factory.token(Role.COORDINATOR, { site: west });
  });

  it('gives a site’s readers FIRST, then SECOND, then none, unless the creator names the slot', async () => {
    const slots = [];
    for (const code of ['EAST-R1', 'EAST-R2', 'EAST-R3']) slots.push((await create({ code })).data?.createReader.slot);
    expect(slots).toEqual(['FIRST', 'SECOND', null]);
    // Named: the first reader of WEST may be its SECOND; the next one then takes FIRST.
    expect((await create({ code: 'WEST-R2', siteId: west.id, slot: 'SECOND' }, westCoordinator)).data?.createReader.slot).toBe('SECOND');
    expect((await create({ code: 'WEST-R1', siteId: west.id }, westCoordinator)).data?.createReader.slot).toBe('FIRST');
  });

  it('refuses a slot that is taken (CONFLICT) and a slot for an adjudicator or senior (BAD_USER_INPUT)', async () => {
    expect(codeOf(await create({ code: 'EAST-R4', slot: 'FIRST' }))).toBe('CONFLICT');
    expect(codeOf(await create({ code: 'EAST-ADJ', role: 'ADJUDICATOR', slot: 'FIRST' }))).toBe('BAD_USER_INPUT');
    expect((await create({ code: 'EAST-SEN', role: 'SENIOR' })).data?.createReader.slot).toBeNull();
    const codes = await node().dataSource.query(`SELECT code FROM reader WHERE code IN ('EAST-R4', 'EAST-ADJ')`);
    expect(codes).toEqual([]);
  });

  it('keeps one FIRST and one SECOND among the central readers too (a site of their own)', async () => {
    const central = (code: string, slot?: string) => create({ code, siteId: null, ...(slot ? { slot } : {}) }, admin);
    expect((await central('CEN-R1')).data?.createReader).toMatchObject({ siteId: null, slot: 'FIRST' });
    expect(codeOf(await central('CEN-RX', 'FIRST'))).toBe('CONFLICT');
    // The database holds the rule even past the service: a second central FIRST is a unique violation.
    await expect(node().dataSource.query(`UPDATE reader SET slot = 'FIRST' WHERE code = 'CEN-RX' OR code = 'EAST-R3'`)).rejects.toThrow(/UQ_reader/);
  });

  it('moves a reader between slots: clear one to swap two; a held slot is a CONFLICT', async () => {
    const ids = Object.fromEntries(
      (await node().dataSource.query(`SELECT code, id FROM reader WHERE code LIKE 'EAST-%'`)).map((r: { code: string; id: string }) => [r.code, r.id]),
    );
    expect(codeOf(await gql(node().url, coordinator, SET_SLOT, { id: ids['EAST-R3'], slot: 'FIRST' }))).toBe('CONFLICT');
    await gqlOk(node().url, coordinator, SET_SLOT, { id: ids['EAST-R1'], slot: null });
    await gqlOk(node().url, coordinator, SET_SLOT, { id: ids['EAST-R2'], slot: 'FIRST' });
    await gqlOk(node().url, coordinator, SET_SLOT, { id: ids['EAST-R1'], slot: 'SECOND' });
    const listed = await gqlOk(node().url, coordinator, `{ readers(filter: { siteIds: ["${east.id}"], slots: [FIRST, SECOND] }) { nodes { code slot } } }`);
    expect(listed.readers.nodes.map((r: { code: string; slot: string }) => `${r.code}:${r.slot}`).sort()).toEqual(['EAST-R1:SECOND', 'EAST-R2:FIRST']);
    const audit = await node().dataSource.query(`SELECT details FROM audit_event WHERE action = 'setReaderSlot' ORDER BY created_at`);
    expect(audit.map((a: { details: unknown }) => a.details)).toEqual([
      { before: 'FIRST', after: null },
      { before: 'SECOND', after: 'FIRST' },
      { before: null, after: 'SECOND' },
    ]);
  });

  it('lets only the reader’s own coordinator or an admin move them, and only READER-role readers into a slot', async () => {
    const [r3] = await node().dataSource.query(`SELECT id FROM reader WHERE code = 'EAST-R3'`);
    const [senior] = await node().dataSource.query(`SELECT id FROM reader WHERE code = 'EAST-SEN'`);
    expect(codeOf(await gql(node().url, westCoordinator, SET_SLOT, { id: r3.id, slot: null }))).toBe('FORBIDDEN');
    expect(codeOf(await gql(node().url, await factory.token(Role.STATISTICIAN), SET_SLOT, { id: r3.id, slot: null }))).toBe('FORBIDDEN');
    expect(codeOf(await gql(node().url, coordinator, SET_SLOT, { id: senior.id, slot: 'SECOND' }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(node().url, admin, SET_SLOT, { id: '00000000-0000-4000-8000-000000000000', slot: 'FIRST' }))).toBe('NOT_FOUND');
  });

  it('are set on create from the CLI too', async () => {
    const main = path.resolve(__dirname, '../../dist/server/main.js');
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [main, 'create-reader', ...args], {
          env: { ...process.env, DATABASE_URL: node().database.url },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (out += c.toString()));
        child.once('exit', (code) => resolve({ code, out }));
      });
    const created = await run(['--code', 'NORTH-R2', '--role', 'READER', '--years', '7', '--slot', 'SECOND']);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.out.trim().split('\n').pop() as string)).toMatchObject({ code: 'NORTH-R2', role: 'READER', slot: 'SECOND' });
    const refused = await run(['--code', 'WEST-R9', '--role', 'READER', '--years', '7', '--site', 'WEST', '--slot', 'FIRST']);
    expect(refused.code).toBe(1);
    expect(refused.out).toMatch(/already has its FIRST reader/);
    expect((await run(['--code', 'X', '--role', 'READER', '--years', '7', '--slot', 'THIRD'])).code).toBe(1);
    const central = await node().services.readers.listReaders(factory.admin, { roles: [ReaderRole.READER], slots: [ReaderSlot.SECOND] }, { first: 500 });
    expect(central.nodes.filter((r) => r.siteId === null).map((r) => r.code)).toEqual(['NORTH-R2']);
  }, 180_000); // three CLI processes, each opening the node
});
