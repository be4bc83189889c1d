import { Column, Entity, Index } from 'typeorm';
import { BaseRecord } from './base-record';
import type { JsonDocument } from './federation-task.entity';

/** One site's signed answer in a secure round (a masked vector, a seed or a refusal), exactly as received; immutable. */
@Entity()
@Index(['roundId', 'site', 'step'], { unique: true })
export class FederationSecureAnswer extends BaseRecord {
  @Index()
  @Column({ type: 'uuid' })
  taskId: string;

  @Column({ type: 'varchar', length: 80 })
  roundId: string;

  @Column({ type: 'varchar', length: 32 })
  site: string;

  /** MASKED, SEED or REFUSED. */
  @Column({ type: 'varchar', length: 16 })
  step: string;

  /** The SECURE_ANSWER envelope as verified. */
  @Column({ type: 'jsonb' })
  envelope: JsonDocument;
}
