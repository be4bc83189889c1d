import type { Actor } from './request-context';

/**
 * How long a successful token lookup is reused. A revocation ends a cached entry at once on the server that
 * revoked and within milliseconds on the others (TOKEN_REVOKED over LISTEN/NOTIFY); this bound is what is left if
 * a notification is lost while the LISTEN connection is down, and how long a reader's changed workflow role takes
 * to show.
 */
export const TOKEN_CACHE_TTL_MS = 5_000;
/** Enough for every token of a busy node; the oldest entries go first. */
const MAX_ENTRIES = 10_000;

interface Entry {
  actor: Actor;
  until: number;
}

/**
 * Successful token lookups by token hash, so a request does not pay a query to learn who it is. Only tokens that
 * authenticated are kept (an unknown secret is asked about every time); an entry past its token's expiresAt is
 * never answered.
 */
export class TokenCache {
  private readonly byHash = new Map<string, Entry>();
  /** Tokens revoked within the last TTL: a lookup that raced the revocation must not put one back. */
  private readonly revokedAt = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  get(hash: string): Actor | null {
    const entry = this.byHash.get(hash);
    if (!entry) return null;
    const now = this.now();
    if (now >= entry.until || (entry.actor.expiresAt && now >= entry.actor.expiresAt.getTime())) {
      this.byHash.delete(hash);
      return null;
    }
    return entry.actor;
  }

  set(hash: string, actor: Actor): void {
    if (actor.tokenId && this.revokedAt.has(actor.tokenId)) return;
    if (this.byHash.size >= MAX_ENTRIES) this.byHash.delete(this.byHash.keys().next().value as string);
    this.byHash.set(hash, { actor, until: this.now() + TOKEN_CACHE_TTL_MS });
  }

  /** Forgets every entry of the token (revoked here or on another server). */
  forgetToken(tokenId: string): void {
    const now = this.now();
    for (const [id, at] of this.revokedAt) if (now - at > TOKEN_CACHE_TTL_MS) this.revokedAt.delete(id);
    this.revokedAt.set(tokenId, now);
    for (const [hash, entry] of this.byHash) if (entry.actor.tokenId === tokenId) this.byHash.delete(hash);
  }

  /** Forgets everything: after the LISTEN connection was lost, revocations may have been missed. */
  clear(): void {
    this.byHash.clear();
  }
}
