import { createCipheriv, createHash, diffieHellman, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical-json';
import { addModulo } from './fixed-point';

/**
 * Secure summation of fixed-point vectors (fixed-point.ts) after Bonawitz et al. 2017, "Practical Secure Aggregation
 * for Privacy-Preserving Machine Learning" (CCS '17), with the cross-silo simplifications declearn also makes: the
 * members' long-term X25519 keys come from a registry the hub cannot change (`sites/`), and a dropout restarts the
 * round instead of reconstructing the missing masks from Shamir shares.
 *
 * Each pair of participants u < v (by site code) derives a 256-bit key from their X25519 shared secret with HKDF-SHA256,
 * bound to the round id and the pair; AES-256-CTR under that key expands into a mask vector m_uv. Site u sends
 *   y_u = x_u + b_u + sum_{v > u} m_uv - sum_{v < u} m_vu   (mod 2^64)
 * where b_u is the expansion of a fresh 32-byte self-mask seed. Summed over all participants the pairwise masks cancel;
 * the hub then asks each site for its seed (only once it holds every y, and each site checks that), subtracts the b_u
 * and has the total, never one site's x. The self mask is what lets a site refuse a later attempt safely: until every
 * seed is revealed the hub holds nothing but noise, so a site that has revealed knows the round completed and can
 * refuse a restart that leaves someone out (secure-sum-round.ts; Bonawitz's double masking serves the same purpose).
 *
 * Unlike Flower's SecAgg+ mask generator, which folds the shared key to a 32-bit seed for NumPy's Mersenne Twister,
 * the full 256-bit key drives a cipher, so a mask cannot be found by trying seeds.
 */
export class SecureSumError extends Error {
  constructor(
    readonly code: 'BAD_AGREEMENT_KEY' | 'NOT_A_PARTICIPANT' | 'DUPLICATE_PARTICIPANT' | 'TOO_FEW_PARTICIPANTS' | 'LENGTH_MISMATCH' | 'BAD_SEED',
    message: string,
  ) {
    super(message);
    this.name = 'SecureSumError';
  }
}

export interface Participant {
  code: string;
  agreementKey: KeyObject;
}

/** Binds a derived key to this protocol version, the round and the (ordered) pair. */
const HKDF_SALT = Buffer.from('facet-federation/1 secure-sum pairwise mask', 'utf8');
export const SEED_BYTES = 32;

const byCode = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The 32-byte key of pair {a, b} in `roundId`, the same on both sides: HKDF-SHA256 of their X25519 shared secret. */
export function pairwiseMaskKey(ownPrivate: KeyObject, own: string, peer: Participant, roundId: string): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: ownPrivate, publicKey: peer.agreementKey });
  } catch {
    // OpenSSL refuses a low-order point (an all-zero shared secret, RFC 7748 section 6.1): that key is worthless.
    throw new SecureSumError('BAD_AGREEMENT_KEY', `no key agreement with ${peer.code}: its X25519 key is not usable`);
  }
  const [first, second] = [own, peer.code].sort(byCode);
  const info = Buffer.from(canonicalJson({ roundId, pair: [first, second] }), 'utf8');
  return Buffer.from(hkdfSync('sha256', shared, HKDF_SALT, info, 32));
}

/**
 * `length` 64-bit words of AES-256-CTR keystream under `key`. Each key expands one stream only (a new key per pair and
 * round, a fresh seed per self mask), so the all-zero counter block is safe.
 */
export function expandMask(key: Buffer, length: number): BigUint64Array {
  if (key.length !== 32) throw new SecureSumError('BAD_SEED', 'a mask key or seed is 32 bytes');
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const stream = Buffer.concat([cipher.update(Buffer.alloc(length * 8)), cipher.final()]);
  const out = new BigUint64Array(length);
  for (let i = 0; i < length; i++) out[i] = stream.readBigUInt64LE(i * 8);
  return out;
}

