import { Column, Entity, Index, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { Modality } from '../domain';
import { BaseRecord } from './base-record';
import { Joint } from './joint.entity';
import { ModelVersion } from './model-version.entity';

/** A model version's probabilities per grade for one joint x modality x feature, and its predicted (argmax) grade. */
@Entity()
@Unique(['modelVersionId', 'jointId', 'modality', 'feature'])
export class Prediction extends BaseRecord {
  @Column({ type: 'uuid' })
  modelVersionId: string;

  @ManyToOne(() => ModelVersion, { onDelete: 'CASCADE' })
  @JoinColumn()
  modelVersion?: ModelVersion;

  @Index()
  @Column({ type: 'uuid' })
  jointId: string;

  @ManyToOne(() => Joint, { onDelete: 'CASCADE' })
  @JoinColumn()
  joint?: Joint;

  @Column({ type: 'enum', enum: Modality, enumName: 'modality' })
  modality: Modality;

  @Column({ type: 'varchar', length: 48 })
  feature: string;

  /** P(grade = g) for g = 0..k-1; sums to 1. */
  @Column({ type: 'float8', array: true })
  probabilities: number[];

  @Column({ type: 'smallint' })
  predictedGrade: number;
}
