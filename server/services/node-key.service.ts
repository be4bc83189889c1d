import { randomBytes } from 'node:crypto';
import { NO_TRANSACTION, type Db } from '../db/transaction';
import { NodeSecret } from '../entities';

const UID_KEY = 'identifier-hash-key';

/**
 * The node's key for replacing UIDs and hashing hospital identifiers: 32 random bytes made on first use and
 * kept in the database, so every server and worker of the node hashes alike and nothing outside it can.
 */
export class NodeKeyService {
  private key: Promise<Buffer> | null = null;

  constructor(private readonly db: Db) {}

  identifierKey(): Promise<Buffer> {
    this.key ??= (async () => {
      // Outside any request's transaction: the key is cached for every request, so no rollback may take it back.
      const repo = this.db.repo(NO_TRANSACTION, NodeSecret);
      await repo
        .createQueryBuilder()
        .insert()
        .values({ name: UID_KEY, value: randomBytes(32) })
        .orIgnore()
        .execute();
      const row = await repo.findOneByOrFail({ name: UID_KEY });
      return row.value;
    })().catch((error: unknown) => {
      this.key = null;
      throw error;
    });
    return this.key;
  }
}
