import type { KeyObject } from 'node:crypto';
import { canonicalJson, canonicalSha256, type JsonValue } from './canonical-json';
import { FixedPointError } from './fixed-point';
import { verifyEnvelope, EnvelopeKind, type SignedEnvelope, type SignerKeys } from './envelope';
import { IdentityError, publicKeyFromBase64 } from './identity';
import type { FederationTaskKind, MaskRequestPayload, SecureAnswerPayload, SecureDeclaration, UnmaskRequestPayload } from './protocol';
import type { AggregateGroup, SuppressedGroup } from './release-policy';
import { maskContribution, SecureSumError, unmaskSum, vectorFromBase64, vectorSha256, vectorToBase64 } from './secure-sum';
import type { LedgerRefusal, SecureSumLedger } from './secure-sum-round';
import { decodeRound, encodeRound, isSecureRowKind, pooledLengths, rowLayout, RowLayoutError } from './secure-rows';

/**
 * Secure summation over the federation's transport: what a node declares in its result, how it answers the hub's
 * secure-round requests (mask, then reveal its self-mask seed), and how the hub, or `facet verify`, gets the pooled
 * totals from a round's signed transcript. Pure: the services move the messages and keep the state.
 *
 * A task's pooled rows are secure-summed when the site rows are not asked (no SITE in the query's grouping: released
 * site rows would show the hub each site's numbers anyway) and two or more sites take part. Then a node's result
 * carries only its pooled keys (SecureDeclaration); the hub's round for the task has every participant mask one
 * vector, all pooled keys' rows one after the other (secure-rows.ts), and then reveal its self-mask seed once the hub
 * shows it holds every participant's vector (secure-sum-round.ts SecureSumLedger decides). A participant that does not
 * answer the mask request by the attempt's deadline makes the hub restart with the others (new round id, fresh masks).
 */

export class SecureTransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecureTransportError';
  }
}

const SITE = 'SITE';

/** Whether a task's pooled rows go through a secure round. */
export function isSecureTask(kind: string, query: unknown, sites: readonly string[]): boolean {
  if (!isSecureRowKind(kind) || sites.length < 2) return false;
  const groupBy = query !== null && typeof query === 'object' && !Array.isArray(query) ? (query as Record<string, unknown>).groupBy : undefined;
  // A kind without a grouping (the study flow) answers per site: its site rows are released and pooled by plain sums.
  return Array.isArray(groupBy) && !groupBy.includes(SITE);
}

/**
 * The row a node's ledger uses to refuse a restart that would difference out a site: the kind and the query itself,
 * not the hub's task id, so that the same question asked again under a new task is the same row.
 */
export const secureFingerprint = (kind: string, query: JsonValue): string => canonicalSha256({ kind, query });

/** A node's share of a secure task: its released groups by pooled key, kept at the node until the round asks. */
export interface SecureShare {
  [key: string]: JsonValue;
  groups: { [key: string]: { patients: number; values: { [field: string]: number | number[] } } };
}

/**
 * What a node declares (keys, withheld keys, lengths) and keeps (its numbers) for a secure task, from the aggregate
 * its policy decided to release: groups with numbers and suppressed groups.
 */
export function declareSecure(
  kind: FederationTaskKind,
  released: { groups: readonly AggregateGroup[]; suppressed: readonly SuppressedGroup[] },
): { declaration: SecureDeclaration; share: SecureShare } {
  const share: SecureShare = { groups: {} };
  let lengths: Record<string, number> | null = null;
  for (const group of released.groups) {
    if (SITE in group.key) throw new SecureTransportError('a secure task has no SITE rows');
    const key = canonicalJson(group.key);
    const own = pooledLengths(kind, group.values);
    if (lengths !== null && canonicalJson(lengths) !== canonicalJson(own)) throw new SecureTransportError('the groups of one task differ in their lengths');
    lengths = own;
    share.groups[key] = { patients: group.patients, values: { ...group.values } };
  }
  const keys = Object.keys(share.groups).sort();
  const withheld = released.suppressed
    .map((g) => ({ key: canonicalJson(g.key), reason: g.reason }))
    .filter((w) => !keys.includes(w.key))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { declaration: { keys, withheld, lengths: lengths ?? {} }, share };
}

const REASON = /^[A-Z][A-Z0-9_]{0,63}$/;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A pooled key as declared: the canonical JSON of a key without SITE whose dimensions and values are vocabulary words. */
function isPooledKey(text: unknown, vocabulary: ReadonlySet<string>): boolean {
  if (typeof text !== 'string' || text.length > 1000) return false;
  let key: unknown;
  try {
    key = JSON.parse(text);
  } catch {
    return false;
  }
  return (
    isObject(key) &&
    canonicalJson(key as JsonValue) === text &&
    !(SITE in key) &&
    Object.entries(key).every(([d, v]) => vocabulary.has(d) && typeof v === 'string' && vocabulary.has(v))
  );
}

