import { Column, Entity, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { Level, Side } from '../domain';
import { BaseRecord } from './base-record';
import { Patient } from './patient.entity';

/** One lumbar facet joint of a patient: a level and a side. */
@Entity()
@Unique(['patientId', 'level', 'side'])
export class Joint extends BaseRecord {
  @Column({ type: 'uuid' })
  patientId: string;

  @ManyToOne(() => Patient, { onDelete: 'CASCADE' })
  @JoinColumn()
  patient?: Patient;

  @Column({ type: 'enum', enum: Level, enumName: 'level' })
  level: Level;

  @Column({ type: 'enum', enum: Side, enumName: 'side' })
  side: Side;
}
