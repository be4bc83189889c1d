import { parseArgs } from 'node:util';
import { loadOrCreateNodeIdentity } from '../federation/identity';
import { registryEntryFor, validateSiteEntry, type SiteEntry } from '../federation/site-registry';

/** What `facet node identity` prints: the entry for the hub's `sites/` (stdout) and the key id to read aloud (stderr). */
export interface NodeIdentityOutput {
  entry: SiteEntry;
  keyId: string;
}

export class NodeIdentityUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NodeIdentityUsageError';
  }
}

export const NODE_IDENTITY_USAGE = 'node identity needs --code CODE --name "Hospital name" --contact-name "Node admin" --contact-email admin@hospital.example';

/**
 * `facet node identity`: the node's federation identity (made on first use in `<dataDir>/federation/identity.json`,
 * 0600) as a registry entry for the hub operator. The entry is checked with the registry's own rules before it is
 * printed, so what the admin sends is what `facet site add` accepts; every problem is named at once.
 */
export async function nodeIdentity(dataDir: string, argv: string[]): Promise<NodeIdentityOutput> {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { code: { type: 'string' }, name: { type: 'string' }, 'contact-name': { type: 'string' }, 'contact-email': { type: 'string' } },
    }));
  } catch (error) {
    throw new NodeIdentityUsageError(`${(error as Error).message}; ${NODE_IDENTITY_USAGE}`);
  }
  const missing = ['code', 'name', 'contact-name', 'contact-email'].filter((option) => !values[option]);
  if (missing.length > 0) throw new NodeIdentityUsageError(`missing ${missing.map((m) => `--${m}`).join(', ')}; ${NODE_IDENTITY_USAGE}`);
  const site = {
    code: values.code as string,
    name: values.name as string,
    contact: { name: values['contact-name'] as string, email: values['contact-email'] as string },
  };
  // Checked before the key file is made: a typo should not leave a node with an identity it did not mean to create.
  const probe = validateSiteEntry({ ...site, signingKey: PROBE_KEY, agreementKey: PROBE_KEY }, `${site.code}.json`);
  const problems = probe.problems.filter((p) => p.field !== 'signingKey' && p.field !== 'agreementKey');
  if (problems.length > 0) throw new NodeIdentityUsageError(problems.map((p) => `${optionOf(p.field)}: ${p.message}`).join('\n'));
  const identity = await loadOrCreateNodeIdentity(dataDir);
  const entry = registryEntryFor(identity, site);
  const checked = validateSiteEntry(entry, `${site.code}.json`);
  if (checked.problems.length > 0) throw new NodeIdentityUsageError(checked.problems.map((p) => `${optionOf(p.field)}: ${p.message}`).join('\n'));
  return { entry, keyId: identity.public.keyId };
}

/** A well-formed stand-in key for checking the other fields before any key exists. */
const PROBE_KEY = Buffer.alloc(32, 9).toString('base64');

/** The command-line option a registry field comes from. */
function optionOf(field: string | null): string {
  if (field === 'contact.name') return '--contact-name';
  if (field === 'contact.email') return '--contact-email';
  return field ? `--${field}` : 'entry';
}
