import { Column, Entity, Index } from 'typeorm';
import { MutableRecord } from './base-record';

export interface SplitRatios {
  train: number;
  validation: number;
  test: number;
}

/** A seeded, patient-level, site-stratified split. Once frozen it never changes. */
@Entity()
export class SplitVersion extends MutableRecord {
  @Index({ unique: true })
  @Column({ type: 'varchar', length: 100 })
  name: string;

  @Column({ type: 'bigint' })
  seed: string;

  @Column({ type: 'jsonb' })
  ratios: SplitRatios;

  /** What the split is stratified by; `SITE` is the only stratification so far. */
  @Column({ type: 'varchar', length: 32, default: 'SITE' })
  stratification: string;

  @Column({ type: 'timestamptz', nullable: true })
  frozenAt: Date | null;
}
