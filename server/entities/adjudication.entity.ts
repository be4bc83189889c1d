import { Column, Entity, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { GradedCell } from './graded-cell';
import { Reader } from './reader.entity';

/** An experienced reader's decision where the two readers disagreed. */
@Entity()
@Unique(['jointId', 'modality', 'feature'])
export class Adjudication extends GradedCell {
  @Column({ type: 'uuid' })
  adjudicatorId: string;

  @ManyToOne(() => Reader, { onDelete: 'RESTRICT' })
  @JoinColumn()
  adjudicator?: Reader;

  @Column({ type: 'text' })
  rationale: string;
}
