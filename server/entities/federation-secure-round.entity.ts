import { Column, Entity, Index } from 'typeorm';
import { MutableRecord } from './base-record';
import type { JsonDocument } from './federation-task.entity';

/**
 * The hub's secure round of one task (docs/federation.md section 6): its current attempt, participants, the pooled
 * keys and lengths every participant masks, the phase, and the attempts it restarted without a site. The masked
 * vectors and seeds are FederationSecureAnswer rows.
 */
@Entity()
export class FederationSecureRound extends MutableRecord {
  @Index({ unique: true })
  @Column({ type: 'uuid' })
  taskId: string;

  /** The protocol's task kind (secure-rows.ts layout). */
  @Column({ type: 'varchar', length: 32 })
  kind: string;

  @Column({ type: 'integer' })
  attempt: number;

  /** `<taskId>#<attempt>`. */
  @Column({ type: 'varchar', length: 80 })
  roundId: string;

  @Column({ type: 'varchar', length: 32, array: true })
  participants: string[];

  /** Canonical JSON of each pooled key, in vector order. */
  @Column({ type: 'jsonb' })
  keys: string[];

  @Column({ type: 'jsonb' })
  lengths: Record<string, number>;

  /** COLLECTING_MASKED, COLLECTING_SEEDS, DONE or FAILED. */
  @Column({ type: 'varchar', length: 24 })
  phase: string;

  @Column({ type: 'varchar', length: 32, nullable: true })
  failure: string | null;

  /** Each earlier attempt and the sites it went on without: [{attempt, dropped}]. */
  @Column({ type: 'jsonb' })
  restarts: JsonDocument[];

  /** The current attempt's deadline (the federation-secure-step job comes then). */
  @Column({ type: 'timestamptz' })
  deadline: Date;
}