/**
 * The hub's check of a result against its task: a secure task's SUCCEEDED result has no site groups and a well-formed
 * declaration (pooled keys of vocabulary words, reason codes, whole lengths); any other result has no declaration.
 */
export function checkSecureDeclaration(secure: boolean, payload: object, vocabulary: ReadonlySet<string>): boolean {
  const declared = (payload as { secure?: unknown }).secure;
  if (!secure) return declared === undefined || declared === null;
  const aggregate = (payload as { aggregate?: unknown }).aggregate;
  if (!isObject(aggregate) || !Array.isArray(aggregate.groups) || aggregate.groups.length > 0) return false;
  if (!isObject(declared) || Object.keys(declared).sort().join() !== 'keys,lengths,withheld') return false;
  const { keys, withheld, lengths } = declared;
  if (!Array.isArray(keys) || keys.length > 10_000 || !keys.every((k) => isPooledKey(k, vocabulary)) || new Set(keys).size !== keys.length) return false;
  if (
    !Array.isArray(withheld) ||
    !withheld.every((w) => isObject(w) && isPooledKey(w.key, vocabulary) && typeof w.reason === 'string' && REASON.test(w.reason))
  )
    return false;
  return (
    isObject(lengths) &&
    Object.entries(lengths).every(([name, n]) => vocabulary.has(name) && Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 1_000_000)
  );
}

// ---- node: answering the hub's requests ----------------------------------------------------------------------------

export type NodeRefusal = LedgerRefusal | 'ROUND_MISMATCH' | 'BAD_PARTICIPANT_KEY' | 'WRONG_OWN_KEY' | 'PAIRWISE_NOT_REVEALED' | 'VALUE_OUT_OF_RANGE';

export type NodeAnswer = { ok: true; vector: BigUint64Array } | { ok: false; code: NodeRefusal };

/**
 * A node's answer to a mask request: checks the request against what it declared (every key it has is in the round,
 * the lengths are its own), against its own agreement key and the registry keys' form, asks its ledger whether it may
 * mask for this round id and participant set, and masks its rows.
 */
export function answerMaskRequest(input: {
  request: MaskRequestPayload;
  kind: FederationTaskKind;
  own: string;
  ownAgreementPrivate: KeyObject;
  ownAgreementPublic: string;
  declaration: SecureDeclaration;
  share: SecureShare;
  fingerprint: string;
  ledger: SecureSumLedger;
}): NodeAnswer {
  const { request } = input;
  const roundKeys = new Set(request.keys);
  if (
    request.roundId !== `${request.taskId}#${request.attempt}` ||
    input.declaration.keys.some((k) => !roundKeys.has(k)) ||
    roundKeys.size !== request.keys.length ||
    (input.declaration.keys.length > 0 && canonicalJson(request.lengths) !== canonicalJson(input.declaration.lengths))
  ) {
    return { ok: false, code: 'ROUND_MISMATCH' };
  }
  const mine = request.participants.find((p) => p.code === input.own);
  if (mine && mine.agreementKey !== input.ownAgreementPublic) return { ok: false, code: 'WRONG_OWN_KEY' };
  let participants;
  try {
    participants = request.participants.map((p) => ({ code: p.code, agreementKey: publicKeyFromBase64('x25519', p.agreementKey) }));
  } catch (error) {
    if (error instanceof IdentityError) return { ok: false, code: 'BAD_PARTICIPANT_KEY' };
    throw error;
  }
  let layout;
  try {
    layout = rowLayout(input.kind, request.lengths);
  } catch (error) {
    if (error instanceof RowLayoutError) return { ok: false, code: 'ROUND_MISMATCH' };
    throw error;
  }
  const begun = input.ledger.begin({
    roundId: request.roundId,
    fingerprint: input.fingerprint,
    participants: participants.map((p) => p.code),
    minSites: request.minSites,
  });
  if (!begun.ok) return { ok: false, code: begun.code };
  try {
    const values = encodeRound(layout, request.keys, new Map(Object.entries(input.share.groups)), participants.length);
    const vector = maskContribution({
      own: input.own,
      ownAgreementKey: input.ownAgreementPrivate,
      roundId: request.roundId,
      participants,
      values,
      selfMaskSeed: begun.seed,
    });
    input.ledger.recordMasked(request.roundId, vectorSha256(vector));
    return { ok: true, vector };
  } catch (error) {
    if (error instanceof FixedPointError) return { ok: false, code: 'VALUE_OUT_OF_RANGE' };
    if (error instanceof SecureSumError) return { ok: false, code: 'BAD_PARTICIPANT_KEY' };
    throw error;
  }
}

