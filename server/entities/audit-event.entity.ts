import { Column, Entity, Generated, Index } from 'typeorm';
import { Role } from '../domain';
import { BaseRecord } from './base-record';

/** Who did what, when: every mutation and every read of patient-level data. Never holds PHI. */
@Entity()
@Index(['createdAt'])
export class AuditEvent extends BaseRecord {
  /**
   * Insertion order, for paging newest first: every event of one transaction has the same `createdAt` (now() is
   * the transaction's start), so only a sequence orders them. A bigint arrives from pg as a string.
   */
  @Index({ unique: true })
  @Column({ type: 'bigint' })
  @Generated('increment')
  seq: string;

  @Column({ type: 'uuid', nullable: true })
  actorTokenId: string | null;

  @Column({ type: 'enum', enum: Role, enumName: 'role', nullable: true })
  actorRole: Role | null;

  @Index()
  @Column({ type: 'varchar', length: 64 })
  action: string;

  @Column({ type: 'varchar', length: 64 })
  entityType: string;

  @Column({ type: 'uuid', nullable: true })
  entityId: string | null;

  @Column({ type: 'uuid', nullable: true })
  siteId: string | null;

  /** The server's own id of the request (also in its logs and the x-request-id response header). */
  @Column({ type: 'varchar', length: 64 })
  requestId: string;

  /** The client's x-request-id, when it sent a printable one of at most 64 characters: recorded beside requestId, never instead. */
  @Column({ type: 'varchar', length: 64, nullable: true })
  clientRequestId: string | null;

  @Column({ type: 'jsonb', default: {} })
  details: Record<string, unknown>;
}
