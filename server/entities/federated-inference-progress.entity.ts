import { Column, Entity, Unique } from 'typeorm';
import { MutableRecord } from './base-record';

/**
 * The hub's latest progress report from one site on one federated inference task (a signed PROGRESS envelope from
 * the node: counts only). A report replaces the row only when its sequence is higher, so reports that cross on the
 * way never move a site backwards.
 */
@Entity()
@Unique(['taskId', 'site'])
export class FederatedInferenceProgress extends MutableRecord {
  @Column({ type: 'uuid' })
  taskId: string;

  @Column({ type: 'varchar', length: 64 })
  site: string;

  @Column({ type: 'integer' })
  sequence: number;

  /** federated-inference.ts InferencePhase. */
  @Column({ type: 'varchar', length: 16 })
  phase: string;

  @Column({ type: 'integer' })
  total: number;

  @Column({ type: 'integer' })
  done: number;

  @Column({ type: 'integer' })
  failed: number;

  /** Seconds the node's job had been running when it reported. */
  @Column({ type: 'double precision' })
  elapsedSeconds: number;

  @Column({ type: 'varchar', length: 32, nullable: true })
  executionProvider: string | null;

  /** payloadSha256 of the envelope this row holds. */
  @Column({ type: 'char', length: 64 })
  payloadSha256: string;
}
