import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nodeIdentity, NodeIdentityUsageError } from '../../../server/cli/node-identity';
import { IDENTITY_FILE, keyIdOf, loadOrCreateNodeIdentity } from '../../../server/federation/identity';
import { addSite, loadSiteRegistry } from '../../../server/federation/site-registry';

const ARGS = ['--code', 'NORTH', '--name', 'North University Hospital', '--contact-name', 'Node Admin', '--contact-email', 'facet-admin@north.example'];

describe('facet node identity', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facet-node-identity-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('prints a registry entry of the node’s own keys that `facet site add` accepts, the same on every run', async () => {
    const first = await nodeIdentity(dir, ARGS);
    const identity = await loadOrCreateNodeIdentity(dir);
    expect(first.entry).toEqual({
      code: 'NORTH',
      name: 'North University Hospital',
      signingKey: identity.public.signingKey,
      agreementKey: identity.public.agreementKey,
      contact: { name: 'Node Admin', email: 'facet-admin@north.example' },
    });
    expect(first.keyId).toBe(keyIdOf(identity.public.signingKey));
    expect((await fs.stat(path.join(dir, IDENTITY_FILE))).mode & 0o777).toBe(0o600);
    expect(await nodeIdentity(dir, ARGS)).toEqual(first);
    const sites = path.join(dir, 'sites');
    await fs.mkdir(sites);
    await addSite(sites, JSON.parse(JSON.stringify(first.entry)));
    expect((await loadSiteRegistry(sites)).byCode('NORTH')?.keyId).toBe(first.keyId);
  });

  it.each([
    [[], /missing --code, --name, --contact-name, --contact-email/],
    [ARGS.slice(0, 6), /missing --contact-email/],
    [[...ARGS.slice(0, 7), 'not-an-address'], /--contact-email: contact.email must be an e-mail address/],
    [['--code', 'NORTH HOSPITAL', ...ARGS.slice(2)], /--code: code must be 1 to 32 letters/],
    [['--name', 'x'.repeat(201), ...ARGS.slice(0, 2), ...ARGS.slice(4)], /--name: name must be a name of 1 to 200/],
    [[...ARGS, '--colour', 'blue'], /Unknown option '--colour'/],
  ])('refuses %p with a usage error and makes no key', async (argv, message) => {
    const refusal = nodeIdentity(dir, argv as string[]);
    await expect(refusal).rejects.toBeInstanceOf(NodeIdentityUsageError);
    await expect(nodeIdentity(dir, argv as string[])).rejects.toThrow(message);
    expect(existsSync(path.join(dir, IDENTITY_FILE))).toBe(false);
  });

  it('refuses a key file others can read, as the node itself does', async () => {
    await nodeIdentity(dir, ARGS);
    await fs.chmod(path.join(dir, IDENTITY_FILE), 0o644);
    await expect(nodeIdentity(dir, ARGS)).rejects.toThrow(/readable by others/);
  });
});
