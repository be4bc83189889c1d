/**
 * Refuses a signed message seen before, or signed too long ago (or too far ahead) to tell. A signature proves who
 * wrote a message, not that it is new: without this, a recorded claim or result could be sent again by anyone on the
 * path. Each message carries a random nonce and its signing time; the guard accepts a time within `windowMs` of its
 * own clock and a (key, nonce) pair it has not stored, and stores the pair until the time leaves the window (after
 * that the time check alone refuses it, so the store stays as small as one window of traffic).
 */
export type ReplayVerdict = 'FRESH' | 'REPLAYED' | 'STALE' | 'FROM_THE_FUTURE' | 'MALFORMED_TIME' | 'MALFORMED_NONCE';

/** Where seen nonces live: memory on a node, a PostgreSQL table (unique key_id + nonce) on the hub. */
export interface NonceStore {
  /** Records the pair and resolves true, or resolves false when it is already recorded; atomic across processes. */
  remember(keyId: string, nonce: string, expiresAt: Date): Promise<boolean>;
  /** Forgets pairs whose expiry is before `now`; resolves how many it forgot. */
  forgetExpired(now: Date): Promise<number>;
}

/** Five minutes each way: NTP keeps hospital servers within seconds, and a retried request is re-signed anyway. */
export const DEFAULT_REPLAY_WINDOW_MS = 5 * 60_000;

/** 16 random bytes in unpadded base64url are 22 characters; longer nonces are fine, shorter ones too guessable. */
const NONCE = /^[A-Za-z0-9_-]{22,128}$/;
/** RFC 3339 UTC timestamps as `Date.prototype.toISOString` writes them. */
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

export class ReplayGuard {
  private readonly windowMs: number;
  private readonly clock: () => Date;

  constructor(
    private readonly store: NonceStore,
    options: { windowMs?: number; clock?: () => Date } = {},
  ) {
    this.windowMs = options.windowMs ?? DEFAULT_REPLAY_WINDOW_MS;
    this.clock = options.clock ?? (() => new Date());
  }

  async check(keyId: string, nonce: string, signedAt: string): Promise<ReplayVerdict> {
    if (typeof nonce !== 'string' || !NONCE.test(nonce)) return 'MALFORMED_NONCE';
    const at = typeof signedAt === 'string' && ISO_UTC.test(signedAt) ? Date.parse(signedAt) : NaN;
    if (Number.isNaN(at)) return 'MALFORMED_TIME';
    const now = this.clock().getTime();
    if (at < now - this.windowMs) return 'STALE';
    if (at > now + this.windowMs) return 'FROM_THE_FUTURE';
    return (await this.store.remember(keyId, nonce, new Date(at + this.windowMs))) ? 'FRESH' : 'REPLAYED';
  }

  /** Call now and then (the hub: from a pg-boss schedule) to drop what the time check refuses anyway. */
  forgetExpired(): Promise<number> {
    return this.store.forgetExpired(this.clock());
  }
}

/** A process-local NonceStore, pruned as it goes: a node's (it hears only the hub) and the tests'. */
export class MemoryNonceStore implements NonceStore {
  private readonly seen = new Map<string, number>();
  private nextPrune = 0;

  constructor(private readonly clock: () => Date = () => new Date()) {}

  get size(): number {
    return this.seen.size;
  }

  async remember(keyId: string, nonce: string, expiresAt: Date): Promise<boolean> {
    const now = this.clock().getTime();
    // Prune at most once a second so a burst of messages does not walk the map each time.
    if (now >= this.nextPrune) {
      await this.forgetExpired(new Date(now));
      this.nextPrune = now + 1000;
    }
    // A NUL cannot occur in a key id or a valid nonce, so the pair maps to one string.
    const key = `${keyId}\u0000${nonce}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, expiresAt.getTime());
    return true;
  }

  async forgetExpired(now: Date): Promise<number> {
    let forgotten = 0;
    for (const [key, expires] of this.seen) {
      if (expires < now.getTime()) {
        this.seen.delete(key);
        forgotten++;
      }
    }
    return forgotten;
  }
}
