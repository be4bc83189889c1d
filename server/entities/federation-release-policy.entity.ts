import { Check, Column, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** The node's release policy (federation/release-policy.ts ReleasePolicy), one row; absent: DEFAULT_RELEASE_POLICY. */
@Entity()
@Check(`"id" = 1`)
export class FederationReleasePolicy {
  /** Always 1: there is one policy per node. */
  @PrimaryColumn({ type: 'smallint' })
  id: number;

  @Column({ type: 'jsonb' })
  policy: Record<string, unknown>;

  @UpdateDateColumn({ type: 'timestamptz' })
  updatedAt: Date;
}
