import { Column, Entity, Index } from 'typeorm';
import { MutableRecord } from './base-record';

/**
 * A node's federated inference task beside its inbox row: the model it fetched and registered (by sha256), the
 * inference job it runs, and what it last reported to the hub (so a report goes only when something changed).
 */
@Entity()
export class FederatedInferenceRun extends MutableRecord {
  @Index({ unique: true })
  @Column({ type: 'uuid' })
  inboxTaskId: string;

  @Column({ type: 'char', length: 64 })
  modelSha256: string;

  /** This node's model version with those bytes (registered from the hub's copy, or the one it had). */
  @Column({ type: 'uuid', nullable: true })
  modelVersionId: string | null;

  @Index()
  @Column({ type: 'uuid', nullable: true })
  inferenceJobId: string | null;

  /** The sequence of the last report signed for the hub (each report takes the next). */
  @Column({ type: 'integer', default: 0 })
  sequence: number;

  /** The last report the hub accepted, without its sequence and elapsed time: an unchanged state is not sent again. */
  @Column({ type: 'jsonb', nullable: true })
  reported: Record<string, unknown> | null;

  /** The final report (FINISHED, FAILED, REFUSED, CANCELLED) reached the hub: nothing more to relay. */
  @Column({ type: 'boolean', default: false })
  closed: boolean;
}
