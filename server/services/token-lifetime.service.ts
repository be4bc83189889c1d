import type { PostgresPubSub } from '../pubsub/postgres-pubsub';
import { TOKEN_REVOKED } from '../pubsub/topics';
import type { Actor } from './request-context';

/** Why a token stopped authenticating what it opened. */
export type TokenEnd = 'REVOKED' | 'EXPIRED';

/** One open operation's view of its token. */
export interface TokenWatch {
  /** Settles once, when the token is revoked (on any server of the node) or reaches its expiry. */
  readonly ended: Promise<TokenEnd>;
  /** The end already reached, without waiting and without a query (checked before each event); null while the token is good. */
  check(): TokenEnd | null;
  /** Stops watching: the operation ended by itself. */
  stop(): void;
}

/** setTimeout's longest delay (about 24.8 days); a later expiry re-arms the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * How long a revocation is remembered. An operation authenticated a moment before a revocation committed may start
 * watching after its NOTIFY arrived (milliseconds apart; a minute covers a busy event loop many times over).
 */
const REMEMBER_REVOKED_MS = 60_000;

/**
 * Ends what a token opened (graphql-ws subscriptions) when it is revoked or expires, without a query per event:
 * revocations arrive over the node's LISTEN/NOTIFY pub/sub from whichever server revoked, expiry is a timer at the
 * instant and a clock check before each event.
 */
export class TokenLifetimeService {
  private readonly watchers = new Map<string, Set<(end: TokenEnd) => void>>();
  private readonly recentlyRevoked = new Map<string, number>();

  constructor(pubSub: PostgresPubSub) {
    // Listening from construction (the local subscription, fed once the server LISTENs), so no revocation that
    // arrives before the first watch is missed.
    const events = pubSub.subscribeAll(TOKEN_REVOKED)[Symbol.asyncIterator]();
    const loop = async (): Promise<void> => {
      for (let event = await events.next(); !event.done; event = await events.next()) this.revoked(event.value.tokenId);
    };
    void loop();
  }

  private revoked(tokenId: string): void {
    const now = Date.now();
    for (const [id, at] of this.recentlyRevoked) if (now - at > REMEMBER_REVOKED_MS) this.recentlyRevoked.delete(id);
    this.recentlyRevoked.set(tokenId, now);
    for (const end of [...(this.watchers.get(tokenId) ?? [])]) end('REVOKED');
  }

  /** Watches the token of `actor` until it ends or `stop()` is called. */
  watch(actor: Actor): TokenWatch {
    const expiresAt = actor.expiresAt?.getTime() ?? null;
    const tokenId = actor.tokenId;
    let reached: TokenEnd | null = null;
    let timer: NodeJS.Timeout | null = null;
    let settle!: (end: TokenEnd) => void;
    const ended = new Promise<TokenEnd>((resolve) => (settle = resolve));
    const stop = (): void => {
      if (timer) clearTimeout(timer);
      timer = null;
      if (!tokenId) return;
      const set = this.watchers.get(tokenId);
      set?.delete(finish);
      if (set?.size === 0) this.watchers.delete(tokenId);
    };
    const finish = (end: TokenEnd): void => {
      if (reached) return;
      reached = end;
      stop();
      settle(end);
    };
    const check = (): TokenEnd | null => {
      if (!reached && expiresAt !== null && Date.now() >= expiresAt) finish('EXPIRED');
      return reached;
    };
    const arm = (): void => {
      if (check() || expiresAt === null) return;
      timer = setTimeout(arm, Math.min(expiresAt - Date.now(), MAX_TIMER_MS));
      timer.unref();
    };
    if (tokenId) {
      if (this.recentlyRevoked.has(tokenId)) finish('REVOKED');
      else this.watchers.set(tokenId, (this.watchers.get(tokenId) ?? new Set()).add(finish));
    }
    arm();
    return { ended, check, stop };
  }

  /** Operations watched now, over all tokens (for tests and metrics). */
  watchedCount(): number {
    let n = 0;
    for (const set of this.watchers.values()) n += set.size;
    return n;
  }
}

/**
 * `source` until the token ends: then `last(end)` as a final item, and done. The source is closed without waiting
 * for it (an idle async generator finishes its pending step first). Returned as an async generator-like object
 * whose `return()` answers at once, as graphql-ws expects when the client completes or the socket closes.
 */
export function untilTokenEnds<T>(source: AsyncIterable<T>, watch: TokenWatch, last: (end: TokenEnd) => T): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let finished = false;
  const close = (): void => {
    if (finished) return;
    finished = true;
    watch.stop();
    void Promise.resolve(iterator.return?.())
      .catch(() => undefined)
      .then(() => undefined);
  };
  const ending = watch.ended.then((end) => ({ end }));
  // Typed by assertion: whether AsyncGenerator declares Symbol.asyncDispose depends on the lib set of the build.
  const generator = {
    async next() {
      if (finished) return { done: true, value: undefined };
      const early = watch.check();
      const step = early ? { end: early } : await Promise.race([iterator.next(), ending]);
      if ('end' in step) {
        close();
        return { done: false, value: last(step.end) };
      }
      if (step.done) {
        close();
        return step;
      }
      // An event that arrives after the expiry instant but before the timer fired is not delivered.
      const end = watch.check();
      if (end) {
        close();
        return { done: false, value: last(end) };
      }
      return step;
    },
    async return() {
      close();
      return { done: true, value: undefined };
    },
    async throw(error: unknown) {
      close();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return generator;
    },
    async [Symbol.asyncDispose]() {
      close();
    },
  } as AsyncGenerator<T>;
  return generator;
}
