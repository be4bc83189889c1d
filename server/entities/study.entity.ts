import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { BaseRecord } from './base-record';
import { Patient } from './patient.entity';

/** A DICOM study; its UID is the replaced (keyed-hash) UID, never the original. */
@Entity()
export class Study extends BaseRecord {
  @Index()
  @Column({ type: 'uuid' })
  patientId: string;

  @ManyToOne(() => Patient, { onDelete: 'CASCADE' })
  @JoinColumn()
  patient?: Patient;

  @Index({ unique: true })
  @Column({ type: 'varchar', length: 64 })
  studyInstanceUid: string;

  /** Shifted by the patient's date offset during de-identification. */
  @Column({ type: 'date', nullable: true })
  studyDate: string | null;

  @Column({ type: 'varchar', length: 200, nullable: true })
  description: string | null;
}
