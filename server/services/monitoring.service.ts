import type { Db } from '../db/transaction';
import { JobStatus, Role } from '../domain';
import { JOB_NAMES } from '../queue/job-catalogue';
import type { JobQueue } from '../queue/job-queue';
import { dbPool, jobsByStatus, queueDepth } from '../telemetry/metrics';
import { requireRole, type RequestContext } from './request-context';

/** The gauges of shared state for /metrics: inference jobs by status, pg-boss queue depths, this process's pool. */
export class MonitoringService {
  constructor(
    private readonly db: Db,
    private readonly queue: JobQueue,
  ) {}

  /** Reads the state once per scrape and sets the gauges (ADMIN: the metrics route scrapes as the node itself). */
  async refreshGauges(ctx: RequestContext): Promise<void> {
    requireRole(ctx, Role.ADMIN);
    const rows: Array<{ status: JobStatus; n: number }> = await this.db
      .manager(ctx)
      .query('SELECT status, count(*)::int AS n FROM inference_job GROUP BY status');
    for (const status of Object.values(JobStatus)) jobsByStatus.set({ status }, rows.find((r) => r.status === status)?.n ?? 0);
    for (const name of JOB_NAMES) queueDepth.set({ queue: name }, await this.queue.countJobs(name));
    const pool = this.db.poolUse();
    dbPool.set({ state: 'total' }, pool.total);
    dbPool.set({ state: 'idle' }, pool.idle);
    dbPool.set({ state: 'waiting' }, pool.waiting);
  }
}
