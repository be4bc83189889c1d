import { randomBytes, type KeyObject } from 'node:crypto';
import { canonicalJson, canonicalSha256, type JsonValue } from './canonical-json';
import { verifySignature, type NodeIdentity } from './identity';
import type { ReplayGuard, ReplayVerdict } from './replay-guard';

/**
 * The one signed message format of the federation (claims, tasks, results, receipts): a JSON object whose Ed25519
 * signature covers the RFC 8785 canonical form of every other field. The signer names itself and its key id; the
 * audience names the one party meant to act on it (a result signed for hub A is refused by hub B); the time and
 * nonce let the receiver refuse replays (replay-guard.ts); `payloadSha256` is what audit rows and provenance
 * manifests quote, so a payload can be matched to its envelope without storing it twice.
 */
export const FEDERATION_PROTOCOL = 'facet-federation/1';

export enum EnvelopeKind {
  /** node -> hub: "give me my tasks" (the long-poll request). */
  CLAIM = 'facet.claim',
  /** hub -> node: one task for one site. */
  TASK = 'facet.task',
  /** node -> hub: the site's answer (SUCCEEDED with an aggregate, REFUSED with a reason, FAILED). */
  RESULT = 'facet.result',
  /** hub -> node: "I stored your result", the node's proof that it answered. */
  RECEIPT = 'facet.receipt',
  /** node -> hub: how a federated inference job stands at the site (counts only). */
  PROGRESS = 'facet.progress',
  /** node -> hub: the Authorization of a model download for a claimed INFERENCE task. */
  MODEL_REQUEST = 'facet.model-request',
  /** hub -> anyone: an exported federated answer with every signed contribution, checked by `facet verify`. */
  ANSWER = 'facet.answer',
}

export interface SignedEnvelope<P extends JsonValue = JsonValue> {
  protocol: typeof FEDERATION_PROTOCOL;
  kind: EnvelopeKind;
  /** A site code from the registry, or the hub's name. */
  signer: string;
  keyId: string;
  audience: string;
  /** ISO 8601 UTC, milliseconds. */
  signedAt: string;
  /** 16 random bytes, unpadded base64url. */
  nonce: string;
  payloadSha256: string;
  payload: P;
  /** base64 Ed25519 signature of the canonical JSON of all the fields above. */
  signature: string;
}

export function signEnvelope<P extends JsonValue>(
  identity: NodeIdentity,
  message: { kind: EnvelopeKind; signer: string; audience: string; payload: P },
  now: Date = new Date(),
): SignedEnvelope<P> {
  const unsigned: Omit<SignedEnvelope<P>, 'signature'> = {
    protocol: FEDERATION_PROTOCOL,
    kind: message.kind,
    signer: message.signer,
    keyId: identity.public.keyId,
    audience: message.audience,
    signedAt: now.toISOString(),
    nonce: randomBytes(16).toString('base64url'),
    payloadSha256: canonicalSha256(message.payload),
    payload: message.payload,
  };
  const signature = identity.sign(Buffer.from(canonicalJson(unsigned), 'utf8')).toString('base64');
  return { ...unsigned, signature };
}

export type EnvelopeRejection =
  | 'MALFORMED'
  | 'UNSUPPORTED_PROTOCOL'
  | 'WRONG_KIND'
  | 'WRONG_AUDIENCE'
  | 'UNKNOWN_SIGNER'
  | 'BAD_SIGNATURE'
  | 'PAYLOAD_HASH_MISMATCH'
  | Exclude<ReplayVerdict, 'FRESH'>;

export type EnvelopeCheck<P extends JsonValue> = { ok: true; envelope: SignedEnvelope<P> } | { ok: false; code: EnvelopeRejection; message: string };

/** Finds the signing key registered for `signer` under `keyId`; null when there is none (unknown or rotated key). */
export type SignerKeys = (signer: string, keyId: string) => KeyObject | null;

const FIELDS = ['protocol', 'kind', 'signer', 'keyId', 'audience', 'signedAt', 'nonce', 'payloadSha256', 'payload', 'signature'] as const;

const reject = (code: EnvelopeRejection, message: string): { ok: false; code: EnvelopeRejection; message: string } => ({ ok: false, code, message });

/**
 * Checks everything a signature can prove, without state: the shape, the protocol, that the kind and audience are
 * the ones expected here, that the signer is registered with this key, the signature, and the payload hash.
 * Use `acceptEnvelope` to add the replay check.
 */
export function verifyEnvelope<P extends JsonValue = JsonValue>(
  raw: unknown,
  expect: { kind: EnvelopeKind; audience: string; keys: SignerKeys },
): EnvelopeCheck<P> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return reject('MALFORMED', 'an envelope is a JSON object');
  const envelope = raw as Record<string, unknown>;
  const extra = Object.keys(envelope).filter((k) => !(FIELDS as readonly string[]).includes(k));
  if (extra.length > 0) return reject('MALFORMED', `unexpected field ${extra[0]}`);
  for (const field of FIELDS) {
    if (field !== 'payload' && typeof envelope[field] !== 'string') return reject('MALFORMED', `${field} must be a string`);
  }
  if (!('payload' in envelope)) return reject('MALFORMED', 'payload is missing');
  if (envelope.protocol !== FEDERATION_PROTOCOL) return reject('UNSUPPORTED_PROTOCOL', `protocol ${String(envelope.protocol)} is not ${FEDERATION_PROTOCOL}`);
  if (envelope.kind !== expect.kind) return reject('WRONG_KIND', `expected a ${expect.kind}, got ${String(envelope.kind)}`);
  if (envelope.audience !== expect.audience) return reject('WRONG_AUDIENCE', `the envelope is addressed to ${String(envelope.audience)}`);
  const key = expect.keys(envelope.signer as string, envelope.keyId as string);
  if (key === null) return reject('UNKNOWN_SIGNER', `no registered key ${String(envelope.keyId)} for ${String(envelope.signer)}`);
  const { signature, ...unsigned } = envelope;
  let signed: Buffer;
  try {
    signed = Buffer.from(canonicalJson(unsigned), 'utf8');
  } catch (error) {
    return reject('MALFORMED', (error as Error).message);
  }
  if (!verifySignature(key, signed, Buffer.from(signature as string, 'base64'))) return reject('BAD_SIGNATURE', 'the signature does not verify');
  // The signature covers payloadSha256 and payload together: a mismatch means the signer hashed something else.
  if (canonicalSha256(envelope.payload) !== envelope.payloadSha256) return reject('PAYLOAD_HASH_MISMATCH', 'payloadSha256 is not the hash of the payload');
  return { ok: true, envelope: envelope as unknown as SignedEnvelope<P> };
}

/** verifyEnvelope, then the replay guard (only for envelopes whose signature holds, so junk never fills the store). */
export async function acceptEnvelope<P extends JsonValue = JsonValue>(
  raw: unknown,
  expect: { kind: EnvelopeKind; audience: string; keys: SignerKeys; replay: ReplayGuard },
): Promise<EnvelopeCheck<P>> {
  const checked = verifyEnvelope<P>(raw, expect);
  if (!checked.ok) return checked;
  const verdict = await expect.replay.check(checked.envelope.keyId, checked.envelope.nonce, checked.envelope.signedAt);
  if (verdict !== 'FRESH') return reject(verdict, `refused: ${verdict.toLowerCase().replace(/_/g, ' ')}`);
  return checked;
}
