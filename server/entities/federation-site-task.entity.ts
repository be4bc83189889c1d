import { Column, Entity, Index, ManyToOne, JoinColumn, Unique } from 'typeorm';
import { FederationSiteTaskState } from '../domain';
import { MutableRecord } from './base-record';
import type { JsonDocument } from './federation-task.entity';
import { FederationTask } from './federation-task.entity';

/** One site's part of a federated query: the task payload addressed to it and where it stands (protocol.ts moves). */
@Entity()
@Unique(['taskId', 'site'])
@Index(['site', 'state'])
export class FederationSiteTask extends MutableRecord {
  @Column({ type: 'uuid' })
  taskId: string;

  @ManyToOne(() => FederationTask, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'task_id' })
  task?: FederationTask;

  /** The member's registry code. */
  @Column({ type: 'varchar', length: 32 })
  site: string;

  @Column({ type: 'enum', enum: FederationSiteTaskState, enumName: 'federation_site_task_state', default: FederationSiteTaskState.QUEUED })
  state: FederationSiteTaskState;

  /** The TaskPayload (protocol.ts) signed afresh for each delivery, so its signing time is always inside the node's replay window. */
  @Column({ type: 'jsonb' })
  payload: JsonDocument;

  /** sha256 of the canonical payload: the result must name it. */
  @Column({ type: 'char', length: 64 })
  taskSha256: string;

  /** The first claim that picked it up (kept when a lapsed lease re-queues it: the site did call in). */
  @Column({ type: 'timestamptz', nullable: true })
  claimedAt: Date | null;

  @Column({ type: 'timestamptz', nullable: true })
  leaseUntil: Date | null;

  @Column({ type: 'timestamptz', nullable: true })
  settledAt: Date | null;

  /** The result arrived after the deadline. */
  @Column({ type: 'boolean', default: false })
  late: boolean;

  /** The site's refusal or failure code, or why the hub expired it. */
  @Column({ type: 'varchar', length: 200, nullable: true })
  reason: string | null;

  /** The cancellation of a task this site had claimed has been told to it (in a claim answer's `cancelled`). */
  @Column({ type: 'boolean', default: false })
  cancelDelivered: boolean;
}
