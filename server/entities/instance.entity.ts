import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { BaseRecord, bigintAsNumber } from './base-record';
import { Series } from './series.entity';

/** One stored, de-identified DICOM object, addressed by the sha256 of its bytes. */
@Entity()
export class Instance extends BaseRecord {
  @Index()
  @Column({ type: 'uuid' })
  seriesId: string;

  @ManyToOne(() => Series, { onDelete: 'CASCADE' })
  @JoinColumn()
  series?: Series;

  @Index({ unique: true })
  @Column({ type: 'varchar', length: 64 })
  sopInstanceUid: string;

  @Column({ type: 'varchar', length: 64 })
  sopClassUid: string;

  @Column({ type: 'integer', nullable: true })
  instanceNumber: number | null;

  @Column({ type: 'integer' })
  rows: number;

  @Column({ type: 'integer' })
  columns: number;

  @Column({ type: 'integer', default: 1 })
  numberOfFrames: number;

  /** US (0-65535): integer, since smallint stops at 32767. */
  @Column({ type: 'integer' })
  bitsAllocated: number;

  @Column({ type: 'integer', default: 1 })
  samplesPerPixel: number;

  @Column({ type: 'varchar', length: 32 })
  photometricInterpretation: string;

  @Column({ type: 'varchar', length: 64 })
  transferSyntaxUid: string;

  @Index()
  @Column({ type: 'char', length: 64 })
  sha256: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  sizeBytes: number;
}
