import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { siteCommand, SiteCommandError } from '../../../server/cli/site';
import { NodeIdentity } from '../../../server/federation/identity';
import { addSite, registryEntryFor, SiteRegistryError } from '../../../server/federation/site-registry';
import { gqlOk } from '../../helpers/graphql-client';
import { studyFlowAggregate } from './cases';
import { ScriptedNode } from './hub-harness';
import { filePassed } from '../../helpers/lifecycle';
import { createTestDatabase, type TestDatabase } from '../../helpers/test-db';
import { Gen } from '../generators';

const MAIN = path.resolve(__dirname, '../../../dist/server/main.js');

/** Runs the built CLI; with `until`, sends SIGTERM once the output matches it. */
function cli(args: string[], env: NodeJS.ProcessEnv, until?: RegExp): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (until?.test(out)) child.kill('SIGTERM');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out }));
  });
}

let dir: string;
const entryFile = async (code: string, identity = NodeIdentity.generate()) => {
  const file = path.join(dir, `${code}-${identity.public.keyId.slice(7, 15).replace(/[/+]/g, '_')}.entry`);
  await writeFile(
    file,
    JSON.stringify(registryEntryFor(identity, { code, name: `${code} hospital`, contact: { name: 'Admin', email: `admin@${code.toLowerCase()}.example` } })),
  );
  return { file, identity };
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'facet-hub-cli-'));
});
afterAll(async () => {
  if (filePassed()) await rm(dir, { recursive: true, force: true });
});

describe('facet site', () => {
  it('adds, lists, rotates and removes members, refusing duplicates and unknown codes', async () => {
    const sites = await mkdtemp(path.join(dir, 'sites-'));
    const gen = new Gen(41);
    const codes = gen.shuffle(['NORTH', 'SOUTH', 'HARBOUR', 'EAST', 'WEST']).slice(0, gen.int(2, 5));
    const added = new Map<string, NodeIdentity>();
    for (const code of codes) {
      const { file, identity } = await entryFile(code);
      expect(await siteCommand(sites, ['add', file])).toBe(
        `added ${code}\t${identity.public.keyId}\t${code} hospital\tAdmin <admin@${code.toLowerCase()}.example>\n`,
      );
      added.set(code, identity);
    }
    const listed = await siteCommand(sites, ['list']);
    expect(
      listed
        .split('\n')
        .slice(1, -1)
        .map((l) => l.split('\t').slice(0, 2)),
    ).toEqual([...added].sort().map(([code, id]) => [code, id.public.keyId]));
    // The same code again, or the same key under another code: refused, naming file and field.
    const again = await entryFile(codes[0]);
    await expect(siteCommand(sites, ['add', again.file])).rejects.toThrow(SiteRegistryError);
    const sameKey = await entryFile('OTHER', added.get(codes[0]));
    await expect(siteCommand(sites, ['add', sameKey.file])).rejects.toThrow(/DUPLICATE|already used/);
    // --replace rotates the keys.
    expect(await siteCommand(sites, ['add', again.file, '--replace'])).toMatch(
      new RegExp(`^replaced ${codes[0]}\t${again.identity.public.keyId.replace(/[+/]/g, '\\$&')}`),
    );
    expect(await siteCommand(sites, ['remove', codes[1]])).toMatch(new RegExp(`^removed ${codes[1]}\t`));
    expect(await siteCommand(sites, ['list'])).not.toMatch(new RegExp(`^${codes[1]}\t`, 'm'));
    await expect(siteCommand(sites, ['remove', 'NOWHERE'])).rejects.toThrow(/no site NOWHERE/);
  });

  it('makes the registry folder with a new hub’s first member, and refuses a bad entry before making anything', async () => {
    const sites = path.join(dir, 'new-hub', 'sites');
    const bad = path.join(dir, 'bad.entry');
    await writeFile(bad, JSON.stringify({ code: 'NORTH' }));
    await expect(siteCommand(sites, ['add', bad])).rejects.toThrow(SiteRegistryError);
    await expect(stat(sites)).rejects.toMatchObject({ code: 'ENOENT' });
    const { file, identity } = await entryFile('NORTH');
    expect(await siteCommand(sites, ['add', file])).toMatch(new RegExp(`^added NORTH\t${identity.public.keyId.replace(/[+/]/g, '\\$&')}`));
    expect(await siteCommand(sites, ['list'])).toMatch(/^NORTH\t/m);
  });

  it.each([
    [['add'], /usage/],
    [['add', 'a', 'b'], /usage/],
    [['remove'], /usage/],
    [['list', 'x'], /usage/],
    [['list', '--replace'], /unknown option/],
    [['frobnicate'], /usage/],
  ])('refuses %j', async (argv, message) => {
    await expect(siteCommand(dir, argv)).rejects.toThrow(SiteCommandError);
    await expect(siteCommand(dir, argv)).rejects.toThrow(message);
  });

  it('refuses an entry file that is not JSON', async () => {
    const file = path.join(dir, 'broken.entry');
    await writeFile(file, '{ "code": ');
    await expect(siteCommand(dir, ['add', file])).rejects.toThrow(/cannot read .* as JSON/);
  });
});

