import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { addModulo, decodeFixedPoint, encodeFixedPoint } from '../../server/federation/fixed-point';
import { publicKeyFromBase64 } from '../../server/federation/identity';
import {
  expandMask,
  maskContribution,
  pairwiseMaskKey,
  SecureSumError,
  unmaskSum,
  vectorFromBase64,
  vectorSha256,
  vectorToBase64,
  type Participant,
} from '../../server/federation/secure-sum';
import { SecureSumLedger, SecureSumRound, type UnmaskRequest } from '../../server/federation/secure-sum-round';
import { Gen } from './generators';

/** A seeded X25519 site: PKCS#8 wraps the 32 private bytes behind a fixed 16-byte header (RFC 8410). */
interface Site extends Participant {
  privateKey: KeyObject;
  ledger: SecureSumLedger;
}
const X25519_PKCS8_HEADER = Buffer.from('302e020100300506032b656e04220420', 'hex');
function site(code: string, gen: Gen): Site {
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_HEADER, gen.bytes(32)]), format: 'der', type: 'pkcs8' });
  return { code, privateKey, agreementKey: createPublicKey(privateKey), ledger: new SecureSumLedger(code) };
}
const CODES = ['ALPHA', 'BRAVO', 'CHARLIE', 'DELTA', 'ECHO', 'FOXTROT', 'GOLF'];

/** One participant's side of an attempt: begin in the ledger, mask, record the hash; null if the ledger refuses. */
function contribute(s: Site, plan: { roundId: string; participants: string[] }, everyone: Site[], values: BigUint64Array, fingerprint = 'row') {
  const begun = s.ledger.begin({ roundId: plan.roundId, fingerprint, participants: plan.participants, minSites: 2 });
  if (!begun.ok) return begun;
  const participants = everyone.filter((p) => plan.participants.includes(p.code));
  const masked = maskContribution({ own: s.code, ownAgreementKey: s.privateKey, roundId: plan.roundId, participants, values, selfMaskSeed: begun.seed });
  s.ledger.recordMasked(plan.roundId, vectorSha256(masked));
  return { ok: true as const, masked };
}

/** Runs a full honest attempt over `sites` and returns the hub's decoded total. */
function runRound(sites: Site[], inputs: Map<string, BigUint64Array>, rowId: string, length: number): SecureSumRound {
  const round = new SecureSumRound(
    rowId,
    sites.map((s) => s.code),
    { minSites: 2, length },
  );
  for (const s of sites) {
    const sent = contribute(s, round.plan, sites, inputs.get(s.code) as BigUint64Array);
    if (!sent.ok) throw new Error(sent.code);
    expect(round.receiveMasked(s.code, round.plan.roundId, sent.masked)).toBe('ACCEPTED');
  }
  const request = round.unmaskRequest() as UnmaskRequest;
  for (const s of sites) {
    const revealed = s.ledger.reveal(request);
    if (!revealed.ok) throw new Error(revealed.code);
    expect(round.receiveSeed(s.code, request.roundId, revealed.seed)).toBe('ACCEPTED');
  }
  return round;
}

