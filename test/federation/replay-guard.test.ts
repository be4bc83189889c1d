import { MemoryNonceStore, ReplayGuard, type NonceStore } from '../../server/federation/replay-guard';
import { Gen } from './generators';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const nonceOf = (gen: Gen) => gen.bytes(16).toString('base64url');

describe(ReplayGuard.name, () => {
  it('accepts a fresh nonce at any time inside the window and refuses times outside it (generated skews)', async () => {
    const gen = new Gen(300);
    const windowMs = 300_000;
    const guard = new ReplayGuard(new MemoryNonceStore(() => new Date(T0)), { windowMs, clock: () => new Date(T0) });
    for (let i = 0; i < 300; i++) {
      const skew = gen.int(-2 * windowMs, 2 * windowMs);
      const verdict = await guard.check('k', nonceOf(gen), new Date(T0 + skew).toISOString());
      expect(verdict).toBe(skew < -windowMs ? 'STALE' : skew > windowMs ? 'FROM_THE_FUTURE' : 'FRESH');
    }
    expect(await guard.check('k', nonceOf(gen), new Date(T0 - windowMs).toISOString())).toBe('FRESH');
    expect(await guard.check('k', nonceOf(gen), new Date(T0 + windowMs).toISOString())).toBe('FRESH');
  });

  it('refuses a nonce already seen for the same key until it leaves the window, and keeps keys apart', async () => {
    const gen = new Gen(301);
    let now = T0;
    const clock = () => new Date(now);
    const store = new MemoryNonceStore(clock);
    const guard = new ReplayGuard(store, { windowMs: 10_000, clock });
    const seen: { key: string; nonce: string; at: string }[] = [];
    for (let i = 0; i < 200; i++) {
      now += gen.int(0, 400);
      const message = { key: gen.pick(['a', 'b', 'c']), nonce: nonceOf(gen), at: new Date(now - gen.int(0, 5000)).toISOString() };
      expect(await guard.check(message.key, message.nonce, message.at)).toBe('FRESH');
      seen.push(message);
      const old = gen.pick(seen);
      const expected = Date.parse(old.at) < now - 10_000 ? 'STALE' : 'REPLAYED';
      expect(await guard.check(old.key, old.nonce, old.at)).toBe(expected);
    }
    // The same nonce from another key is another message.
    const last = seen[seen.length - 1];
    expect(await guard.check(`${last.key}-other`, last.nonce, last.at)).toBe('FRESH');
  });

  it('keeps no more than one window of nonces', async () => {
    const gen = new Gen(302);
    let now = T0;
    const clock = () => new Date(now);
    const store = new MemoryNonceStore(clock);
    const guard = new ReplayGuard(store, { windowMs: 1000, clock });
    for (let i = 0; i < 2000; i++) {
      now += 10;
      expect(await guard.check('k', nonceOf(gen), new Date(now).toISOString())).toBe('FRESH');
    }
    // 1 s window + at most 1 s between prunes, at one message per 10 ms: about 200, never the 2000 seen.
    expect(store.size).toBeLessThanOrEqual(201);
    now += 5000;
    expect(await guard.forgetExpired()).toBeGreaterThan(0);
    expect(store.size).toBe(0);
  });

  it.each([
    ['a short nonce', 'abc', '2026-03-01T12:00:00.000Z', 'MALFORMED_NONCE'],
    ['a nonce with other characters', 'a'.repeat(21) + '=', '2026-03-01T12:00:00.000Z', 'MALFORMED_NONCE'],
    ['a time with an offset', 'a'.repeat(22), '2026-03-01T13:00:00+01:00', 'MALFORMED_TIME'],
    ['a time that is not one', 'a'.repeat(22), 'yesterday', 'MALFORMED_TIME'],
    ['an impossible date', 'a'.repeat(22), '2026-02-31T25:00:00Z', 'MALFORMED_TIME'],
  ])('refuses %s', async (_what, nonce, at, verdict) => {
    const guard = new ReplayGuard(new MemoryNonceStore(), { clock: () => new Date(T0) });
    expect(await guard.check('k', nonce, at)).toBe(verdict);
  });

  it('leaves atomicity to its store: two checks racing on one nonce get one FRESH', async () => {
    // A store that yields between looking and writing, as a database round trip does; remember() must still be atomic.
    const inner = new MemoryNonceStore(() => new Date(T0));
    const slow: NonceStore = {
      remember: async (k, n, e) => {
        await new Promise((r) => setImmediate(r));
        return inner.remember(k, n, e);
      },
      forgetExpired: (now) => inner.forgetExpired(now),
    };
    const guard = new ReplayGuard(slow, { clock: () => new Date(T0) });
    const verdicts = await Promise.all(Array.from({ length: 5 }, () => guard.check('k', 'n'.repeat(22), new Date(T0).toISOString())));
    expect(verdicts.filter((v) => v === 'FRESH')).toHaveLength(1);
  });
});
