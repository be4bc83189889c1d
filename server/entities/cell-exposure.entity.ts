import { Column, Entity, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { Modality } from '../domain';
import { AuditEvent } from './audit-event.entity';
import { BaseRecord } from './base-record';
import { Joint } from './joint.entity';
import { Reader } from './reader.entity';

/**
 * A reader has seen grades of a joint x modality x feature that were not their own (readings of others,
 * adjudications, reference grades): they can no longer be one of its independent readers. One row per reader and
 * cell; `createdAt` is the first time, `auditEventId` the read that showed them.
 */
@Entity()
@Unique(['readerId', 'jointId', 'modality', 'feature'])
export class CellExposure extends BaseRecord {
  @Column({ type: 'uuid' })
  readerId: string;

  @ManyToOne(() => Reader, { onDelete: 'CASCADE' })
  @JoinColumn()
  reader?: Reader;

  @Column({ type: 'uuid' })
  jointId: string;

  @ManyToOne(() => Joint, { onDelete: 'CASCADE' })
  @JoinColumn()
  joint?: Joint;

  @Column({ type: 'enum', enum: Modality, enumName: 'modality' })
  modality: Modality;

  @Column({ type: 'varchar', length: 48 })
  feature: string;

  @Column({ type: 'uuid' })
  auditEventId: string;

  @ManyToOne(() => AuditEvent, { onDelete: 'RESTRICT' })
  @JoinColumn()
  auditEvent?: AuditEvent;
}
