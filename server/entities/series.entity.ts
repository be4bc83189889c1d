import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Modality } from '../domain';
import { BaseRecord } from './base-record';
import { Study } from './study.entity';

@Entity()
export class Series extends BaseRecord {
  @Index()
  @Column({ type: 'uuid' })
  studyId: string;

  @ManyToOne(() => Study, { onDelete: 'CASCADE' })
  @JoinColumn()
  study?: Study;

  @Index({ unique: true })
  @Column({ type: 'varchar', length: 64 })
  seriesInstanceUid: string;

  @Column({ type: 'enum', enum: Modality, enumName: 'modality' })
  modality: Modality;

  @Column({ type: 'integer', nullable: true })
  seriesNumber: number | null;

  @Column({ type: 'varchar', length: 200, nullable: true })
  description: string | null;
}