describe('secure summation', () => {
  it('gives the exact plain sum for 2 to 7 sites and generated vectors of reals', () => {
    const gen = new Gen(2017);
    for (let n = 2; n <= 7; n++) {
      for (let trial = 0; trial < 6; trial++) {
        const sites = CODES.slice(0, n).map((c) => site(c, gen));
        const length = gen.int(1, 64);
        const format = { fractionBits: gen.pick([0, 32]), maxTerms: n };
        const reals = new Map(
          sites.map((s) => [
            s.code,
            Array.from({ length }, () => (format.fractionBits === 0 ? gen.int(0, 5000) : (gen.random() - 0.5) * 10 ** gen.int(-3, 6))),
          ]),
        );
        const inputs = new Map(sites.map((s) => [s.code, encodeFixedPoint(reals.get(s.code) as number[], format)]));
        const round = runRound(gen.shuffle(sites), inputs, `task-${n}-${trial}/row`, length);
        expect(round.phase).toBe('DONE');
        // Bit-exact: the unmasked total is the modular sum of the encodings, so it decodes as the plain sum does.
        expect(round.total()).toEqual(addModulo([...inputs.values()]));
        const decoded = decodeFixedPoint(round.total() as BigUint64Array, format);
        for (let i = 0; i < length; i++) {
          const plain = sites.reduce((sum, s) => sum + (reals.get(s.code) as number[])[i], 0);
          expect(Math.abs(decoded[i] - plain)).toBeLessThanOrEqual(n * 2 ** -33 + Math.abs(plain) * 2 ** -50);
        }
      }
    }
  });

  it('derives the same pair key on both sides, and another for another round or pair', () => {
    const gen = new Gen(7748);
    const [a, b, c] = ['A', 'B', 'C'].map((code) => site(code, gen));
    const ab = pairwiseMaskKey(a.privateKey, 'A', b, 'r#1');
    expect(pairwiseMaskKey(b.privateKey, 'B', a, 'r#1')).toEqual(ab);
    expect(pairwiseMaskKey(a.privateKey, 'A', b, 'r#2')).not.toEqual(ab);
    expect(pairwiseMaskKey(a.privateKey, 'A', c, 'r#1')).not.toEqual(ab);
    expect(ab).toHaveLength(32);
  });

  it('makes one masked vector look uniform whatever the input (chi-square and bit-balance smoke test, not a proof)', () => {
    const gen = new Gen(99);
    const sites = CODES.slice(0, 3).map((c) => site(c, gen));
    const length = 4096;
    const inputs: [string, BigUint64Array][] = [
      ['zeros', new BigUint64Array(length)],
      ['a constant count', encodeFixedPoint(new Array(length).fill(12), { fractionBits: 0, maxTerms: 3 })],
      [
        'small reals',
        encodeFixedPoint(
          Array.from({ length }, (_, i) => i / length),
          { fractionBits: 32, maxTerms: 3 },
        ),
      ],
    ];
    for (const [, values] of inputs) {
      const masked = maskContribution({
        own: sites[1].code,
        ownAgreementKey: sites[1].privateKey,
        roundId: `uniform#${gen.int(0, 1e9)}`,
        participants: sites,
        values,
        selfMaskSeed: gen.bytes(32),
      });
      const bytes = Buffer.from(vectorToBase64(masked), 'base64');
      const counts = new Array(256).fill(0);
      for (const byte of bytes) counts[byte]++;
      const expected = bytes.length / 256;
      const chiSquare = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
      // 255 degrees of freedom: the 0.1% and 99.9% points are about 190 and 330; a readable input lands far outside.
      expect(chiSquare).toBeGreaterThan(190);
      expect(chiSquare).toBeLessThan(330);
      for (let bit = 0n; bit < 64n; bit++) {
        let ones = 0;
        for (const v of masked) ones += Number((v >> bit) & 1n);
        // Binomial(4096, 1/2): mean 2048, sd 32; five sd either side.
        expect(Math.abs(ones - 2048)).toBeLessThan(160);
      }
    }
    // The same check on the unmasked input fails: the test can tell structure from noise.
    const plain = Buffer.from(vectorToBase64(inputs[1][1]), 'base64');
    const zeros = plain.filter((b) => b === 0).length;
    expect(zeros).toBeGreaterThan(plain.length / 2);
  });

  it('restarts with the remaining sites when one drops out before sending, and sums exactly over them', () => {
    const gen = new Gen(5);
    const sites = CODES.slice(0, 5).map((c) => site(c, gen));
    const length = 16;
    const inputs = new Map(
      sites.map((s) => [
        s.code,
        encodeFixedPoint(
          Array.from({ length }, () => gen.int(0, 100)),
          { fractionBits: 0, maxTerms: 5 },
        ),
      ]),
    );
    const round = new SecureSumRound('task-9/pooled', CODES.slice(0, 5), { minSites: 3, length });
    const first = round.plan;
    const firstMasked = new Map<string, BigUint64Array>();
    for (const s of sites.slice(0, 4)) {
      const sent = contribute(s, first, sites, inputs.get(s.code) as BigUint64Array);
      if (!sent.ok) throw new Error(sent.code);
      firstMasked.set(s.code, sent.masked);
      round.receiveMasked(s.code, first.roundId, sent.masked);
    }
    expect(round.unmaskRequest()).toBeNull();
    // ECHO never answers; the attempt's deadline passes.
    const expiry = round.expire();
    expect(expiry).toMatchObject({ outcome: 'RESTARTED', dropped: ['ECHO'], plan: { attempt: 2, participants: CODES.slice(0, 4) } });
    const second = round.plan;
    expect(second.roundId).not.toBe(first.roundId);
    // A late vector for the old attempt is refused.
    expect(round.receiveMasked('ECHO', first.roundId, new BigUint64Array(length))).toBe('WRONG_ROUND');

    // The first attempt's vectors are worthless: the masks shared with ECHO never cancel, and no site reveals for it.
    const firstRequest: UnmaskRequest = {
      roundId: first.roundId,
      participants: CODES.slice(0, 4),
      maskedSha256: Object.fromEntries([...firstMasked].map(([c, v]) => [c, vectorSha256(v)])),
    };
    expect(sites[0].ledger.reveal(firstRequest)).toEqual({ ok: false, code: 'PARTICIPANTS_CHANGED' });
    const withEcho = { ...firstRequest, participants: CODES.slice(0, 5) };
    expect(sites[0].ledger.reveal(withEcho)).toEqual({ ok: false, code: 'INCOMPLETE' });

    const remaining = sites.slice(0, 4);
    for (const s of remaining) {
      const sent = contribute(s, second, sites, inputs.get(s.code) as BigUint64Array);
      if (!sent.ok) throw new Error(sent.code);
      expect(round.receiveMasked(s.code, second.roundId, sent.masked)).toBe('ACCEPTED');
    }
    const request = round.unmaskRequest() as UnmaskRequest;
    for (const s of remaining) {
      const revealed = s.ledger.reveal(request);
      if (!revealed.ok) throw new Error(revealed.code);
      round.receiveSeed(s.code, request.roundId, revealed.seed);
    }
    expect(round.total()).toEqual(addModulo(remaining.map((s) => inputs.get(s.code) as BigUint64Array)));
    expect(round.expire()).toEqual({ outcome: 'DONE' });
  });

  it('fails the row when fewer than minSites remain, when a seed is missing, or after too many attempts', () => {
    const few = new SecureSumRound('t/r', ['A', 'B', 'C'], { minSites: 3, length: 1 });
    few.receiveMasked('A', few.plan.roundId, new BigUint64Array(1));
    few.receiveMasked('B', few.plan.roundId, new BigUint64Array(1));
    expect(few.expire()).toEqual({ outcome: 'FAILED', reason: 'TOO_FEW_SITES', missing: ['C'] });
    expect(few.phase).toBe('FAILED');

    const seedless = new SecureSumRound('t/r', ['A', 'B'], { minSites: 2, length: 1 });
    for (const c of ['A', 'B']) seedless.receiveMasked(c, seedless.plan.roundId, new BigUint64Array(1));
    seedless.receiveSeed('A', seedless.plan.roundId, Buffer.alloc(32));
    expect(seedless.expire()).toEqual({ outcome: 'FAILED', reason: 'SEED_MISSING', missing: ['B'] });

    const tired = new SecureSumRound('t/r', ['A', 'B', 'C', 'D'], { minSites: 2, length: 1, maxAttempts: 2 });
    for (const c of ['A', 'B', 'C']) tired.receiveMasked(c, tired.plan.roundId, new BigUint64Array(1));
    expect(tired.expire()).toMatchObject({ outcome: 'RESTARTED', dropped: ['D'] });
    for (const c of ['A', 'B']) tired.receiveMasked(c, tired.plan.roundId, new BigUint64Array(1));
    expect(tired.expire()).toEqual({ outcome: 'FAILED', reason: 'TOO_MANY_ATTEMPTS', missing: ['C'] });
  });

  it('refuses at the hub what does not belong to the attempt', () => {
    const round = new SecureSumRound('t/r', ['A', 'B'], { minSites: 2, length: 2 });
    const id = round.plan.roundId;
    expect(round.receiveMasked('Z', id, new BigUint64Array(2))).toBe('NOT_A_PARTICIPANT');
    expect(round.receiveMasked('A', 'other#1', new BigUint64Array(2))).toBe('WRONG_ROUND');
    expect(round.receiveMasked('A', id, new BigUint64Array(3))).toBe('LENGTH_MISMATCH');
    expect(round.receiveSeed('A', id, Buffer.alloc(32))).toBe('WRONG_PHASE');
    expect(round.receiveMasked('A', id, new BigUint64Array(2))).toBe('ACCEPTED');
    expect(round.receiveMasked('A', id, new BigUint64Array(2))).toBe('DUPLICATE');
    expect(round.receiveMasked('B', id, new BigUint64Array(2))).toBe('ACCEPTED');
    expect(round.receiveSeed('B', id, Buffer.alloc(31))).toBe('BAD_SEED');
    expect(() => new SecureSumRound('t/r', ['A', 'A'], { minSites: 2, length: 1 })).toThrow(/distinct/);
    expect(() => new SecureSumRound('t/r', ['A'], { minSites: 2, length: 1 })).toThrow(/minSites/);
  });

  describe('a node against a hub that lies about a dropout', () => {
    const gen = new Gen(63);
    const sites = CODES.slice(0, 4).map((c) => site(c, gen));
    const length = 4;
    const inputs = new Map(sites.map((s) => [s.code, encodeFixedPoint([gen.int(0, 9), gen.int(0, 9), 1, 0], { fractionBits: 0, maxTerms: 4 })]));

    it('completes the honest round over all four', () => {
      const round = runRound(sites, inputs, 'task-7/pooled', length);
      expect(round.total()).toEqual(addModulo([...inputs.values()]));
    });

    it('is refused a "restart" without DELTA once the row was revealed, which would give DELTA by difference', () => {
      for (const s of sites.slice(0, 3)) {
        expect(contribute(s, { roundId: 'task-7/pooled#2', participants: CODES.slice(0, 3) }, sites, inputs.get(s.code) as BigUint64Array, 'row')).toEqual({
          ok: false,
          code: 'DIFFERENT_PARTICIPANTS',
        });
      }
    });

    it('may ask the same row again of the same four, but never reuse a round id', () => {
      const again = contribute(sites[0], { roundId: 'task-8/pooled#1', participants: CODES.slice(0, 4) }, sites, inputs.get('ALPHA') as BigUint64Array);
      expect(again.ok).toBe(true);
      expect(contribute(sites[0], { roundId: 'task-7/pooled#1', participants: CODES.slice(0, 4) }, sites, inputs.get('ALPHA') as BigUint64Array)).toEqual({
        ok: false,
        code: 'ROUND_REUSED',
      });
    });

    it('does not reveal for a request that lists a vector it did not send, or twice', () => {
      const a = sites[0];
      const plan = { roundId: 'task-9/other#1', participants: CODES.slice(0, 4) };
      const sent = contribute(a, plan, sites, inputs.get('ALPHA') as BigUint64Array, 'other-row');
      if (!sent.ok) throw new Error(sent.code);
      const hashes = Object.fromEntries(CODES.slice(0, 4).map((c) => [c, '0'.repeat(64)]));
      expect(a.ledger.reveal({ ...plan, maskedSha256: hashes })).toEqual({ ok: false, code: 'NOT_MY_VECTOR' });
      const honest = { ...plan, maskedSha256: { ...hashes, ALPHA: vectorSha256(sent.masked) } };
      expect(a.ledger.reveal(honest).ok).toBe(true);
      expect(a.ledger.reveal(honest)).toEqual({ ok: false, code: 'ALREADY_REVEALED' });
      expect(a.ledger.reveal({ ...honest, roundId: 'never#1' })).toEqual({ ok: false, code: 'UNKNOWN_ROUND' });
      // The ledger is plain data: a node restarted from its snapshot still refuses.
      const restored = new SecureSumLedger('ALPHA', a.ledger.snapshot());
      expect(restored.reveal(honest)).toEqual({ ok: false, code: 'ALREADY_REVEALED' });
      expect(restored.snapshot().find((e) => e.roundId === plan.roundId)?.seed).toBeNull();
    });

    it('refuses to take part with too few participants or without itself', () => {
      const a = sites[0];
      expect(a.ledger.begin({ roundId: 'x#1', fingerprint: 'x', participants: ['ALPHA', 'BRAVO'], minSites: 3 })).toEqual({
        ok: false,
        code: 'TOO_FEW_PARTICIPANTS',
      });
      expect(a.ledger.begin({ roundId: 'x#2', fingerprint: 'x', participants: ['BRAVO', 'CHARLIE'], minSites: 2 })).toEqual({
        ok: false,
        code: 'NOT_A_PARTICIPANT',
      });
    });
  });

  it('refuses bad keys, participant lists and vectors with typed errors', () => {
    const gen = new Gen(1);
    const [a, b] = ['A', 'B'].map((c) => site(c, gen));
    const lowOrder: Participant = { code: 'B', agreementKey: publicKeyFromBase64('x25519', Buffer.alloc(32).toString('base64')) };
    const base = { own: 'A', ownAgreementKey: a.privateKey, roundId: 'r#1', values: new BigUint64Array(2), selfMaskSeed: Buffer.alloc(32) };
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        expect(error).toBeInstanceOf(SecureSumError);
        return (error as SecureSumError).code;
      }
      return 'no error';
    };
    expect(code(() => maskContribution({ ...base, participants: [a, lowOrder] }))).toBe('BAD_AGREEMENT_KEY');
    expect(code(() => maskContribution({ ...base, participants: [a, b, b] }))).toBe('DUPLICATE_PARTICIPANT');
    expect(code(() => maskContribution({ ...base, participants: [a] }))).toBe('TOO_FEW_PARTICIPANTS');
    expect(code(() => maskContribution({ ...base, own: 'C', participants: [a, b] }))).toBe('NOT_A_PARTICIPANT');
    expect(code(() => maskContribution({ ...base, participants: [a, b], selfMaskSeed: Buffer.alloc(16) }))).toBe('BAD_SEED');
    expect(code(() => expandMask(Buffer.alloc(31), 1))).toBe('BAD_SEED');
    const masked = new Map([
      ['A', new BigUint64Array(2)],
      ['B', new BigUint64Array(3)],
    ]);
    const seeds = new Map([
      ['A', Buffer.alloc(32)],
      ['B', Buffer.alloc(32)],
    ]);
    expect(code(() => unmaskSum(masked, seeds, ['A', 'B']))).toBe('LENGTH_MISMATCH');
    expect(code(() => unmaskSum(masked, new Map([['A', Buffer.alloc(32)]]), ['A', 'B']))).toBe('BAD_SEED');
    expect(code(() => unmaskSum(masked, seeds, ['A', 'C']))).toBe('NOT_A_PARTICIPANT');
    expect(code(() => vectorFromBase64(vectorToBase64(new BigUint64Array(3)), 2))).toBe('LENGTH_MISMATCH');
    expect(code(() => vectorFromBase64('not base64!', 1))).toBe('LENGTH_MISMATCH');
  });

  it('carries vectors through JSON as base64 without loss (generated values above 2^53)', () => {
    const gen = new Gen(3);
    for (let i = 0; i < 50; i++) {
      const vector = new BigUint64Array(gen.int(0, 30));
      for (let j = 0; j < vector.length; j++) vector[j] = (BigInt(gen.int(0, 2 ** 31)) << 33n) ^ BigInt(gen.int(0, 2 ** 31));
      expect(vectorFromBase64(JSON.parse(JSON.stringify(vectorToBase64(vector))), vector.length)).toEqual(vector);
    }
  });
});
