import { Column, Entity, Index } from 'typeorm';
import { BaseRecord } from './base-record';
import type { JsonDocument } from './federation-task.entity';

/** A site's signed result as received, with the hub's signed receipt; immutable (no update path exists). */
@Entity()
export class FederationResult extends BaseRecord {
  @Index({ unique: true })
  @Column({ type: 'uuid' })
  siteTaskId: string;

  @Index()
  @Column({ type: 'uuid' })
  taskId: string;

  @Column({ type: 'varchar', length: 32 })
  site: string;

  /** SUCCEEDED, REFUSED or FAILED, as the site said. */
  @Column({ type: 'varchar', length: 16 })
  state: string;

  /** The RESULT envelope exactly as verified (envelope.ts SignedEnvelope). */
  @Column({ type: 'jsonb' })
  envelope: JsonDocument;

  /** sha256 of the canonical envelope: what the receipt names. */
  @Column({ type: 'char', length: 64 })
  envelopeSha256: string;

  /** The envelope's payloadSha256: a re-signed retry of the same result has the same one. */
  @Column({ type: 'char', length: 64 })
  payloadSha256: string;

  /** sha256 of the canonical aggregate (equals the manifest's and the node's audit row). */
  @Column({ type: 'char', length: 64 })
  aggregateSha256: string;

  /** The hub's signed RECEIPT, sent again for an identical resubmission. */
  @Column({ type: 'jsonb' })
  receipt: JsonDocument;
}
