import { Column, Entity, Index } from 'typeorm';
import { BaseRecord } from './base-record';

/**
 * A node's share of a secure-summed task: the groups it released by pooled key, kept here (never sent in plain) until
 * the hub's secure round asks for them masked, with the declaration its result carried.
 */
@Entity()
export class FederationSecureShare extends BaseRecord {
  @Index({ unique: true })
  @Column({ type: 'varchar', length: 200 })
  taskId: string;

  @Column({ type: 'varchar', length: 32 })
  kind: string;

  /** secure-sum-transport.ts secureFingerprint: the row the ledger keys its restart rule by. */
  @Column({ type: 'char', length: 64 })
  fingerprint: string;

  @Column({ type: 'jsonb' })
  declaration: Record<string, unknown>;

  @Column({ type: 'jsonb' })
  share: Record<string, unknown>;
}
