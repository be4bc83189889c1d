import { createHmac } from 'node:crypto';

/**
 * A replacement UID: `2.25.` and a UUID made of the first 128 bits of HMAC-SHA256(key, original), as a decimal
 * integer (PS3.5 B.2 UUID-derived form, at most 44 characters). The same original under the same node key always maps
 * to the same UID, so a re-upload lands on the object already stored; without the key it cannot be reversed.
 */
export function replaceUid(key: Buffer, original: string): string {
  const bytes = createHmac('sha256', key).update(original, 'latin1').digest().subarray(0, 16);
  // A UUID (RFC 9562 version 8, "custom"), as PS3.5 B.2 requires of a 2.25 UID: version and variant bits set.
  bytes[6] = (bytes[6] & 0x0f) | 0x80;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  return `2.25.${BigInt(`0x${bytes.toString('hex')}`).toString(10)}`;
}

/** A keyed hash of an original identifier (a hospital patient ID), hex: what is stored instead of the identifier. */
export function keyedHash(key: Buffer, purpose: string, original: string): string {
  return createHmac('sha256', key).update(`${purpose}\u0000${original.trim()}`, 'utf8').digest('hex');
}

/** Facet's Implementation Class UID, in the same UUID-derived form. */
export const IMPLEMENTATION_CLASS_UID = replaceUid(Buffer.from('facet'), 'facet-implementation-class');
export const IMPLEMENTATION_VERSION_NAME = 'FACET_0_1';
