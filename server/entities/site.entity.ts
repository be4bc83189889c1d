import { Column, Entity, Index } from 'typeorm';
import { MutableRecord } from './base-record';

/** A hospital or imaging center contributing patients. */
@Entity()
export class Site extends MutableRecord {
  @Index({ unique: true })
  @Column({ type: 'varchar', length: 32 })
  code: string;

  @Column({ type: 'varchar', length: 200 })
  name: string;
}
