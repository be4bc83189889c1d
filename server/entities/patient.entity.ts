import { Column, Entity, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { ExclusionReason, Sex } from '../domain';
import { MutableRecord } from './base-record';
import { Site } from './site.entity';

/** A de-identified study participant: a pseudonym, never a name or hospital ID. */
@Entity()
@Unique(['siteId', 'pseudonym'])
@Unique(['siteId', 'patientKey'])
export class Patient extends MutableRecord {
  @Column({ type: 'uuid' })
  siteId: string;

  @ManyToOne(() => Site, { onDelete: 'RESTRICT' })
  @JoinColumn()
  site?: Site;

  @Column({ type: 'varchar', length: 64 })
  pseudonym: string;

  @Column({ type: 'enum', enum: Sex, enumName: 'sex', default: Sex.UNKNOWN })
  sex: Sex;

  @Column({ type: 'smallint', nullable: true })
  ageAtFirstImaging: number | null;

  /**
   * Keyed hash (HMAC-SHA256 with the node key) of the hospital's patient ID, set by the cohort manifest; DICOM
   * objects find their patient by the same hash. The original ID is never stored.
   */
  @Column({ type: 'char', length: 64, nullable: true })
  patientKey: string | null;

  /** Days added to every DICOM date of this patient during de-identification; stays inside the node. */
  @Column({ type: 'integer' })
  dateShiftDays: number;

  /** Empty means eligible; a patient with any reason is excluded from splits and analyses. */
  @Column({ type: 'enum', enum: ExclusionReason, enumName: 'exclusion_reason', array: true, default: '{}' })
  exclusionReasons: ExclusionReason[];
}
