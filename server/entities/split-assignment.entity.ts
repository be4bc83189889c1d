import { Column, Entity, Index, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { Split } from '../domain';
import { BaseRecord } from './base-record';
import { Patient } from './patient.entity';
import { SplitVersion } from './split-version.entity';

/** Which split a patient is in under one split version: whole patients, never joints. */
@Entity()
@Unique(['splitVersionId', 'patientId'])
export class SplitAssignment extends BaseRecord {
  @Column({ type: 'uuid' })
  splitVersionId: string;

  @ManyToOne(() => SplitVersion, { onDelete: 'CASCADE' })
  @JoinColumn()
  splitVersion?: SplitVersion;

  @Index()
  @Column({ type: 'uuid' })
  patientId: string;

  @ManyToOne(() => Patient, { onDelete: 'CASCADE' })
  @JoinColumn()
  patient?: Patient;

  @Column({ type: 'enum', enum: Split, enumName: 'split' })
  split: Split;
}
