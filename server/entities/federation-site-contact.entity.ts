import { Column, Entity, PrimaryColumn } from 'typeorm';

/** When a member last called in with a valid claim: `federationSites` shows it, so a silent node is noticed. */
@Entity()
export class FederationSiteContact {
  @PrimaryColumn({ type: 'varchar', length: 32 })
  site: string;

  @Column({ type: 'timestamptz' })
  lastClaimAt: Date;
}
