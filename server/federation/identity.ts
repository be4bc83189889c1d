import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * A node's federation identity: an Ed25519 key that signs its claims and results, and an X25519 key that agrees the
 * pairwise masks of secure summation with the other members. Both are made on first use, kept in one file under the
 * node's data directory (readable by its owner only, like an SSH key), and never leave the node: the hub and the
 * other members know the public halves from the `sites/` registry.
 */
export class IdentityError extends Error {
  constructor(
    readonly code: 'KEY_FILE_UNPROTECTED' | 'KEY_FILE_INVALID' | 'BAD_PUBLIC_KEY',
    message: string,
  ) {
    super(message);
    this.name = 'IdentityError';
  }
}

/** The public halves, as the registry holds them: base64 of the raw 32-byte keys (RFC 8032 and RFC 7748 encodings). */
export interface PublicIdentity {
  signingKey: string;
  agreementKey: string;
  /** `SHA256:` and the unpadded base64 of the signing key's sha256: short enough to read aloud when comparing. */
  keyId: string;
}

const FILE_VERSION = 1;
/** Under the data directory, next to the embedded database and the object store. */
export const IDENTITY_FILE = path.join('federation', 'identity.json');

export class NodeIdentity {
  readonly public: PublicIdentity;

  constructor(
    private readonly signingPrivate: KeyObject,
    readonly agreementPrivate: KeyObject,
  ) {
    if (signingPrivate.asymmetricKeyType !== 'ed25519' || agreementPrivate.asymmetricKeyType !== 'x25519') {
      throw new IdentityError('KEY_FILE_INVALID', 'a node identity is an Ed25519 signing key and an X25519 agreement key');
    }
    const signingKey = rawPublicKey(createPublicKey(signingPrivate)).toString('base64');
    this.public = { signingKey, agreementKey: rawPublicKey(createPublicKey(agreementPrivate)).toString('base64'), keyId: keyIdOf(signingKey) };
  }

  /** A fresh identity (a hub's, a test's); a node uses loadOrCreateNodeIdentity so that it keeps its keys. */
  static generate(): NodeIdentity {
    return new NodeIdentity(generateKeyPairSync('ed25519').privateKey, generateKeyPairSync('x25519').privateKey);
  }

  /** Ed25519 signature (64 bytes) of `data`. */
  sign(data: Buffer): Buffer {
    return sign(null, data, this.signingPrivate);
  }

  toFile(): string {
    const pem = (key: KeyObject) => key.export({ format: 'pem', type: 'pkcs8' }).toString();
    return `${JSON.stringify({ version: FILE_VERSION, signing: pem(this.signingPrivate), agreement: pem(this.agreementPrivate) }, null, 2)}\n`;
  }

  static fromFile(text: string, file: string): NodeIdentity {
    let parsed: { version?: unknown; signing?: unknown; agreement?: unknown };
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new IdentityError('KEY_FILE_INVALID', `${file} is not JSON`);
    }
    if (parsed.version !== FILE_VERSION || typeof parsed.signing !== 'string' || typeof parsed.agreement !== 'string') {
      throw new IdentityError('KEY_FILE_INVALID', `${file} is not a version ${FILE_VERSION} identity file (version, signing, agreement)`);
    }
    try {
      return new NodeIdentity(createPrivateKey(parsed.signing), createPrivateKey(parsed.agreement));
    } catch (error) {
      if (error instanceof IdentityError) throw new IdentityError('KEY_FILE_INVALID', `${file}: ${error.message}`);
      throw new IdentityError('KEY_FILE_INVALID', `${file} holds no readable PKCS#8 keys`);
    }
  }
}

/** The raw 32-byte public key of an Ed25519 or X25519 KeyObject (its JWK `x`). */
function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

export function keyIdOf(signingKeyBase64: string): string {
  return `SHA256:${createHash('sha256').update(Buffer.from(signingKeyBase64, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

const BASE64_32_BYTES = /^[A-Za-z0-9+/]{43}=$/;

/** An Ed25519 or X25519 public KeyObject from the registry's base64; BAD_PUBLIC_KEY unless it is exactly 32 bytes. */
export function publicKeyFromBase64(curve: 'ed25519' | 'x25519', base64: string): KeyObject {
  if (typeof base64 !== 'string' || !BASE64_32_BYTES.test(base64)) {
    throw new IdentityError('BAD_PUBLIC_KEY', `an ${curve} public key is the base64 of 32 bytes (44 characters ending in "=")`);
  }
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv: curve === 'ed25519' ? 'Ed25519' : 'X25519', x: Buffer.from(base64, 'base64').toString('base64url') },
      format: 'jwk',
    });
  } catch {
    throw new IdentityError('BAD_PUBLIC_KEY', `not an ${curve} public key`);
  }
}

/** Checks an Ed25519 signature; false (never a throw) for any malformed input. */
export function verifySignature(publicKey: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    return signature.length === 64 && verify(null, data, publicKey, signature);
  } catch {
    return false;
  }
}

/**
 * The node's identity from `<dataDir>/federation/identity.json`, made there on first use. Creation is atomic and
 * race-free (the server and a worker may start together): the keys are written to a private temporary file, synced,
 * and hard-linked to the final name, which fails if another process got there first; then everyone reads the winner.
 * A file that group or others can read is refused (KEY_FILE_UNPROTECTED), as OpenSSH refuses such a key.
 */
export async function loadOrCreateNodeIdentity(dataDir: string): Promise<NodeIdentity> {
  const file = path.join(dataDir, IDENTITY_FILE);
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    return await readIdentity(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await fs.open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(NodeIdentity.generate().toFile());
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.link(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await fs.unlink(temp);
  }
  return readIdentity(file);
}

async function readIdentity(file: string): Promise<NodeIdentity> {
  const stat = await fs.stat(file);
  // Permission bits mean nothing on Windows; everywhere else the key is its owner's alone.
  if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
    throw new IdentityError('KEY_FILE_UNPROTECTED', `${file} is readable by others (mode ${(stat.mode & 0o777).toString(8)}); run: chmod 600 ${file}`);
  }
  return NodeIdentity.fromFile(await fs.readFile(file, 'utf8'), file);
}