describe('the hub from the command line (built CLI)', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    if (filePassed()) await database?.drop();
  });

  it('prints the hub identity, the same on every call, from a 0600 key file', async () => {
    const data = await mkdtemp(path.join(dir, 'data-'));
    const first = await cli(['hub', 'identity'], { FACET_DATA_DIR: data });
    expect(first.code).toBe(0);
    const printed = JSON.parse(first.out);
    expect(printed).toMatchObject({ signer: 'hub', signingKey: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/), keyId: expect.stringMatching(/^SHA256:/) });
    expect(JSON.parse((await cli(['hub', 'identity'], { FACET_DATA_DIR: data })).out)).toEqual(printed);
    expect((await stat(path.join(data, 'federation', 'identity.json'))).mode & 0o777).toBe(0o600);
  });

  it('refuses to start a hub on a broken registry, listing every problem', async () => {
    const sites = await mkdtemp(path.join(dir, 'broken-sites-'));
    await writeFile(path.join(sites, 'NORTH.json'), '{ not json');
    await writeFile(
      path.join(sites, 'SOUTH.json'),
      JSON.stringify({ code: 'SOUTH', name: 'South', signingKey: 'short', agreementKey: 'short', contact: { name: 'A', email: 'no-at-sign' } }),
    );
    const run = await cli(['serve', '--hub'], {
      FACET_SITES_DIR: sites,
      DATABASE_URL: database.url,
      FACET_DATA_DIR: await mkdtemp(path.join(dir, 'data-')),
      PORT: '0',
    });
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/Refusing to start the hub: the registry .* has 4 problem\(s\)/);
    expect(run.out).toMatch(/NORTH\.json: NOT_JSON/);
    expect(run.out).toMatch(/SOUTH\.json \(signingKey\): INVALID_FIELD/);
    expect(run.out).toMatch(/SOUTH\.json \(agreementKey\): INVALID_FIELD/);
    expect(run.out).toMatch(/SOUTH\.json \(contact\.email\): INVALID_FIELD/);
  });

  it('starts a hub with FACET_MODE=hub on a valid registry, naming its members and signing key', async () => {
    const sites = await mkdtemp(path.join(dir, 'sites-'));
    const north = await entryFile('NORTH');
    expect((await cli(['site', 'add', north.file], { FACET_SITES_DIR: sites })).code).toBe(0);
    expect((await cli(['site', 'list'], { FACET_SITES_DIR: sites })).out).toMatch(/^NORTH\tSHA256:/m);
    const data = await mkdtemp(path.join(dir, 'data-'));
    const run = await cli(
      ['serve'],
      { FACET_MODE: 'hub', FACET_SITES_DIR: sites, DATABASE_URL: database.url, FACET_DATA_DIR: data, PORT: '0' },
      /Press Ctrl-C/,
    );
    expect(run.out).toMatch(/Facet hub is running/);
    expect(run.out).toMatch(/Members: +NORTH/);
    // It works its deadline jobs itself: partial answers come without a separate worker.
    expect(run.out).toMatch(/"worker ready".*"federation-deadline"/);
    const key = JSON.parse((await cli(['hub', 'identity'], { FACET_DATA_DIR: data })).out).signingKey;
    expect(run.out).toContain(`Hub signing key (nodes set FACET_HUB_SIGNING_KEY to it): ${key}`);
    expect(run.code).toBe(0);
  });

  it('serves scripted nodes from a separate hub process: a query claimed, answered and complete', async () => {
    const sites = await mkdtemp(path.join(dir, 'sites-'));
    const north = new ScriptedNode('NORTH');
    await addSite(sites, registryEntryFor(north.identity, { code: 'NORTH', name: 'North', contact: { name: 'A', email: 'a@north.example' } }));
    const data = await mkdtemp(path.join(dir, 'data-'));
    const env = { FACET_SITES_DIR: sites, DATABASE_URL: database.url, FACET_DATA_DIR: data, PORT: '0' };
    const token = (await cli(['create-token', '--role', 'STATISTICIAN', '--name', 'researcher'], env)).out.trim().split('\n').at(-1)!;
    const hubProcess = spawn(process.execPath, [MAIN, 'serve', '--hub'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        hubProcess.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const found = /GraphQL: +(http:\/\/[^/\s]+)\/graphql/.exec(out);
          if (found && /Press Ctrl-C/.test(out)) resolve(found[1]);
        });
        hubProcess.once('exit', (code) => reject(new Error(`the hub exited (${code}): ${out}`)));
      });
      const hubKey = /Hub signing key \(nodes set FACET_HUB_SIGNING_KEY to it\): (\S+)/.exec(out)![1];
      north.connect(url, hubKey);
      const started = await gqlOk(url, token, `mutation { startFederatedQuery(input: { kind: STUDY_FLOW }) { id status } }`);
      const [task] = (await north.claim(5)).tasks;
      expect(task.taskId).toBe(started.startFederatedQuery.id);
      expect(await north.submit(north.sign(north.resultPayload(task, { aggregate: studyFlowAggregate(new Gen(61), 'NORTH') })))).toMatchObject({
        accepted: true,
      });
      const read = await gqlOk(url, token, `query($id: ID!) { federatedQuery(id: $id) { status answer { studyFlow { pooled enrolled } } } }`, {
        id: task.taskId,
      });
      expect(read.federatedQuery.status).toBe('COMPLETE');
    } finally {
      await north.close();
      hubProcess.kill('SIGTERM');
      await new Promise((resolve) => hubProcess.once('exit', resolve));
    }
  });

  it('exits non-zero from verify without its options', async () => {
    const run = await cli(['verify', 'answer.json'], {});
    expect(run.code).not.toBe(0);
    expect(run.out).toMatch(/usage: facet verify/);
  });
});
