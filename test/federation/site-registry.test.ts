import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EnvelopeKind, signEnvelope, verifyEnvelope } from '../../server/federation/envelope';
import { NodeIdentity } from '../../server/federation/identity';
import {
  addSite,
  CONTACT_FIELDS,
  EMAIL_PATTERN,
  listSites,
  loadSiteRegistry,
  NAME_MAX_LENGTH,
  PUBLIC_KEY_PATTERN,
  registryEntryFor,
  removeSite,
  SITE_CODE_PATTERN,
  SITE_FIELDS,
  SiteRegistryError,
  type RegistryProblem,
  type SiteEntry,
} from '../../server/federation/site-registry';
import { Gen } from './generators';

const REPO_SITES = path.resolve(__dirname, '../../sites');

function entry(code: string, identity = NodeIdentity.generate()): SiteEntry {
  return registryEntryFor(identity, { code, name: `${code} Hospital`, contact: { name: 'Node Admin', email: `admin@${code.toLowerCase()}.example` } });
}

async function problemsOf(promise: Promise<unknown>): Promise<RegistryProblem[]> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SiteRegistryError) return error.problems;
    throw error;
  }
  throw new Error('expected a SiteRegistryError');
}

describe('site registry', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facet-sites-'));
    await fs.copyFile(path.join(REPO_SITES, 'sites.schema.json'), path.join(dir, 'sites.schema.json'));
    await fs.writeFile(path.join(dir, 'README.md'), '# not a site\n');
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it("ships empty in the repository, with a schema whose rules are the loader's", async () => {
    expect((await loadSiteRegistry(REPO_SITES)).sites).toEqual([]);
    const schema = JSON.parse(readFileSync(path.join(REPO_SITES, 'sites.schema.json'), 'utf8'));
    expect(schema.required).toEqual([...SITE_FIELDS]);
    expect(Object.keys(schema.properties).filter((k) => k !== '$schema')).toEqual([...SITE_FIELDS]);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.code.pattern).toBe(SITE_CODE_PATTERN);
    expect(schema.properties.signingKey.pattern).toBe(PUBLIC_KEY_PATTERN);
    expect(schema.properties.agreementKey.pattern).toBe(PUBLIC_KEY_PATTERN);
    expect(schema.properties.name.maxLength).toBe(NAME_MAX_LENGTH);
    expect(schema.properties.contact.required).toEqual([...CONTACT_FIELDS]);
    expect(schema.properties.contact.additionalProperties).toBe(false);
    expect(schema.properties.contact.properties.email.pattern).toBe(EMAIL_PATTERN);
  });

  it('adds, lists and removes sites, and the loaded keys verify what each site signs', async () => {
    const identities = [NodeIdentity.generate(), NodeIdentity.generate(), NodeIdentity.generate()];
    const codes = ['VALLEY', 'NORTH', 'HARBOUR'];
    for (const [i, code] of codes.entries()) expect(await addSite(dir, entry(code, identities[i]))).toEqual(entry(code, identities[i]));
    expect((await listSites(dir)).map((s) => s.code)).toEqual(['HARBOUR', 'NORTH', 'VALLEY']);
    expect(JSON.parse(await fs.readFile(path.join(dir, 'NORTH.json'), 'utf8'))).toEqual(entry('NORTH', identities[1]));

    const registry = await loadSiteRegistry(dir);
    const signed = signEnvelope(identities[1], { kind: EnvelopeKind.CLAIM, signer: 'NORTH', audience: 'hub', payload: { maxTasks: 4 } });
    expect(verifyEnvelope(signed, { kind: EnvelopeKind.CLAIM, audience: 'hub', keys: registry.signingKeyOf })).toMatchObject({ ok: true });
    // VALLEY's key cannot speak for NORTH.
    const impostor = signEnvelope(identities[0], { kind: EnvelopeKind.CLAIM, signer: 'NORTH', audience: 'hub', payload: { maxTasks: 4 } });
    expect(verifyEnvelope(impostor, { kind: EnvelopeKind.CLAIM, audience: 'hub', keys: registry.signingKeyOf })).toMatchObject({
      ok: false,
      code: 'UNKNOWN_SIGNER',
    });

    expect(await removeSite(dir, 'NORTH')).toEqual(entry('NORTH', identities[1]));
    expect((await listSites(dir)).map((s) => s.code)).toEqual(['HARBOUR', 'VALLEY']);
    // A removed site's envelopes no longer verify.
    expect(verifyEnvelope(signed, { kind: EnvelopeKind.CLAIM, audience: 'hub', keys: (await loadSiteRegistry(dir)).signingKeyOf })).toMatchObject({
      code: 'UNKNOWN_SIGNER',
    });
    expect((await fs.readdir(dir)).sort()).toEqual(['HARBOUR.json', 'README.md', 'VALLEY.json', 'sites.schema.json']);
  });

  it('refuses a second site with the same code (letter case ignored) or the same key, and leaves the registry as it was', async () => {
    const north = NodeIdentity.generate();
    await addSite(dir, entry('NORTH', north));
    const before = (await fs.readdir(dir)).sort();
    expect(await problemsOf(addSite(dir, entry('NORTH')))).toMatchObject([{ file: 'NORTH.json', field: 'code', code: 'DUPLICATE_CODE' }]);
    expect(await problemsOf(addSite(dir, entry('north')))).toMatchObject([{ file: 'north.json', field: 'code', code: 'DUPLICATE_CODE' }]);
    expect(await problemsOf(addSite(dir, entry('SOUTH', north)))).toMatchObject([
      { file: 'SOUTH.json', field: 'signingKey', code: 'DUPLICATE_KEY' },
      { file: 'SOUTH.json', field: 'agreementKey', code: 'DUPLICATE_KEY' },
    ]);
    expect((await fs.readdir(dir)).sort()).toEqual(before);
  });

  it('replaces a site on request (key rotation), and only then', async () => {
    await addSite(dir, entry('NORTH'));
    const rotated = entry('NORTH');
    expect(await addSite(dir, rotated, { replace: true })).toEqual(rotated);
    expect(await listSites(dir)).toEqual([rotated]);
  });

  it('adds one of several racing writers of one code', async () => {
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => addSite(dir, entry('NORTH'))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(SiteRegistryError);
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(await listSites(dir)).toHaveLength(1);
  });

  it('refuses to remove a site it does not hold (NOT_FOUND)', async () => {
    expect(await problemsOf(removeSite(dir, 'NOWHERE'))).toMatchObject([{ file: 'NOWHERE.json', code: 'NOT_FOUND' }]);
  });

  /** Mutations of a valid entry, each breaking one rule, and the problem it must give. */
  const breakers: [string, (e: Record<string, any>) => unknown, Partial<RegistryProblem>][] = [
    ['a missing code', ({ code: _c, ...e }) => e, { field: 'code', code: 'MISSING_FIELD' }],
    ['a code with a space', (e) => ({ ...e, code: 'NORTH WING' }), { field: 'code', code: 'INVALID_FIELD' }],
    ['a code of 33 characters', (e) => ({ ...e, code: 'N'.repeat(33) }), { field: 'code', code: 'INVALID_FIELD' }],
    ['a numeric name', (e) => ({ ...e, name: 7 }), { field: 'name', code: 'INVALID_FIELD' }],
    ['a blank name', (e) => ({ ...e, name: '   ' }), { field: 'name', code: 'INVALID_FIELD' }],
    ['a name too long', (e) => ({ ...e, name: 'x'.repeat(NAME_MAX_LENGTH + 1) }), { field: 'name', code: 'INVALID_FIELD' }],
    ['a missing signing key', ({ signingKey: _k, ...e }) => e, { field: 'signingKey', code: 'MISSING_FIELD' }],
    ['a 31-byte signing key', (e) => ({ ...e, signingKey: Buffer.alloc(31).toString('base64') }), { field: 'signingKey', code: 'INVALID_FIELD' }],
    ['a PEM agreement key', (e) => ({ ...e, agreementKey: '-----BEGIN PUBLIC KEY-----' }), { field: 'agreementKey', code: 'INVALID_FIELD' }],
    ['a low-order agreement key', (e) => ({ ...e, agreementKey: Buffer.alloc(32).toString('base64') }), { field: 'agreementKey', code: 'INVALID_FIELD' }],
    ['a missing contact', ({ contact: _c, ...e }) => e, { field: 'contact', code: 'MISSING_FIELD' }],
    ['a contact that is a string', (e) => ({ ...e, contact: 'admin@north.example' }), { field: 'contact', code: 'INVALID_FIELD' }],
    ['a contact without e-mail', (e) => ({ ...e, contact: { name: 'A' } }), { field: 'contact.email', code: 'MISSING_FIELD' }],
    ['a contact e-mail without domain', (e) => ({ ...e, contact: { ...e.contact, email: 'admin@' } }), { field: 'contact.email', code: 'INVALID_FIELD' }],
    ['an unknown contact field', (e) => ({ ...e, contact: { ...e.contact, phone: '1' } }), { field: 'contact.phone', code: 'UNKNOWN_FIELD' }],
    ['an unknown field', (e) => ({ ...e, publicKey: e.signingKey }), { field: 'publicKey', code: 'UNKNOWN_FIELD' }],
    ['an array', () => [], { field: null, code: 'INVALID_FIELD' }],
  ];

  it.each(breakers)('refuses a file with %s, naming the file and the field', async (_what, breakEntry, expected) => {
    await addSite(dir, entry('HARBOUR'));
    await fs.writeFile(path.join(dir, 'NORTH.json'), JSON.stringify(breakEntry(entry('NORTH'))));
    expect(await problemsOf(loadSiteRegistry(dir))).toEqual([expect.objectContaining({ file: 'NORTH.json', ...expected })]);
  });

  it('lists every problem of every file at once (generated broken registries)', async () => {
    const gen = new Gen(7748);
    for (let round = 0; round < 15; round++) {
      const roundDir = await fs.mkdtemp(path.join(dir, 'r'));
      const expected: { file: string; field: string | null; code: string }[] = [];
      for (let i = 0; i < gen.int(1, 6); i++) {
        const code = `S${round}x${i}`;
        const valid = entry(code);
        if (gen.bool(0.4)) {
          await fs.writeFile(path.join(roundDir, `${code}.json`), JSON.stringify(valid));
          continue;
        }
        const [, breakEntry, problem] = gen.pick(breakers);
        const broken = breakEntry(valid);
        // A broken code cannot name its file; the file keeps the intended name and must report the mismatch too.
        await fs.writeFile(path.join(roundDir, `${code}.json`), JSON.stringify(broken));
        expected.push({ file: `${code}.json`, field: problem.field ?? null, code: problem.code as string });
      }
      if (gen.bool(0.3)) {
        await fs.writeFile(path.join(roundDir, 'TRUNCATED.json'), '{"code": "TRUNC');
        expected.push({ file: 'TRUNCATED.json', field: null, code: 'NOT_JSON' });
      }
      if (expected.length === 0) {
        await expect(loadSiteRegistry(roundDir)).resolves.toBeDefined();
        continue;
      }
      const problems = await problemsOf(loadSiteRegistry(roundDir));
      for (const want of expected) expect(problems).toContainEqual(expect.objectContaining(want));
      // Nothing is reported for a file that was valid.
      expect(new Set(problems.map((p) => p.file))).toEqual(new Set(expected.map((p) => p.file)));
    }
  });

  it('refuses a file whose name is not its code, and a missing folder', async () => {
    await fs.writeFile(path.join(dir, 'north.json'), JSON.stringify(entry('NORTH')));
    expect(await problemsOf(loadSiteRegistry(dir))).toMatchObject([{ file: 'north.json', field: 'code', code: 'FILE_NAME_MISMATCH' }]);
    expect(await problemsOf(loadSiteRegistry(path.join(dir, 'missing')))).toMatchObject([{ code: 'UNREADABLE' }]);
  });

  it('refuses two files holding one key, naming the later file', async () => {
    const shared = NodeIdentity.generate();
    await fs.writeFile(path.join(dir, 'A.json'), JSON.stringify(entry('A', shared)));
    await fs.writeFile(path.join(dir, 'B.json'), JSON.stringify(entry('B', shared)));
    const problems = await problemsOf(loadSiteRegistry(dir));
    expect(problems).toMatchObject([
      { file: 'B.json', field: 'signingKey', code: 'DUPLICATE_KEY' },
      { file: 'B.json', field: 'agreementKey', code: 'DUPLICATE_KEY' },
    ]);
    expect(problems[0].message).toMatch(/already used by A\.json/);
  });
});
