import { canonicalJson } from '../../server/federation/canonical-json';
import { EnvelopeKind, signEnvelope } from '../../server/federation/envelope';
import { NodeIdentity, publicKeyFromBase64 } from '../../server/federation/identity';
import { FederationTaskKind, type MaskRequestPayload, type SecureDeclaration, type UnmaskRequestPayload } from '../../server/federation/protocol';
import { aggregateVocabulary, type AggregateGroup, type SuppressedGroup } from '../../server/federation/release-policy';
import { vectorSha256, vectorToBase64 } from '../../server/federation/secure-sum';
import { SecureSumLedger } from '../../server/federation/secure-sum-round';
import {
  answerMaskRequest,
  answerUnmaskRequest,
  checkSecureDeclaration,
  declareSecure,
  isSecureTask,
  secureFingerprint,
  secureTotalsOf,
  SecureTransportError,
  type SecureShare,
  type SecureTranscript,
} from '../../server/federation/secure-sum-transport';
import { SiteRegistry, type RegisteredSite } from '../../server/federation/site-registry';
import { WEISHAUPT_FEATURES } from '../../server/domain';
import { Gen } from './generators';

/**
 * Secure summation as the transport carries it, with the pure pieces each side runs: nodes declare, mask under their
 * ledgers and reveal; the "hub" only moves signed envelopes and recomputes the totals from them, as `facet verify` does.
 */

const FEATURES = WEISHAUPT_FEATURES.map((f) => f.code);
const TASK = '0b6f3f0e-2a55-4a43-8d0c-4e0f5a0c1a01';

interface Member {
  code: string;
  identity: NodeIdentity;
  ledger: SecureSumLedger;
  declaration: SecureDeclaration;
  share: SecureShare;
  plain: Map<string, { patients: number; values: Record<string, number | number[]> }>;
}

/** Kinds and the values of one generated group. */
const KINDS: { kind: FederationTaskKind; values: (gen: Gen) => Record<string, number | number[]>; exact: boolean }[] = [
  {
    kind: FederationTaskKind.BINARY_COUNTS,
    values: (gen) => ({
      ...Object.fromEntries(['tp', 'fp', 'tn', 'fn'].map((f) => [f, gen.int(0, 500)])),
      ...Object.fromEntries(['clusters', 'x', 'n', 'xx', 'xn', 'nn'].map((f) => [f, Array.from({ length: 6 }, () => gen.int(0, 5000))])),
    }),
    exact: true,
  },
  {
    kind: FederationTaskKind.BOOTSTRAP_SUMS,
    values: (gen) => Object.fromEntries(['tp', 'fp', 'tn', 'fn'].map((f) => [f, Array.from({ length: 120 }, () => gen.int(0, 900))])),
    exact: true,
  },
  {
    kind: FederationTaskKind.AGREEMENT_TABLE,
    values: (gen) => ({ table: Array.from({ length: 9 }, () => gen.int(0, 60)), discordant: Array.from({ length: 4 }, () => gen.int(0, 60)) }),
    exact: true,
  },
  { kind: FederationTaskKind.PLACEMENT_SUMS, values: (gen) => ({ sums: Array.from({ length: 6 }, () => (gen.random() - 0.5) * 40) }), exact: false },
];

function federation(gen: Gen, kind: (typeof KINDS)[number], sites: number): Member[] {
  return Array.from({ length: sites }, (_, i) => {
    const code = `S${i}`;
    const groups: AggregateGroup[] = [];
    const suppressed: SuppressedGroup[] = [];
    for (const feature of FEATURES) {
      const roll = gen.random();
      if (roll < 0.15) continue;
      if (roll < 0.3) suppressed.push({ key: { FEATURE: feature }, suppressed: true, reason: 'SMALL_GROUP' });
      else groups.push({ key: { FEATURE: feature }, patients: gen.int(5, 300), values: kind.values(gen) });
    }
    const { declaration, share } = declareSecure(kind.kind, { groups, suppressed });
    return {
      code,
      identity: NodeIdentity.generate(),
      ledger: new SecureSumLedger(code),
      declaration,
      share,
      plain: new Map(groups.map((g) => [canonicalJson(g.key), { patients: g.patients, values: g.values }])),
    };
  });
}

