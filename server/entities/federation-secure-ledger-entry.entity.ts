import { Column, Entity, Index } from 'typeorm';
import { MutableRecord } from './base-record';

/**
 * The node's secure-sum ledger (secure-sum-round.ts SecureSumLedger), one row per round id it masked for: what lets
 * it refuse a reused round id, a reveal for an incomplete attempt, and a restart that would difference out a site.
 */
@Entity()
export class FederationSecureLedgerEntry extends MutableRecord {
  @Index({ unique: true })
  @Column({ type: 'varchar', length: 300 })
  roundId: string;

  @Column({ type: 'varchar', length: 200 })
  taskId: string;

  @Index()
  @Column({ type: 'char', length: 64 })
  fingerprint: string;

  @Column({ type: 'varchar', length: 32, array: true })
  participants: string[];

  /** base64 self-mask seed while not revealed. */
  @Column({ type: 'text', nullable: true })
  seed: string | null;

  @Column({ type: 'char', length: 64, nullable: true })
  maskedSha256: string | null;

  /** The masked vector sent (base64), sent again if the hub asks again for the same round id (a lost answer). */
  @Column({ type: 'text', nullable: true })
  masked: string | null;

  /** The seed once revealed, sent again for the same complete request (the hub holds it already). */
  @Column({ type: 'text', nullable: true })
  revealedSeed: string | null;

  /** MASKED or REVEALED. */
  @Column({ type: 'varchar', length: 16 })
  state: string;
}
