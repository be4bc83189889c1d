import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { ReaderRole, ReaderSlot } from '../domain';
import { MutableRecord } from './base-record';
import { Site } from './site.entity';

/** A clinician who grades joints, adjudicates, or confirms the reference standard. */
@Entity()
// One FIRST and one SECOND reader per site, and per the central readers (site null: a second index, since NULLs
// never collide in a unique index).
@Index('UQ_reader_site_slot', ['siteId', 'slot'], { unique: true, where: '"slot" IS NOT NULL' })
@Index('UQ_reader_central_slot', ['slot'], { unique: true, where: '"site_id" IS NULL AND "slot" IS NOT NULL' })
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

  /** Reader 1 or 2 of the site (READER role only); null for adjudicators, the senior group and extra readers. */
  @Column({ type: 'enum', enum: ReaderSlot, enumName: 'reader_slot', nullable: true })
  slot: ReaderSlot | null;
}
