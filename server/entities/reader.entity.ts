import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { ReaderRole } from '../domain';
import { MutableRecord } from './base-record';
import { Site } from './site.entity';

/** A clinician who grades joints, adjudicates, or confirms the reference standard. */
@Entity()
export class Reader extends MutableRecord {
  @Index({ unique: true })
  @Column({ type: 'varchar', length: 32 })
  code: string;

  @Column({ type: 'enum', enum: ReaderRole, enumName: 'reader_role' })
  role: ReaderRole;

  @Column({ type: 'smallint' })
  yearsOfExperience: number;

  /** The reader's home site; null for central readers. */
  @Index()
  @Column({ type: 'uuid', nullable: true })
  siteId: string | null;

  @ManyToOne(() => Site, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn()
  site?: Site | null;
}
