import { Column, Entity, Index } from 'typeorm';
import { JobStatus, type JobFailure } from '../domain';
import { MutableRecord } from './base-record';

/** An inference run of a model version over a scope of joint images; our row holds status, counts and errors. */
@Entity()
@Index(['status'])
export class InferenceJob extends MutableRecord {
  @Index()
  @Column({ type: 'uuid' })
  modelVersionId: string;

  /** Site ids and modalities in scope (empty: all). */
  @Column({ type: 'jsonb' })
  scope: { siteIds: string[]; modalities: string[] };

  @Column({ type: 'enum', enum: JobStatus, enumName: 'job_status', default: JobStatus.QUEUED })
  status: JobStatus;

  /** Joint x modality work items (one image each). */
  @Column({ type: 'integer', default: 0 })
  total: number;

  @Column({ type: 'integer', default: 0 })
  done: number;

  @Column({ type: 'integer', default: 0 })
  failed: number;

  /** The first failures, with reasons (at most 100 kept). */
  @Column({ type: 'jsonb', default: [] })
  failures: JobFailure[];

  /** The ONNX Runtime execution provider that ran the job. */
  @Column({ type: 'varchar', length: 32, nullable: true })
  provider: string | null;

  /** The last work item (object:frame:joint:modality, in the job's order) whose outcome is counted; a resumed run starts after it. */
  @Column({ type: 'varchar', length: 160, nullable: true })
  cursor: string | null;

  /** The run that may write: a retry takes a new lease, and a stale run stops at its next batch. */
  @Column({ type: 'uuid', nullable: true })
  leaseId: string | null;

  /** host:pid of the worker holding the lease. */
  @Column({ type: 'varchar', length: 128, nullable: true })
  worker: string | null;

  /** Runs started (slices, continuations and retries after a crash). */
  @Column({ type: 'integer', default: 0 })
  attempts: number;

  @Column({ type: 'text', nullable: true })
  error: string | null;

  @Column({ type: 'uuid', nullable: true })
  requestedByTokenId: string | null;

  @Column({ type: 'timestamptz', nullable: true })
  startedAt: Date | null;

  @Column({ type: 'timestamptz', nullable: true })
  finishedAt: Date | null;
}
