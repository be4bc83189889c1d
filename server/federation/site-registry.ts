import { diffieHellman, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { IdentityError, keyIdOf, publicKeyFromBase64, type NodeIdentity } from './identity';

/**
 * The hub's member registry: one `<code>.json` per member node in the `sites/` folder (schema in
 * `sites/sites.schema.json`), so that membership is reviewed and versioned like code. The hub loads and validates it
 * at start and refuses to start on any problem, listing every one with its file and field; `facet site add|remove|
 * list` edit it through the functions below, which write atomically (a reader never sees half a file).
 */
export interface SiteContact {
  name: string;
  email: string;
}

export interface SiteEntry {
  code: string;
  name: string;
  /** Ed25519 public key, base64 of the raw 32 bytes: verifies the site's claims and results. */
  signingKey: string;
  /** X25519 public key, base64 of the raw 32 bytes: the other members agree secure-summation masks with it. */
  agreementKey: string;
  /** Who answers for the node (its admin): the hub operator calls them to compare key ids before adding a site. */
  contact: SiteContact;
}

export type RegistryProblemCode =
  'UNREADABLE' | 'NOT_JSON' | 'MISSING_FIELD' | 'UNKNOWN_FIELD' | 'INVALID_FIELD' | 'FILE_NAME_MISMATCH' | 'DUPLICATE_CODE' | 'DUPLICATE_KEY' | 'NOT_FOUND';

export interface RegistryProblem {
  /** The file's name inside the registry folder. */
  file: string;
  /** The JSON field, e.g. `contact.email`; null for the file as a whole. */
  field: string | null;
  code: RegistryProblemCode;
  message: string;
}

/** Everything wrong with a registry or an edit, at once: an operator fixes all files in one pass. */
export class SiteRegistryError extends Error {
  constructor(readonly problems: RegistryProblem[]) {
    super(problems.map((p) => `${p.file}${p.field ? ` (${p.field})` : ''}: ${p.message}`).join('\n'));
    this.name = 'SiteRegistryError';
  }
}

/** The rules `sites/sites.schema.json` states; test/federation/site-registry.test.ts keeps the two equal. */
export const SITE_CODE_PATTERN = '^[A-Za-z0-9_-]{1,32}$';
export const PUBLIC_KEY_PATTERN = '^[A-Za-z0-9+/]{43}=$';
export const EMAIL_PATTERN = '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$';
export const NAME_MAX_LENGTH = 200;
export const SITE_FIELDS = ['code', 'name', 'signingKey', 'agreementKey', 'contact'] as const;
export const CONTACT_FIELDS = ['name', 'email'] as const;
/** Not a site: the schema itself. */
export const SCHEMA_FILE = 'sites.schema.json';

/** A validated entry with its parsed keys. */
export interface RegisteredSite extends SiteEntry {
  keyId: string;
  signingPublicKey: KeyObject;
  agreementPublicKey: KeyObject;
}

export class SiteRegistry {
  private readonly byCodeMap: Map<string, RegisteredSite>;

  constructor(readonly sites: readonly RegisteredSite[]) {
    this.byCodeMap = new Map(sites.map((s) => [s.code, s]));
  }

  byCode(code: string): RegisteredSite | undefined {
    return this.byCodeMap.get(code);
  }

  /** The envelope verifier's key lookup (envelope.ts SignerKeys): a registered site with exactly this key id. */
  readonly signingKeyOf = (signer: string, keyId: string): KeyObject | null => {
    const site = this.byCodeMap.get(signer);
    return site && site.keyId === keyId ? site.signingPublicKey : null;
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Checks one entry against the schema's rules; the problems name `file` and each field. */
export function validateSiteEntry(value: unknown, file: string): { site: RegisteredSite | null; problems: RegistryProblem[] } {
  const problems: RegistryProblem[] = [];
  const problem = (field: string | null, code: RegistryProblemCode, message: string) => problems.push({ file, field, code, message });
  if (!isPlainObject(value)) {
    problem(null, 'INVALID_FIELD', 'a site entry is a JSON object');
    return { site: null, problems };
  }
  // `$schema` lets an editor find the schema; it carries no data.
  for (const key of Object.keys(value)) {
    if (key !== '$schema' && !(SITE_FIELDS as readonly string[]).includes(key))
      problem(key, 'UNKNOWN_FIELD', `unknown field (allowed: ${SITE_FIELDS.join(', ')})`);
  }
  const text = (field: string, v: unknown, pattern: RegExp | null, maxLength: number, what: string): string | null => {
    if (v === undefined) return (problem(field, 'MISSING_FIELD', `${field} is required (${what})`), null);
    if (typeof v !== 'string' || v.trim().length === 0 || v.length > maxLength || (pattern && !pattern.test(v))) {
      return (problem(field, 'INVALID_FIELD', `${field} must be ${what}`), null);
    }
    return v;
  };
  const code = text('code', value.code, new RegExp(SITE_CODE_PATTERN), 32, '1 to 32 letters, digits, - or _');
  const name = text('name', value.name, null, NAME_MAX_LENGTH, `a name of 1 to ${NAME_MAX_LENGTH} characters`);
  const keyWhat = 'the base64 of a raw 32-byte public key (44 characters ending in "=")';
  const signingKey = text('signingKey', value.signingKey, new RegExp(PUBLIC_KEY_PATTERN), 44, `${keyWhat}, Ed25519`);
  const agreementKey = text('agreementKey', value.agreementKey, new RegExp(PUBLIC_KEY_PATTERN), 44, `${keyWhat}, X25519`);
  let contact: SiteContact | null = null;
  if (value.contact === undefined) problem('contact', 'MISSING_FIELD', 'contact is required ({ "name", "email" } of the node admin)');
  else if (!isPlainObject(value.contact)) problem('contact', 'INVALID_FIELD', 'contact must be an object { "name", "email" }');
  else {
    for (const key of Object.keys(value.contact)) {
      if (!(CONTACT_FIELDS as readonly string[]).includes(key))
        problem(`contact.${key}`, 'UNKNOWN_FIELD', `unknown field (allowed: ${CONTACT_FIELDS.join(', ')})`);
    }
    const contactName = text('contact.name', value.contact.name, null, NAME_MAX_LENGTH, `a name of 1 to ${NAME_MAX_LENGTH} characters`);
    const email = text('contact.email', value.contact.email, new RegExp(EMAIL_PATTERN), 254, 'an e-mail address');
    if (contactName !== null && email !== null) contact = { name: contactName, email };
  }
  const parseKey = (field: string, curve: 'ed25519' | 'x25519', b64: string | null): KeyObject | null => {
    if (b64 === null) return null;
    try {
      return publicKeyFromBase64(curve, b64);
    } catch (error) {
      if (!(error instanceof IdentityError)) throw error;
      return (problem(field, 'INVALID_FIELD', `${field} is not an ${curve} public key`), null);
    }
  };
  const signingPublicKey = parseKey('signingKey', 'ed25519', signingKey);
  let agreementPublicKey = parseKey('agreementKey', 'x25519', agreementKey);
  if (agreementPublicKey && !agreesWith(agreementPublicKey)) {
    problem('agreementKey', 'INVALID_FIELD', 'agreementKey is a low-order X25519 point: every mask agreed with it would be public');
    agreementPublicKey = null;
  }
  if (code !== null && file !== `${code}.json`) problem('code', 'FILE_NAME_MISMATCH', `the file of site ${code} must be named ${code}.json`);
  if (problems.length > 0 || !code || !name || !signingKey || !agreementKey || !contact || !signingPublicKey || !agreementPublicKey) {
    return { site: null, problems };
  }
  return { site: { code, name, signingKey, agreementKey, contact, keyId: keyIdOf(signingKey), signingPublicKey, agreementPublicKey }, problems };
}

/** False for a low-order X25519 point (OpenSSL refuses the all-zero shared secret it gives, RFC 7748 section 6.1). */
function agreesWith(publicKey: KeyObject): boolean {
  try {
    diffieHellman({ privateKey: generateKeyPairSync('x25519').privateKey, publicKey });
    return true;
  } catch {
    return false;
  }
}

/** Problems between entries: one code per site (ignoring case, for case-insensitive file systems), one site per key. */
function crossCheck(entries: { file: string; site: RegisteredSite }[]): RegistryProblem[] {
  const problems: RegistryProblem[] = [];
  const seen = new Map<string, string>();
  const claim = (key: string, file: string, field: string, code: RegistryProblemCode, what: string) => {
    const first = seen.get(key);
    if (first === undefined) seen.set(key, file);
    else problems.push({ file, field, code, message: `${what} is already used by ${first}` });
  };
  for (const { file, site } of [...entries].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))) {
    claim(`code:${site.code.toLowerCase()}`, file, 'code', 'DUPLICATE_CODE', `code ${site.code} (letter case ignored)`);
    claim(`signing:${site.signingKey}`, file, 'signingKey', 'DUPLICATE_KEY', 'this signing key');
    claim(`agreement:${site.agreementKey}`, file, 'agreementKey', 'DUPLICATE_KEY', 'this agreement key');
  }
  return problems;
}

const isSiteFile = (name: string) => name.endsWith('.json') && name !== SCHEMA_FILE && !name.startsWith('.');

/** Reads and validates every `<code>.json` in `dir`; throws SiteRegistryError listing all problems. */
export async function loadSiteRegistry(dir: string): Promise<SiteRegistry> {
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter(isSiteFile).sort();
  } catch (error) {
    throw new SiteRegistryError([
      { file: dir, field: null, code: 'UNREADABLE', message: `cannot read the registry folder (${(error as NodeJS.ErrnoException).code})` },
    ]);
  }
  const problems: RegistryProblem[] = [];
  const entries: { file: string; site: RegisteredSite }[] = [];
  for (const file of names) {
    let text: string;
    try {
      text = await fs.readFile(path.join(dir, file), 'utf8');
    } catch (error) {
      problems.push({ file, field: null, code: 'UNREADABLE', message: `cannot read the file (${(error as NodeJS.ErrnoException).code})` });
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      problems.push({ file, field: null, code: 'NOT_JSON', message: `not JSON: ${(error as Error).message}` });
      continue;
    }
    const checked = validateSiteEntry(value, file);
    problems.push(...checked.problems);
    if (checked.site) entries.push({ file, site: checked.site });
  }
  problems.push(...crossCheck(entries));
  if (problems.length > 0) throw new SiteRegistryError(problems);
  return new SiteRegistry(entries.map((e) => e.site).sort((a, b) => (a.code < b.code ? -1 : 1)));
}

