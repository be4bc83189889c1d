import { Check, Column, Entity, Index, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { ReferenceSource } from '../domain';
import { GradedCell } from './graded-cell';
import { Reader } from './reader.entity';
import { ReferenceImport } from './reference-import.entity';

/**
 * The reference standard for a joint x modality x feature; locked once the senior group confirms it.
 * A revision keeps who made it, when, and the value it replaced (source REVISED).
 */
@Entity()
@Unique(['jointId', 'modality', 'feature'])
// Compared as text: a check that names the enum value could not be created in the transaction that adds it.
@Check(`"source"::text <> 'REVISED' OR ("revised_by_id" IS NOT NULL AND "revised_at" IS NOT NULL AND "previous_source" IS NOT NULL)`)
@Check(`("previous_grade" IS NULL OR "previous_grade" >= 0) AND ("previous_not_assessable" IS NULL OR ("previous_grade" IS NULL) = "previous_not_assessable")`)
export class ReferenceGrade extends GradedCell {
  @Column({ type: 'enum', enum: ReferenceSource, enumName: 'reference_source' })
  source: ReferenceSource;

  @Column({ type: 'uuid', nullable: true })
  confirmedById: string | null;

  @ManyToOne(() => Reader, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn()
  confirmedBy?: Reader | null;

  @Column({ type: 'timestamptz', nullable: true })
  confirmedAt: Date | null;

  /** The adjudicator or senior who last revised the grade. */
  @Column({ type: 'uuid', nullable: true })
  revisedById: string | null;

  @ManyToOne(() => Reader, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn()
  revisedBy?: Reader | null;

  @Column({ type: 'timestamptz', nullable: true })
  revisedAt: Date | null;

  /** The value the last revision replaced (grade, or not assessable) and how that value came about. */
  @Column({ type: 'smallint', nullable: true })
  previousGrade: number | null;

  @Column({ type: 'boolean', nullable: true })
  previousNotAssessable: boolean | null;

  @Column({ type: 'enum', enum: ReferenceSource, enumName: 'reference_source', nullable: true })
  previousSource: ReferenceSource | null;

  /** The reference-standard file this grade came from; null for grades of the reading workflow. */
  @Index()
  @Column({ type: 'uuid', nullable: true })
  importId: string | null;

  @ManyToOne(() => ReferenceImport, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn()
  import?: ReferenceImport | null;
}
