import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  IDENTITY_FILE,
  IdentityError,
  keyIdOf,
  loadOrCreateNodeIdentity,
  NodeIdentity,
  publicKeyFromBase64,
  verifySignature,
} from '../../server/federation/identity';
import { Gen } from './generators';

describe('node identity', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'facet-identity-'));
  });
  afterEach(() => fs.rm(dataDir, { recursive: true, force: true }));

  it('is made on first use in a file only its owner can read, and the same keys come back after', async () => {
    const first = await loadOrCreateNodeIdentity(dataDir);
    const stat = await fs.stat(path.join(dataDir, IDENTITY_FILE));
    expect(stat.mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.dirname(path.join(dataDir, IDENTITY_FILE)))).mode & 0o077).toBe(0);
    const again = await loadOrCreateNodeIdentity(dataDir);
    expect(again.public).toEqual(first.public);
    expect(first.public.signingKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(first.public.agreementKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(first.public.keyId).toBe(keyIdOf(first.public.signingKey));
    expect(first.public.keyId).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('is made once when several starts race for it', async () => {
    const identities = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateNodeIdentity(dataDir)));
    expect(new Set(identities.map((i) => i.public.keyId)).size).toBe(1);
    expect((await fs.readdir(path.join(dataDir, 'federation'))).sort()).toEqual(['identity.json']);
  });

  it('refuses a key file that group or others can read (KEY_FILE_UNPROTECTED)', async () => {
    await loadOrCreateNodeIdentity(dataDir);
    for (const mode of [0o640, 0o604, 0o660]) {
      await fs.chmod(path.join(dataDir, IDENTITY_FILE), mode);
      await expect(loadOrCreateNodeIdentity(dataDir)).rejects.toMatchObject({ name: 'IdentityError', code: 'KEY_FILE_UNPROTECTED' });
    }
  });

  it.each([
    ['not JSON', 'nope'],
    ['the wrong version', JSON.stringify({ version: 2, signing: 'x', agreement: 'y' })],
    ['no keys in the PEM fields', JSON.stringify({ version: 1, signing: 'x', agreement: 'y' })],
    [
      'the keys swapped',
      (() => {
        const f = JSON.parse(NodeIdentity.generate().toFile());
        return JSON.stringify({ version: 1, signing: f.agreement, agreement: f.signing });
      })(),
    ],
  ])('refuses a key file with %s (KEY_FILE_INVALID)', async (_what, text) => {
    await fs.mkdir(path.join(dataDir, 'federation'), { recursive: true });
    await fs.writeFile(path.join(dataDir, IDENTITY_FILE), text, { mode: 0o600 });
    await expect(loadOrCreateNodeIdentity(dataDir)).rejects.toMatchObject({ code: 'KEY_FILE_INVALID' });
  });

  it('signs so that exactly the registered public key verifies, and any changed byte fails (generated messages)', () => {
    const gen = new Gen(25519);
    const identity = NodeIdentity.generate();
    const other = NodeIdentity.generate();
    const key = publicKeyFromBase64('ed25519', identity.public.signingKey);
    for (let i = 0; i < 50; i++) {
      const message = gen.bytes(gen.int(0, 300));
      const signature = identity.sign(message);
      expect(verifySignature(key, message, signature)).toBe(true);
      expect(verifySignature(publicKeyFromBase64('ed25519', other.public.signingKey), message, signature)).toBe(false);
      if (message.length > 0) {
        const tampered = Buffer.from(message);
        tampered[gen.int(0, tampered.length - 1)] ^= 1 << gen.int(0, 7);
        expect(verifySignature(key, tampered, signature)).toBe(false);
      }
      const badSignature = Buffer.from(signature);
      badSignature[gen.int(0, 63)] ^= 1 << gen.int(0, 7);
      expect(verifySignature(key, message, badSignature)).toBe(false);
      expect(verifySignature(key, message, signature.subarray(0, 63))).toBe(false);
    }
  });

  it.each([
    ['too short', Buffer.alloc(31).toString('base64')],
    ['too long', Buffer.alloc(33).toString('base64')],
    ['not base64', '!'.repeat(43) + '='],
    ['unpadded', Buffer.alloc(32, 7).toString('base64url')],
    ['not a string', 42],
  ])('refuses a public key that is %s (BAD_PUBLIC_KEY)', (_what, value) => {
    expect(() => publicKeyFromBase64('ed25519', value as string)).toThrow(IdentityError);
    expect(() => publicKeyFromBase64('x25519', value as string)).toThrow(/32 bytes/);
  });
});