function registryOf(members: readonly Member[]): SiteRegistry {
  return new SiteRegistry(
    members.map((m): RegisteredSite => ({
      code: m.code,
      name: m.code,
      signingKey: m.identity.public.signingKey,
      agreementKey: m.identity.public.agreementKey,
      contact: { name: 'x', email: 'x@example.org' },
      keyId: m.identity.public.keyId,
      signingPublicKey: publicKeyFromBase64('ed25519', m.identity.public.signingKey),
      agreementPublicKey: publicKeyFromBase64('x25519', m.identity.public.agreementKey),
    })),
  );
}

/** One attempt as hub and nodes run it; returns the transcript (phase DONE when every vector and seed came). */
function runAttempt(kind: FederationTaskKind, members: readonly Member[], attempt: number, silent: readonly string[] = []): SecureTranscript {
  const participants = members.map((m) => m.code).sort();
  const keys = [...new Set(members.flatMap((m) => m.declaration.keys))].sort();
  const lengths = members.find((m) => m.declaration.keys.length > 0)!.declaration.lengths;
  const roundId = `${TASK}#${attempt}`;
  const sign = (m: Member, payload: Record<string, unknown>) =>
    signEnvelope(m.identity, { kind: EnvelopeKind.SECURE_ANSWER, signer: m.code, audience: 'hub', payload: payload as never });
  const answers: ReturnType<typeof sign>[] = [];
  const masked = new Map<string, BigUint64Array>();
  for (const m of members) {
    if (silent.includes(m.code)) continue;
    const request: MaskRequestPayload = {
      step: 'MASK',
      taskId: TASK,
      taskSha256: 'x',
      site: m.code,
      roundId,
      attempt,
      participants: members.map((p) => ({ code: p.code, agreementKey: p.identity.public.agreementKey })),
      keys,
      lengths,
      minSites: 2,
    };
    const answer = answerMaskRequest({
      request,
      kind,
      own: m.code,
      ownAgreementPrivate: m.identity.agreementPrivate,
      ownAgreementPublic: m.identity.public.agreementKey,
      declaration: m.declaration,
      share: m.share,
      fingerprint: secureFingerprint(kind, { q: 1 }),
      ledger: m.ledger,
    });
    if (!answer.ok) throw new Error(answer.code);
    masked.set(m.code, answer.vector);
    answers.push(sign(m, { taskId: TASK, roundId, site: m.code, step: 'MASKED', masked: vectorToBase64(answer.vector), seed: null, code: null }));
  }
  const base = { roundId, attempt, participants, keys, lengths, failure: null, restarts: [] };
  if (masked.size < members.length) return { ...base, phase: 'COLLECTING_MASKED', answers: answers as never };
  const maskedSha256 = Object.fromEntries([...masked].map(([code, v]) => [code, vectorSha256(v)]));
  for (const m of members) {
    const request: UnmaskRequestPayload = { step: 'UNMASK', taskId: TASK, site: m.code, roundId, participants, maskedSha256, pairwiseFor: [] };
    const revealed = answerUnmaskRequest(request, m.ledger);
    if (!revealed.ok) throw new Error(revealed.code);
    answers.push(sign(m, { taskId: TASK, roundId, site: m.code, step: 'SEED', masked: null, seed: revealed.seed.toString('base64'), code: null }));
  }
  return { ...base, phase: 'DONE', answers: answers as never };
}

function expectTotals(kind: (typeof KINDS)[number], members: readonly Member[], transcript: SecureTranscript) {
  const declarations = new Map(members.map((m) => [m.code, m.declaration]));
  const totals = secureTotalsOf(kind.kind, transcript, declarations, registryOf(members).signingKeyOf);
  expect(totals.map((t) => canonicalJson(t.key))).toEqual(transcript.keys);
  for (const total of totals) {
    const id = canonicalJson(total.key);
    const having = members.filter((m) => m.plain.has(id));
    expect(total.sites).toEqual(having.map((m) => m.code));
    expect(total.patients).toBe(having.reduce((s, m) => s + m.plain.get(id)!.patients, 0));
    for (const [field, value] of Object.entries(total.values)) {
      const expected = having.reduce<number[]>((sum, m) => {
        const v = m.plain.get(id)!.values[field];
        const arr = Array.isArray(v) ? v : [v];
        return sum.length === 0 ? [...arr] : sum.map((x, i) => x + arr[i]);
      }, []);
      const got = Array.isArray(value) ? value : [value];
      if (kind.exact) expect(got).toEqual(expected);
      else got.forEach((g, i) => expect(Math.abs(g - expected[i])).toBeLessThan(1e-9));
    }
  }
}

