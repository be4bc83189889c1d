import { canonicalJson } from '../../server/federation/canonical-json';
import { acceptEnvelope, EnvelopeKind, FEDERATION_PROTOCOL, signEnvelope, verifyEnvelope, type SignedEnvelope } from '../../server/federation/envelope';
import { NodeIdentity, publicKeyFromBase64 } from '../../server/federation/identity';
import { MemoryNonceStore, ReplayGuard } from '../../server/federation/replay-guard';
import { Gen } from './generators';

const north = NodeIdentity.generate();
const harbour = NodeIdentity.generate();
const keys = (signer: string, keyId: string) => {
  const identity = signer === 'NORTH' ? north : signer === 'HARBOUR' ? harbour : null;
  return identity && identity.public.keyId === keyId ? publicKeyFromBase64('ed25519', identity.public.signingKey) : null;
};
const expectResult = { kind: EnvelopeKind.RESULT, audience: 'hub', keys };
const T0 = new Date('2026-03-01T12:00:00.000Z');

function result(payload: object = { taskId: 't1', counts: { tp: 12, fp: 3 } }, identity = north, signer = 'NORTH'): SignedEnvelope {
  return signEnvelope(identity, { kind: EnvelopeKind.RESULT, signer, audience: 'hub', payload: payload as never }, T0);
}

describe('signed envelopes', () => {
  it('verify after a trip through JSON with the keys in any order (generated payloads)', () => {
    const gen = new Gen(8032);
    for (let i = 0; i < 60; i++) {
      const payload = { rows: gen.json(3), n: gen.int(0, 1e6) };
      const envelope = result(payload);
      expect(envelope).toMatchObject({ protocol: FEDERATION_PROTOCOL, signer: 'NORTH', keyId: north.public.keyId, signedAt: T0.toISOString() });
      expect(envelope.nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
      // A receiver sees whatever key order the sender's JSON library wrote.
      const shuffled = Object.fromEntries(gen.shuffle(Object.entries(JSON.parse(JSON.stringify(envelope)))));
      const checked = verifyEnvelope(shuffled, expectResult);
      expect(checked).toEqual({ ok: true, envelope: JSON.parse(JSON.stringify(envelope)) });
    }
  });

  it('gives each envelope its own nonce', () => {
    const nonces = new Set(Array.from({ length: 200 }, () => result().nonce));
    expect(nonces.size).toBe(200);
  });

  it.each<[string, (e: Record<string, unknown>) => unknown, string]>([
    ['not an object', () => [1], 'MALFORMED'],
    ['a missing field', ({ nonce: _n, ...e }) => e, 'MALFORMED'],
    ['an extra field', (e) => ({ ...e, extra: 1 }), 'MALFORMED'],
    ['a non-string signature', (e) => ({ ...e, signature: 7 }), 'MALFORMED'],
    ['another protocol', (e) => ({ ...e, protocol: 'facet-federation/0' }), 'UNSUPPORTED_PROTOCOL'],
    ['another kind', (e) => ({ ...e, kind: EnvelopeKind.CLAIM }), 'WRONG_KIND'],
    ['another audience', (e) => ({ ...e, audience: 'other-hub' }), 'WRONG_AUDIENCE'],
    ['an unknown signer', (e) => ({ ...e, signer: 'ELSEWHERE' }), 'UNKNOWN_SIGNER'],
    ['another site claiming to be the signer', (e) => ({ ...e, signer: 'HARBOUR' }), 'UNKNOWN_SIGNER'],
    ['a changed payload', (e) => ({ ...e, payload: { taskId: 't1', counts: { tp: 13, fp: 3 } } }), 'BAD_SIGNATURE'],
    ['a changed time', (e) => ({ ...e, signedAt: '2026-03-01T12:00:01.000Z' }), 'BAD_SIGNATURE'],
    ['a changed nonce', (e) => ({ ...e, nonce: 'A'.repeat(22) }), 'BAD_SIGNATURE'],
    ['a signature of other bytes', (e) => ({ ...e, signature: north.sign(Buffer.from('x')).toString('base64') }), 'BAD_SIGNATURE'],
    ['an empty signature', (e) => ({ ...e, signature: '' }), 'BAD_SIGNATURE'],
    ['a payload that is not JSON', (e) => ({ ...e, payload: { n: NaN } }), 'MALFORMED'],
  ])('are refused with %s', (_what, change, code) => {
    const envelope = JSON.parse(JSON.stringify(result()));
    expect(verifyEnvelope(change(envelope), expectResult)).toMatchObject({ ok: false, code });
  });

  it('are refused when signed by the right key over a payload hash that is not the payload (PAYLOAD_HASH_MISMATCH)', () => {
    const { signature: _s, ...unsigned } = result();
    const forged = { ...unsigned, payloadSha256: '0'.repeat(64) };
    const signature = north.sign(Buffer.from(canonicalJson(forged), 'utf8')).toString('base64');
    expect(verifyEnvelope({ ...forged, signature }, expectResult)).toMatchObject({ ok: false, code: 'PAYLOAD_HASH_MISMATCH' });
  });

  it('are accepted once: a replay inside the window is REPLAYED, one after it STALE, and one from far ahead FROM_THE_FUTURE', async () => {
    let now = T0.getTime();
    const clock = () => new Date(now);
    const replay = new ReplayGuard(new MemoryNonceStore(clock), { windowMs: 60_000, clock });
    const envelope = result();
    expect(await acceptEnvelope(envelope, { ...expectResult, replay })).toMatchObject({ ok: true });
    now += 30_000;
    expect(await acceptEnvelope(envelope, { ...expectResult, replay })).toMatchObject({ ok: false, code: 'REPLAYED' });
    now += 31_000;
    expect(await acceptEnvelope(envelope, { ...expectResult, replay })).toMatchObject({ ok: false, code: 'STALE' });
    now = T0.getTime() - 61_000;
    expect(await acceptEnvelope(result(), { ...expectResult, replay })).toMatchObject({ ok: false, code: 'FROM_THE_FUTURE' });
  });

  it('do not reach the replay store when the signature fails, so forged junk cannot fill it', async () => {
    const store = new MemoryNonceStore(() => T0);
    const replay = new ReplayGuard(store, { clock: () => T0 });
    const forged = { ...result(), signer: 'HARBOUR' };
    expect(await acceptEnvelope(forged, { ...expectResult, replay })).toMatchObject({ ok: false, code: 'UNKNOWN_SIGNER' });
    expect(store.size).toBe(0);
  });
});
