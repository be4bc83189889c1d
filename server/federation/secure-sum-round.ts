import { newSelfMaskSeed, SEED_BYTES, unmaskSum, vectorSha256 } from './secure-sum';

/**
 * The two sides of one pooled row's secure sum over several attempts (secure-sum.ts has the arithmetic).
 *
 * Hub (SecureSumRound): attempt k runs with a participant set P_k and round id `<rowId>#<k>`. Phase 1 collects every
 * participant's masked vector; phase 2 sends each the unmask request (the round id, P_k and the sha256 of every masked
 * vector it holds) and collects the self-mask seeds; then it has the total. When the attempt's deadline passes in phase
 * 1, the sites that did send form P_{k+1} (if at least minSites remain) and the row starts again with fresh masks; the
 * vectors of attempt k are useless to everyone, since the pairwise masks with the missing site never cancel. When it
 * passes in phase 2 the row fails (SEED_MISSING): some sites have revealed, and they will refuse any other set.
 *
 * Node (SecureSumLedger): what stops a hub that lies about a dropout. If the hub held the total over P and then a
 * "restart" over P minus D, the difference would be D's contribution. A site therefore (1) masks each round id once,
 * (2) reveals its seed only when the unmask request lists exactly the attempt's participants with a hash for each and
 * its own hash is what it sent (so the hub holds every vector: the attempt completes), and (3) once it has revealed for
 * a row, takes part in that row again only with the same participant set. A genuine dropout happens in phase 1, before
 * anyone revealed, so the restart is allowed. The row's fingerprint is computed by the node from the query itself
 * (kind, scope, grouping, row key; not the hub's task id), so a renamed task is still the same row.
 */
export type RoundPhase = 'COLLECTING_MASKED' | 'COLLECTING_SEEDS' | 'DONE' | 'FAILED';

export interface AttemptPlan {
  roundId: string;
  attempt: number;
  participants: string[];
}

/** What the hub sends each participant in phase 2 (inside a signed envelope). */
export interface UnmaskRequest {
  roundId: string;
  participants: string[];
  /** Participant code -> sha256 of the masked vector the hub holds from it. */
  maskedSha256: Record<string, string>;
}

export type RoundRejection = 'WRONG_ROUND' | 'WRONG_PHASE' | 'NOT_A_PARTICIPANT' | 'DUPLICATE' | 'LENGTH_MISMATCH' | 'BAD_SEED';

export type ExpiryOutcome =
  | { outcome: 'RESTARTED'; dropped: string[]; plan: AttemptPlan }
  | { outcome: 'FAILED'; reason: 'TOO_FEW_SITES' | 'SEED_MISSING' | 'TOO_MANY_ATTEMPTS'; missing: string[] }
  | { outcome: 'DONE' };

const sorted = (codes: readonly string[]) => [...codes].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && sorted(a).every((c, i) => c === sorted(b)[i]);

export class SecureSumRound {
  private attempt = 1;
  private participants: string[];
  private phaseNow: RoundPhase = 'COLLECTING_MASKED';
  private masked = new Map<string, BigUint64Array>();
  private seeds = new Map<string, Buffer>();
  private totalVector: BigUint64Array | null = null;
  private readonly maxAttempts: number;

  constructor(
    readonly rowId: string,
    participants: readonly string[],
    private readonly options: { minSites: number; length: number; maxAttempts?: number },
  ) {
    if (new Set(participants).size !== participants.length) throw new Error('participants must be distinct');
    if (options.minSites < 2 || participants.length < options.minSites) throw new Error('a secure sum needs at least minSites >= 2 participants');
    this.participants = sorted(participants);
    this.maxAttempts = options.maxAttempts ?? 3;
  }

  get phase(): RoundPhase {
    return this.phaseNow;
  }

  get plan(): AttemptPlan {
    return { roundId: `${this.rowId}#${this.attempt}`, attempt: this.attempt, participants: [...this.participants] };
  }

