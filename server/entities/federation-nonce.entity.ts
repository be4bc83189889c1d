import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** A (key id, nonce) the hub has accepted (replay-guard.ts NonceStore); kept while its signing time is in the window. */
@Entity()
export class FederationNonce {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  keyId: string;

  @PrimaryColumn({ type: 'varchar', length: 128 })
  nonce: string;

  @Index()
  @Column({ type: 'timestamptz' })
  expiresAt: Date;
}
