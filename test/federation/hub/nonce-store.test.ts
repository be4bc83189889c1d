import { randomBytes } from 'node:crypto';
import { ReplayGuard } from '../../../server/federation/replay-guard';
import { PostgresNonceStore } from '../../../server/services/federation-hub/postgres-nonce-store';
import { useTestNode } from '../../helpers/lifecycle';
import { Gen } from '../generators';

const node = useTestNode();
const nonce = () => randomBytes(16).toString('base64url');

describe(PostgresNonceStore.name, () => {
  it('records a (key, nonce) pair exactly once, even when many requests race for it', async () => {
    const store = new PostgresNonceStore(node().services.db);
    const gen = new Gen(51);
    for (let round = 0; round < 10; round++) {
      const keyId = `SHA256:${randomBytes(8).toString('base64')}`;
      const n = nonce();
      const racers = gen.int(2, 12);
      const answers = await Promise.all(Array.from({ length: racers }, () => store.remember(keyId, n, new Date(Date.now() + 60_000))));
      expect(answers.filter(Boolean)).toHaveLength(1);
      // The same nonce under another key is another pair.
      expect(await store.remember(`${keyId}x`, n, new Date(Date.now() + 60_000))).toBe(true);
    }
  });

  it('forgets only the pairs whose expiry passed', async () => {
    const store = new PostgresNonceStore(node().services.db);
    const now = Date.now();
    const expired = Array.from({ length: 7 }, nonce);
    const live = Array.from({ length: 5 }, nonce);
    for (const n of expired) await store.remember('K-prune', n, new Date(now - 1000));
    for (const n of live) await store.remember('K-prune', n, new Date(now + 60_000));
    expect(await store.forgetExpired(new Date(now))).toBeGreaterThanOrEqual(7);
    const left = await node().dataSource.query(`SELECT nonce FROM federation_nonce WHERE key_id = 'K-prune' ORDER BY nonce`);
    expect(left.map((r: { nonce: string }) => r.nonce)).toEqual([...live].sort());
  });

  it('backs the replay guard: FRESH once, then REPLAYED; stale and future times refused before the store', async () => {
    const guard = new ReplayGuard(new PostgresNonceStore(node().services.db));
    const n = nonce();
    const at = new Date().toISOString();
    expect(await guard.check('K-guard', n, at)).toBe('FRESH');
    expect(await guard.check('K-guard', n, at)).toBe('REPLAYED');
    expect(await guard.check('K-guard', nonce(), new Date(Date.now() - 10 * 60_000).toISOString())).toBe('STALE');
    expect(await guard.check('K-guard', nonce(), new Date(Date.now() + 10 * 60_000).toISOString())).toBe('FROM_THE_FUTURE');
  });
});