function checkParticipants(participants: readonly { code: string }[], own?: string): void {
  const codes = participants.map((p) => p.code);
  const duplicate = codes.find((c, i) => codes.indexOf(c) !== i);
  if (duplicate !== undefined) throw new SecureSumError('DUPLICATE_PARTICIPANT', `${duplicate} is listed twice`);
  if (codes.length < 2) throw new SecureSumError('TOO_FEW_PARTICIPANTS', 'a secure sum needs at least two participants');
  if (own !== undefined && !codes.includes(own)) throw new SecureSumError('NOT_A_PARTICIPANT', `${own} is not a participant of this round`);
}

/** A fresh self-mask seed (kept by the site until the hub asks for it with every participant's vector in hand). */
export const newSelfMaskSeed = (): Buffer => randomBytes(SEED_BYTES);

/** What a site sends: its encoded values plus its self mask plus its pairwise masks with every other participant. */
export function maskContribution(input: {
  own: string;
  ownAgreementKey: KeyObject;
  roundId: string;
  participants: readonly Participant[];
  values: BigUint64Array;
  selfMaskSeed: Buffer;
}): BigUint64Array {
  checkParticipants(input.participants, input.own);
  const length = input.values.length;
  const masked = addModulo([input.values, expandMask(input.selfMaskSeed, length)]);
  for (const peer of input.participants) {
    if (peer.code === input.own) continue;
    const mask = expandMask(pairwiseMaskKey(input.ownAgreementKey, input.own, peer, input.roundId), length);
    // The lower code adds, the higher subtracts: each pair's mask appears once with each sign in the sum.
    const add = input.own < peer.code;
    for (let i = 0; i < length; i++) masked[i] = add ? masked[i] + mask[i] : masked[i] - mask[i];
  }
  return masked;
}

/** The hub's unmasking: the sum of every participant's masked vector less every revealed self mask. */
export function unmaskSum(masked: ReadonlyMap<string, BigUint64Array>, seeds: ReadonlyMap<string, Buffer>, participants: readonly string[]): BigUint64Array {
  checkParticipants(participants.map((code) => ({ code })));
  for (const code of participants) {
    if (!masked.has(code)) throw new SecureSumError('NOT_A_PARTICIPANT', `no masked vector from ${code}`);
    if (!seeds.has(code)) throw new SecureSumError('BAD_SEED', `no self-mask seed from ${code}`);
  }
  const vectors = participants.map((code) => masked.get(code) as BigUint64Array);
  const length = vectors[0].length;
  if (vectors.some((v) => v.length !== length)) throw new SecureSumError('LENGTH_MISMATCH', 'the masked vectors differ in length');
  const total = addModulo(vectors);
  for (const code of participants) {
    const self = expandMask(seeds.get(code) as Buffer, length);
    for (let i = 0; i < length; i++) total[i] -= self[i];
  }
  return total;
}

/** sha256 (hex) of a vector's little-endian bytes: what the unmask request lists for each participant. */
export function vectorSha256(vector: BigUint64Array): string {
  return createHash('sha256').update(littleEndianBytes(vector)).digest('hex');
}

function littleEndianBytes(vector: BigUint64Array): Buffer {
  const bytes = Buffer.alloc(vector.length * 8);
  vector.forEach((v, i) => bytes.writeBigUInt64LE(v, i * 8));
  return bytes;
}

/** Wire form of a vector inside a signed JSON payload: base64 of its little-endian bytes (JSON numbers stop at 2^53). */
export function vectorToBase64(vector: BigUint64Array): string {
  return littleEndianBytes(vector).toString('base64');
}

export function vectorFromBase64(text: string, length: number): BigUint64Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== length * 8 || bytes.toString('base64') !== text)
    throw new SecureSumError('LENGTH_MISMATCH', `expected ${length} 64-bit values in base64`);
  const out = new BigUint64Array(length);
  for (let i = 0; i < length; i++) out[i] = bytes.readBigUInt64LE(i * 8);
  return out;
}
