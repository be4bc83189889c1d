import type { Db } from '../../db/transaction';
import { FederationNonce } from '../../entities';
import type { NonceStore } from '../../federation/replay-guard';

/**
 * The hub's replay-guard store: a (key id, nonce) pair is one row, and the primary key makes "seen before?" atomic
 * across every server of the hub (INSERT … ON CONFLICT DO NOTHING inserts or, for a replay, returns nothing).
 * Runs outside any request transaction: a nonce counts as used even when the request that used it fails later.
 */
export class PostgresNonceStore implements NonceStore {
  constructor(private readonly db: Db) {}

  async remember(keyId: string, nonce: string, expiresAt: Date): Promise<boolean> {
    // An empty context: the pool, never a request's transaction.
    const rows = await this.db.query<{ nonce: string }>(
      {},
      'INSERT INTO federation_nonce (key_id, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING nonce',
      [keyId, nonce, expiresAt],
    );
    return rows.length === 1;
  }

  async forgetExpired(now: Date): Promise<number> {
    const result = await this.db.repo({}, FederationNonce).createQueryBuilder().delete().where('expires_at < :now', { now }).execute();
    return result.affected ?? 0;
  }
}
