import { Column, Entity, Index, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { GradedCell } from './graded-cell';
import { Reader } from './reader.entity';

/** One reader's independent grade. A reader grades a joint x modality x feature once. */
@Entity()
@Unique(['jointId', 'modality', 'feature', 'readerId'])
export class Reading extends GradedCell {
  @Index()
  @Column({ type: 'uuid' })
  readerId: string;

  @ManyToOne(() => Reader, { onDelete: 'RESTRICT' })
  @JoinColumn()
  reader?: Reader;
}