describe('secure sums over the transport (pure sides)', () => {
  test.each(KINDS.map((k) => [k.kind, k] as const))('%s: totals from the signed transcript equal the sites’ sums, for generated federations', (_, kind) => {
    const gen = new Gen(20261201);
    for (let c = 0; c < 8; c++) {
      const members = federation(gen, kind, gen.int(2, 5));
      if (members.every((m) => m.declaration.keys.length === 0)) continue;
      expectTotals(kind, members, runAttempt(kind.kind, members, 1));
    }
  });

  test('a silent site: the next attempt over the others gives exactly their sums', () => {
    const gen = new Gen(7);
    const kind = KINDS[0];
    const members = federation(gen, kind, 3);
    const first = runAttempt(kind.kind, members, 1, ['S2']);
    expect(first.phase).toBe('COLLECTING_MASKED');
    // Nobody revealed for attempt 1, so the ledgers let the other two go on without S2.
    expectTotals(kind, members.slice(0, 2), runAttempt(kind.kind, members.slice(0, 2), 2));
  });

  test('a node refuses every unsafe request, with its code', () => {
    const gen = new Gen(11);
    const kind = KINDS[0];
    const members = federation(gen, kind, 3);
    const transcript = runAttempt(kind.kind, members, 1);
    const [a] = members;
    const request: UnmaskRequestPayload = {
      step: 'UNMASK',
      taskId: TASK,
      site: a.code,
      roundId: transcript.roundId,
      participants: transcript.participants,
      maskedSha256: {},
      pairwiseFor: ['S2'],
    };
    // Its self seed together with pairwise seeds would strip every mask from its vector.
    expect(answerUnmaskRequest(request, new SecureSumLedger(a.code, a.ledger.snapshot()))).toEqual({ ok: false, code: 'PAIRWISE_NOT_REVEALED' });
    // Revealed once for this row: a second round without S2 would give the hub S2's numbers by difference.
    const fewer = members.slice(0, 2);
    expect(() => runAttempt(kind.kind, fewer, 2)).toThrow('DIFFERENT_PARTICIPANTS');
    const fresh = federation(new Gen(12), kind, 3);
    const ask = (m: Member, change: Partial<MaskRequestPayload>) =>
      answerMaskRequest({
        request: {
          step: 'MASK',
          taskId: TASK,
          taskSha256: 'x',
          site: m.code,
          roundId: `${TASK}#1`,
          attempt: 1,
          participants: fresh.map((p) => ({ code: p.code, agreementKey: p.identity.public.agreementKey })),
          keys: [...new Set(fresh.flatMap((p) => p.declaration.keys))].sort(),
          lengths: m.declaration.lengths,
          minSites: 2,
          ...change,
        },
        kind: kind.kind,
        own: m.code,
        ownAgreementPrivate: m.identity.agreementPrivate,
        ownAgreementPublic: m.identity.public.agreementKey,
        declaration: m.declaration,
        share: m.share,
        fingerprint: 'f',
        ledger: new SecureSumLedger(m.code),
      });
    const m = fresh.find((x) => x.declaration.keys.length > 0)!;
    expect(ask(m, { keys: [] })).toEqual({ ok: false, code: 'ROUND_MISMATCH' });
    expect(ask(m, { roundId: `${TASK}#2` })).toEqual({ ok: false, code: 'ROUND_MISMATCH' });
    expect(ask(m, { lengths: { clusters: 7, x: 6, n: 6, xx: 6, xn: 6, nn: 6 } })).toEqual({ ok: false, code: 'ROUND_MISMATCH' });
    const other = NodeIdentity.generate().public.agreementKey;
    expect(ask(m, { participants: fresh.map((p) => ({ code: p.code, agreementKey: p === m ? other : p.identity.public.agreementKey })) })).toEqual({
      ok: false,
      code: 'WRONG_OWN_KEY',
    });
    expect(ask(m, { participants: fresh.map((p) => ({ code: p.code, agreementKey: p === m ? p.identity.public.agreementKey : 'not a key' })) })).toEqual({
      ok: false,
      code: 'BAD_PARTICIPANT_KEY',
    });
    expect(ask(m, { participants: fresh.filter((p) => p !== m).map((p) => ({ code: p.code, agreementKey: p.identity.public.agreementKey })) })).toEqual({
      ok: false,
      code: 'NOT_A_PARTICIPANT',
    });
    expect(ask(m, { participants: [{ code: m.code, agreementKey: m.identity.public.agreementKey }] })).toEqual({ ok: false, code: 'TOO_FEW_PARTICIPANTS' });
  });

  test('a transcript that was tampered with gives no totals', () => {
    const kind = KINDS[0];
    const members = federation(new Gen(5), kind, 3);
    const transcript = runAttempt(kind.kind, members, 1);
    const declarations = new Map(members.map((m) => [m.code, m.declaration]));
    const keys = registryOf(members).signingKeyOf;
    const without = { ...transcript, answers: transcript.answers.slice(1) };
    expect(() => secureTotalsOf(kind.kind, without, declarations, keys)).toThrow(SecureTransportError);
    const forged = structuredClone(transcript) as unknown as Omit<SecureTranscript, 'answers'> & { answers: Array<{ payload: { seed: string | null } }> };
    const seeded = forged.answers.find((a) => a.payload.seed !== null)!;
    seeded.payload.seed = Buffer.alloc(32, 1).toString('base64');
    expect(() => secureTotalsOf(kind.kind, forged as unknown as SecureTranscript, declarations, keys)).toThrow(/does not verify/);
    const moved = { ...transcript, roundId: `${TASK}#9` };
    expect(() => secureTotalsOf(kind.kind, moved, declarations, keys)).toThrow(/not of round/);
  });

  test('which tasks are secure, and the hub’s check of declarations', () => {
    expect(isSecureTask('BINARY_COUNTS', { groupBy: ['FEATURE'] }, ['A', 'B'])).toBe(true);
    expect(isSecureTask('BINARY_COUNTS', { groupBy: [] }, ['A', 'B'])).toBe(true);
    expect(isSecureTask('BINARY_COUNTS', { groupBy: ['SITE', 'FEATURE'] }, ['A', 'B'])).toBe(false);
    expect(isSecureTask('BINARY_COUNTS', { groupBy: ['FEATURE'] }, ['A'])).toBe(false);
    expect(isSecureTask('STUDY_FLOW', { scope: {} }, ['A', 'B'])).toBe(false);
    expect(isSecureTask('INFERENCE', { groupBy: [] }, ['A', 'B'])).toBe(false);
    const vocabulary = aggregateVocabulary();
    const good = { aggregate: { groups: [] }, secure: { keys: ['{"FEATURE":"EROSION"}'], withheld: [], lengths: { x: 6 } } };
    expect(checkSecureDeclaration(true, good, vocabulary)).toBe(true);
    expect(checkSecureDeclaration(false, good, vocabulary)).toBe(false);
    expect(checkSecureDeclaration(false, { aggregate: { groups: [] } }, vocabulary)).toBe(true);
    const bad: Array<[string, unknown]> = [
      ['numbers in plain', { ...good, aggregate: { groups: [{ key: {}, patients: 9, values: {} }] } }],
      ['no declaration', { aggregate: { groups: [] } }],
      ['a SITE key', { ...good, secure: { ...good.secure, keys: ['{"SITE":"NORTH"}'] } }],
      ['a word outside the vocabulary', { ...good, secure: { ...good.secure, keys: ['{"FEATURE":"patient-4711"}'] } }],
      ['a key not in canonical form', { ...good, secure: { ...good.secure, keys: ['{ "FEATURE": "EROSION" }'] } }],
      ['a key twice', { ...good, secure: { ...good.secure, keys: ['{"FEATURE":"EROSION"}', '{"FEATURE":"EROSION"}'] } }],
      ['a free-text reason', { ...good, secure: { ...good.secure, withheld: [{ key: '{"FEATURE":"EROSION"}', reason: 'too small, 3 patients' }] } }],
      ['a broken length', { ...good, secure: { ...good.secure, lengths: { x: 0 } } }],
      ['an extra field', { ...good, secure: { ...good.secure, values: [1] } }],
    ];
    for (const [what, payload] of bad) expect([what, checkSecureDeclaration(true, payload as object, vocabulary)]).toEqual([what, false]);
  });
});