  receiveMasked(site: string, roundId: string, vector: BigUint64Array): 'ACCEPTED' | RoundRejection {
    const refused = this.check(site, roundId, 'COLLECTING_MASKED');
    if (refused) return refused;
    if (this.masked.has(site)) return 'DUPLICATE';
    if (vector.length !== this.options.length) return 'LENGTH_MISMATCH';
    this.masked.set(site, vector);
    if (this.masked.size === this.participants.length) this.phaseNow = 'COLLECTING_SEEDS';
    return 'ACCEPTED';
  }

  /** Phase 2's request, once every participant's vector is in; null before. */
  unmaskRequest(): UnmaskRequest | null {
    if (this.phaseNow !== 'COLLECTING_SEEDS') return null;
    return {
      roundId: this.plan.roundId,
      participants: [...this.participants],
      maskedSha256: Object.fromEntries(this.participants.map((p) => [p, vectorSha256(this.masked.get(p) as BigUint64Array)])),
    };
  }

  receiveSeed(site: string, roundId: string, seed: Buffer): 'ACCEPTED' | RoundRejection {
    const refused = this.check(site, roundId, 'COLLECTING_SEEDS');
    if (refused) return refused;
    if (this.seeds.has(site)) return 'DUPLICATE';
    if (seed.length !== SEED_BYTES) return 'BAD_SEED';
    this.seeds.set(site, seed);
    if (this.seeds.size === this.participants.length) {
      this.totalVector = unmaskSum(this.masked, this.seeds, this.participants);
      this.phaseNow = 'DONE';
    }
    return 'ACCEPTED';
  }

  /** The unmasked total (modulo 2^64; fixed-point.ts decodes it), once every seed is in. */
  total(): BigUint64Array | null {
    return this.totalVector;
  }

  /** The current attempt's deadline has passed. */
  expire(): ExpiryOutcome {
    if (this.phaseNow === 'DONE') return { outcome: 'DONE' };
    if (this.phaseNow === 'FAILED') return { outcome: 'FAILED', reason: 'TOO_MANY_ATTEMPTS', missing: [] };
    if (this.phaseNow === 'COLLECTING_SEEDS') {
      this.phaseNow = 'FAILED';
      return { outcome: 'FAILED', reason: 'SEED_MISSING', missing: this.participants.filter((p) => !this.seeds.has(p)) };
    }
    const dropped = this.participants.filter((p) => !this.masked.has(p));
    const remaining = this.participants.filter((p) => this.masked.has(p));
    if (remaining.length < this.options.minSites) {
      this.phaseNow = 'FAILED';
      return { outcome: 'FAILED', reason: 'TOO_FEW_SITES', missing: dropped };
    }
    if (this.attempt >= this.maxAttempts) {
      this.phaseNow = 'FAILED';
      return { outcome: 'FAILED', reason: 'TOO_MANY_ATTEMPTS', missing: dropped };
    }
    this.attempt++;
    this.participants = remaining;
    this.masked = new Map();
    this.seeds = new Map();
    return { outcome: 'RESTARTED', dropped, plan: this.plan };
  }

  private check(site: string, roundId: string, phase: RoundPhase): RoundRejection | null {
    if (roundId !== this.plan.roundId) return 'WRONG_ROUND';
    if (this.phaseNow !== phase) return 'WRONG_PHASE';
    if (!this.participants.includes(site)) return 'NOT_A_PARTICIPANT';
    return null;
  }
}

export type LedgerRefusal =
  | 'ROUND_REUSED'
  | 'DIFFERENT_PARTICIPANTS'
  | 'TOO_FEW_PARTICIPANTS'
  | 'NOT_A_PARTICIPANT'
  | 'UNKNOWN_ROUND'
  | 'ALREADY_REVEALED'
  | 'PARTICIPANTS_CHANGED'
  | 'INCOMPLETE'
  | 'NOT_MY_VECTOR';

