import { Column, Entity, Unique } from 'typeorm';
import { BaseRecord } from './base-record';

/**
 * A model version: an ONNX file with its manifest, or a model run elsewhere whose predictions are
 * imported (sha256 and manifest null). Immutable once registered.
 */
@Entity()
@Unique(['name', 'version'])
export class ModelVersion extends BaseRecord {
  @Column({ type: 'varchar', length: 100 })
  name: string;

  @Column({ type: 'varchar', length: 50 })
  version: string;

  @Column({ type: 'text', nullable: true })
  description: string | null;

  /** sha256 of the ONNX file; null for an external model. */
  @Column({ type: 'char', length: 64, nullable: true })
  sha256: string | null;

  @Column({ type: 'jsonb', nullable: true })
  manifest: Record<string, unknown> | null;

  @Column({ type: 'uuid', nullable: true })
  registeredByTokenId: string | null;
}