/** A node's answer to an unmask request: its self-mask seed when the ledger finds the attempt complete, else why not. */
export function answerUnmaskRequest(request: UnmaskRequestPayload, ledger: SecureSumLedger): { ok: true; seed: Buffer } | { ok: false; code: NodeRefusal } {
  // Bonawitz's recovery asks survivors for the pairwise seeds of dropped users; with those and a self seed the hub
  // could strip every mask from one site's vector. Facet restarts rounds instead and never reveals a pairwise seed.
  if (request.pairwiseFor.length > 0) return { ok: false, code: 'PAIRWISE_NOT_REVEALED' };
  return ledger.reveal({ roundId: request.roundId, participants: request.participants, maskedSha256: request.maskedSha256 });
}

// ---- hub and `facet verify`: the totals from a round's transcript ----------------------------------------------

/** A secure round as the hub keeps it and exports it: enough to recompute the totals, never one site's numbers. */
export interface SecureTranscript {
  [key: string]: JsonValue;
  roundId: string;
  attempt: number;
  participants: string[];
  keys: string[];
  lengths: { [field: string]: number };
  phase: 'COLLECTING_MASKED' | 'COLLECTING_SEEDS' | 'DONE' | 'FAILED';
  /** FAILED: TOO_FEW_SITES, SEED_MISSING, SEED_REFUSED, TOO_MANY_ATTEMPTS, LENGTH_MISMATCH. */
  failure: string | null;
  /** Each earlier attempt and the sites it went on without. */
  restarts: { attempt: number; dropped: string[] }[];
  /** The last attempt's SECURE_ANSWER envelopes (MASKED and SEED), exactly as the sites signed them. */
  answers: JsonValue[];
}

/** A pooled row's total from a secure round, with the sites in it. */
export interface PooledTotal {
  key: Record<string, string>;
  patients: number;
  values: Record<string, number | number[]>;
  sites: string[];
}

/**
 * The pooled totals of a DONE round: every answer's signature checked (with `keys`, the registry's lookup), the masked
 * vectors summed and every self mask removed (secure-sum.ts unmaskSum), the rows decoded. A key's `sites` are the
 * participants that declared a group for it. Throws SecureTransportError on any inconsistency.
 */
export function secureTotalsOf(
  kind: FederationTaskKind,
  transcript: SecureTranscript,
  declarations: ReadonlyMap<string, SecureDeclaration>,
  keys?: SignerKeys,
): PooledTotal[] {
  if (transcript.phase !== 'DONE') return [];
  const layout = rowLayout(kind, transcript.lengths);
  const length = layout.length * transcript.keys.length;
  const masked = new Map<string, BigUint64Array>();
  const seeds = new Map<string, Buffer>();
  for (const raw of transcript.answers) {
    const envelope = raw as unknown as SignedEnvelope<SecureAnswerPayload>;
    if (keys) {
      const checked = verifyEnvelope<SecureAnswerPayload>(raw, { kind: EnvelopeKind.SECURE_ANSWER, audience: 'hub', keys });
      if (!checked.ok) throw new SecureTransportError(`a secure answer of ${String(envelope?.signer)} does not verify: ${checked.code}`);
    }
    const payload = envelope.payload;
    if (payload.roundId !== transcript.roundId || payload.site !== envelope.signer || !transcript.participants.includes(payload.site)) {
      throw new SecureTransportError(`an answer of ${payload.site} is not of round ${transcript.roundId}`);
    }
    if (payload.step === 'MASKED' && payload.masked !== null) masked.set(payload.site, vectorFromBase64(payload.masked, length));
    else if (payload.step === 'SEED' && payload.seed !== null) seeds.set(payload.site, Buffer.from(payload.seed, 'base64'));
    else throw new SecureTransportError(`an answer of ${payload.site} holds neither a vector nor a seed`);
  }
  let total: BigUint64Array;
  try {
    total = unmaskSum(masked, seeds, transcript.participants);
  } catch (error) {
    if (error instanceof SecureSumError) throw new SecureTransportError(error.message);
    throw error;
  }
  const rows = decodeRound(layout, transcript.keys, total);
  return transcript.keys.map((key) => {
    const row = rows.get(key)!;
    return {
      key: JSON.parse(key) as Record<string, string>,
      patients: row.patients,
      values: row.values,
      sites: transcript.participants.filter((site) => declarations.get(site)?.keys.includes(key)),
    };
  });
}

export const maskedToWire = vectorToBase64;
