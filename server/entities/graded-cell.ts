import { Check, Column, JoinColumn, ManyToOne } from 'typeorm';
import { Modality } from '../domain';
import { MutableRecord } from './base-record';
import { GradingFeature } from './grading-feature.entity';
import { Joint } from './joint.entity';

/**
 * A grade for one joint x modality x feature, or "not assessable" (never stored as grade 0).
 * Shared by readings, adjudications and reference grades.
 */
@Check(`("grade" IS NULL) = "not_assessable" AND ("grade" IS NULL OR "grade" >= 0)`)
export abstract class GradedCell extends MutableRecord {
  @Column({ type: 'uuid' })
  jointId: string;

  @ManyToOne(() => Joint, { onDelete: 'CASCADE' })
  @JoinColumn()
  joint?: Joint;

  @Column({ type: 'enum', enum: Modality, enumName: 'modality' })
  modality: Modality;

  @Column({ type: 'varchar', length: 48 })
  feature: string;

  @ManyToOne(() => GradingFeature, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'feature', referencedColumnName: 'code' })
  gradingFeature?: GradingFeature;

  @Column({ type: 'smallint', nullable: true })
  grade: number | null;

  @Column({ type: 'boolean', default: false })
  notAssessable: boolean;
}