/** `facet site list`. */
export async function listSites(dir: string): Promise<SiteEntry[]> {
  return (await loadSiteRegistry(dir)).sites.map(publicEntry);
}

export const publicEntry = (site: SiteEntry): SiteEntry => ({
  code: site.code,
  name: site.name,
  signingKey: site.signingKey,
  agreementKey: site.agreementKey,
  contact: { name: site.contact.name, email: site.contact.email },
});

/** What `facet node identity` prints for the node admin to send to the hub operator. */
export function registryEntryFor(identity: NodeIdentity, site: { code: string; name: string; contact: SiteContact }): SiteEntry {
  return { code: site.code, name: site.name, signingKey: identity.public.signingKey, agreementKey: identity.public.agreementKey, contact: site.contact };
}

/**
 * `facet site add`: validates `entry` alone and against the rest of the registry (which must itself be valid), then
 * writes `<code>.json` atomically: temporary file, fsync, then a hard link that fails if the name exists (or, with
 * `replace`, a rename over it, for a key rotation), then an fsync of the folder so the new name survives a crash.
 */
export async function addSite(dir: string, entry: unknown, options: { replace?: boolean } = {}): Promise<SiteEntry> {
  const code = isPlainObject(entry) && typeof entry.code === 'string' ? entry.code : '';
  const file = new RegExp(SITE_CODE_PATTERN).test(code) ? `${code}.json` : '(new entry)';
  const checked = validateSiteEntry(entry, file);
  if (!checked.site) throw new SiteRegistryError(checked.problems);
  const site = checked.site;
  const current = await loadSiteRegistry(dir);
  const others = current.sites.filter((s) => !(options.replace && s.code === site.code));
  const problems = crossCheck([...others.map((s) => ({ file: `${s.code}.json`, site: s })), { file: `~${file}`, site }]).map((p) => ({ ...p, file }));
  if (problems.length > 0) throw new SiteRegistryError(problems);
  const target = path.join(dir, file);
  const temp = path.join(dir, `.${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temp, 'wx', 0o644);
  try {
    await handle.writeFile(`${JSON.stringify(publicEntry(site), null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (options.replace) await fs.rename(temp, target);
    else await fs.link(temp, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new SiteRegistryError([{ file, field: 'code', code: 'DUPLICATE_CODE', message: `${file} exists (replace it to rotate the site's keys)` }]);
    }
    throw error;
  } finally {
    await fs.rm(temp, { force: true });
  }
  await syncFolder(dir);
  return publicEntry(site);
}

/** `facet site remove`: the site's file goes; its tasks and results stay in the hub's database for the audit trail. */
export async function removeSite(dir: string, code: string): Promise<SiteEntry> {
  const registry = await loadSiteRegistry(dir);
  const site = registry.byCode(code);
  if (!site) throw new SiteRegistryError([{ file: `${code}.json`, field: 'code', code: 'NOT_FOUND', message: `no site ${code} in the registry` }]);
  await fs.unlink(path.join(dir, `${site.code}.json`));
  await syncFolder(dir);
  return publicEntry(site);
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
