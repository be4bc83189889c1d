import { Column, Entity, Index, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { ReferenceSource } from '../domain';
import { GradedCell } from './graded-cell';
import { Reader } from './reader.entity';
import { ReferenceImport } from './reference-import.entity';

/** The reference standard for a joint x modality x feature; locked once the senior group confirms it. */
@Entity()
@Unique(['jointId', 'modality', 'feature'])
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

  /** The reference-standard file this grade came from; null for grades of the reading workflow. */
  @Index()
  @Column({ type: 'uuid', nullable: true })
  importId: string | null;

  @ManyToOne(() => ReferenceImport, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn()
  import?: ReferenceImport | null;
}