export interface LedgerEntry {
  roundId: string;
  fingerprint: string;
  participants: string[];
  /** base64 self-mask seed; forgotten (null) once revealed. */
  seed: string | null;
  maskedSha256: string | null;
  state: 'MASKED' | 'REVEALED';
}

/** A node's record of the rounds it masked for: plain data, so the node can keep it in its database. */
export class SecureSumLedger {
  private readonly entries = new Map<string, LedgerEntry>();

  constructor(
    readonly site: string,
    entries: readonly LedgerEntry[] = [],
  ) {
    for (const e of entries) this.entries.set(e.roundId, { ...e, participants: [...e.participants] });
  }

  /** May this site mask for `roundId`? If so, the fresh self-mask seed to mask with. */
  begin(attempt: {
    roundId: string;
    fingerprint: string;
    participants: readonly string[];
    minSites: number;
  }): { ok: true; seed: Buffer } | { ok: false; code: LedgerRefusal } {
    if (this.entries.has(attempt.roundId)) return { ok: false, code: 'ROUND_REUSED' };
    if (!attempt.participants.includes(this.site)) return { ok: false, code: 'NOT_A_PARTICIPANT' };
    if (new Set(attempt.participants).size < Math.max(2, attempt.minSites)) return { ok: false, code: 'TOO_FEW_PARTICIPANTS' };
    if (this.revealedWithOtherSet(attempt.fingerprint, attempt.participants)) return { ok: false, code: 'DIFFERENT_PARTICIPANTS' };
    const seed = newSelfMaskSeed();
    this.entries.set(attempt.roundId, {
      roundId: attempt.roundId,
      fingerprint: attempt.fingerprint,
      participants: sorted(attempt.participants),
      seed: seed.toString('base64'),
      maskedSha256: null,
      state: 'MASKED',
    });
    return { ok: true, seed };
  }

  /** Remembers the hash of the masked vector sent, to compare with the unmask request. */
  recordMasked(roundId: string, maskedSha256: string): void {
    const entry = this.entries.get(roundId);
    if (!entry) throw new Error(`no round ${roundId} was begun`);
    entry.maskedSha256 = maskedSha256;
  }

  /** The seed for an unmask request that proves the attempt complete; a refusal otherwise. */
  reveal(request: UnmaskRequest): { ok: true; seed: Buffer } | { ok: false; code: LedgerRefusal } {
    const entry = this.entries.get(request.roundId);
    if (!entry || entry.maskedSha256 === null) return { ok: false, code: 'UNKNOWN_ROUND' };
    if (entry.state === 'REVEALED') return { ok: false, code: 'ALREADY_REVEALED' };
    if (!sameSet(request.participants, entry.participants)) return { ok: false, code: 'PARTICIPANTS_CHANGED' };
    if (entry.participants.some((p) => typeof request.maskedSha256[p] !== 'string')) return { ok: false, code: 'INCOMPLETE' };
    if (request.maskedSha256[this.site] !== entry.maskedSha256) return { ok: false, code: 'NOT_MY_VECTOR' };
    if (this.revealedWithOtherSet(entry.fingerprint, entry.participants)) return { ok: false, code: 'DIFFERENT_PARTICIPANTS' };
    const seed = Buffer.from(entry.seed as string, 'base64');
    entry.state = 'REVEALED';
    entry.seed = null;
    return { ok: true, seed };
  }

  /** Plain copies, for the node to persist. */
  snapshot(): LedgerEntry[] {
    return [...this.entries.values()].map((e) => ({ ...e, participants: [...e.participants] }));
  }

  private revealedWithOtherSet(fingerprint: string, participants: readonly string[]): boolean {
    for (const e of this.entries.values()) {
      if (e.fingerprint === fingerprint && e.state === 'REVEALED' && !sameSet(e.participants, participants)) return true;
    }
    return false;
  }
}
