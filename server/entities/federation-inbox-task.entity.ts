import { Column, Entity, Index } from 'typeorm';
import { FederationInboxState } from '../domain';
import { MutableRecord } from './base-record';

/**
 * One task the hub sent this node: the signed envelope as it arrived, what the node decided, what it held for a
 * coordinator, the result it signed and the hub's receipt. Unique on the hub's task id, so a task delivered twice
 * (a lapsed claim lease) is stored and computed once.
 */
@Entity()
export class FederationInboxTask extends MutableRecord {
  @Index({ unique: true })
  @Column({ type: 'varchar', length: 200 })
  taskId: string;

  @Column({ type: 'jsonb' })
  taskEnvelope: Record<string, unknown>;

  /** sha256 of the canonical TaskPayload: the result names it. */
  @Column({ type: 'char', length: 64 })
  taskSha256: string;

  @Column({ type: 'varchar', length: 32 })
  kind: string;

  @Index()
  @Column({ type: 'enum', enum: FederationInboxState, enumName: 'federation_inbox_state' })
  state: FederationInboxState;

  /** REFUSED and FAILED: the code that goes to the hub (policy or compute code); never a value. */
  @Column({ type: 'varchar', length: 64, nullable: true })
  reason: string | null;

  /** The local explanation (a policy's detail, a coordinator's note): stays at the node. */
  @Column({ type: 'text', nullable: true })
  detail: string | null;

  /** What the computation used, for the result's provenance manifest (set once computed). */
  @Column({ type: 'jsonb', nullable: true })
  provenance: { splitVersionId: string | null; modelSha256: string | null; referenceSnapshotSha256: string | null } | null;

  /** HELD: the aggregate that would leave, exactly (suppression applied), and its canonical sha256. */
  @Column({ type: 'jsonb', nullable: true })
  heldAggregate: Record<string, unknown> | null;

  @Column({ type: 'char', length: 64, nullable: true })
  heldAggregateSha256: string | null;

  /** The coordinator or admin who released or refused a held result (token name and id). */
  @Column({ type: 'varchar', length: 300, nullable: true })
  decidedBy: string | null;

  /** The signed result payload (ResultPayload); each delivery attempt signs it afresh (a retry is never a replay). */
  @Column({ type: 'jsonb', nullable: true })
  resultPayload: Record<string, unknown> | null;

  @Column({ type: 'char', length: 64, nullable: true })
  resultPayloadSha256: string | null;

  /** The hub's signed RECEIPT envelope, verified. */
  @Column({ type: 'jsonb', nullable: true })
  receipt: Record<string, unknown> | null;

  @Column({ type: 'integer', default: 0 })
  deliveryAttempts: number;
}
