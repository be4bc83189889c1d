import { Column, Entity, Index } from 'typeorm';
import { FederatedQueryKind, FederatedQueryStatus } from '../domain';
import { MutableRecord } from './base-record';

/** A JSON object as jsonb holds it; the service gives it its federation type (canonical-json.ts) when it reads it. */
export type JsonDocument = object;

/** A researcher's federated query at the hub: one task, one FederationSiteTask per addressed site. */
@Entity()
@Index(['status'])
export class FederationTask extends MutableRecord {
  @Column({ type: 'enum', enum: FederatedQueryKind, enumName: 'federated_query_kind' })
  kind: FederatedQueryKind;

  /** The task kind's query (task-kinds.ts), canonical: the same for every site. */
  @Column({ type: 'jsonb' })
  query: JsonDocument;

  /** sha256 of the canonical query. */
  @Column({ type: 'char', length: 64 })
  querySha256: string;

  @Column({ type: 'uuid', nullable: true })
  requestedByTokenId: string | null;

  /** The requesting token's name, for the audit trail. */
  @Column({ type: 'varchar', length: 200 })
  requestedBy: string;

  /** k of n: fewer contributions than this by the deadline give an INSUFFICIENT answer. */
  @Column({ type: 'integer' })
  minSites: number;

  @Column({ type: 'timestamptz' })
  deadline: Date;

  @Column({ type: 'enum', enum: FederatedQueryStatus, enumName: 'federated_query_status', default: FederatedQueryStatus.RUNNING })
  status: FederatedQueryStatus;

  /**
   * A later part of a researcher's query, started by the hub (AUC round 2, the bootstrap of BINARY_COUNTS); null for
   * the researcher's own task, whose id is the query's.
   */
  @Column({ type: 'uuid', nullable: true })
  @Index()
  parentTaskId: string | null;

  /** 1 until the answer changes after its deadline; each late result that folds in adds one. */
  @Column({ type: 'integer', default: 1 })
  revision: number;
}
