import { Column, Entity, Index } from 'typeorm';
import { ReferenceSource } from '../domain';
import { BaseRecord } from './base-record';

/**
 * One reference-standard file established outside the reading workflow (a consensus panel, an external read):
 * what arrived, from whom, when. Its grades point back here; the senior group confirms them afterwards, each site's
 * senior the grades of their site, so confirmation lives on the grades. Immutable.
 */
@Entity()
export class ReferenceImport extends BaseRecord {
  /** sha256 of the file's bytes (UTF-8): the same file again is recognised, and the answer names the import. */
  @Index({ unique: true })
  @Column({ type: 'char', length: 64 })
  sha256: string;

  /** Data rows of the file. */
  @Column({ type: 'integer' })
  rows: number;

  /** Cells that had no reference grade. */
  @Column({ type: 'integer' })
  created: number;

  /** Cells whose unconfirmed AGREEMENT or ADJUDICATION grade the file replaced. */
  @Column({ type: 'integer' })
  replaced: number;

  /** The sources the file names. */
  @Column({ type: 'enum', enum: ReferenceSource, enumName: 'reference_source', array: true })
  sources: ReferenceSource[];

  @Column({ type: 'uuid', nullable: true })
  importedByTokenId: string | null;

  /** The importing token's name (a person or service, never patient data); "cli" and the like for the node itself. */
  @Column({ type: 'varchar', length: 100 })
  importedBy: string;
}
