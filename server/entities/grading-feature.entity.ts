import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { GradeDefinition } from '../domain';

/** One feature of the grading scheme and its ordinal grades 0..n-1. Data, not code: the Weishaupt rows ship in a migration. */
@Entity()
export class GradingFeature {
  @PrimaryColumn({ type: 'varchar', length: 48 })
  code: string;

  @Column({ type: 'varchar', length: 200 })
  label: string;

  @Column({ type: 'jsonb' })
  grades: GradeDefinition[];

  @Column({ type: 'smallint' })
  position: number;
}
