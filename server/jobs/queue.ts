import PgBoss from 'pg-boss';
import type { HasManager } from '../db/transaction';

/** Adapts the request's open transaction to pg-boss's `db` option, so a job is sent only if the transaction commits. */
function transactionAdapter(ctx: HasManager) {
  const manager = ctx.manager;
  if (!manager?.queryRunner?.isTransactionActive) throw new Error('queue.send needs a context with an open transaction');
  return { executeSql: async (text: string, values: unknown[] = []) => ({ rows: await manager.query(text, values) }) };
}

/**
 * The PostgreSQL job queue (pg-boss 10, in its own `pgboss` schema): one per process. Workers anywhere that
 * point at the same database share its queues.
 */
export class JobQueue {
  private readonly boss: PgBoss;

  private errorHandler: (error: Error) => void = () => undefined;

  constructor(databaseUrl: string, options: { supervise?: boolean } = {}) {
    this.boss = new PgBoss({ connectionString: databaseUrl, max: 4, supervise: options.supervise ?? true, application_name: 'facet-queue' });
    this.boss.on('error', (error) => this.errorHandler(error));
  }

  onError(handler: (error: Error) => void): void {
    this.errorHandler = handler;
  }

  private started = false;

  async start(queues: readonly string[] = []): Promise<void> {
    await this.boss.start();
    this.started = true;
    for (const name of queues) await this.boss.createQueue(name);
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.boss.stop({ graceful: true, wait: true, timeout: 30_000 });
  }

  /** Enqueues in `ctx`'s transaction: a rolled-back mutation leaves no job. Returns the job id. */
  async send(ctx: HasManager, name: string, data: object): Promise<string | null> {
    return this.boss.send(name, data, { db: transactionAdapter(ctx) });
  }

  /** Runs `handler` for each job of `name`; a throw fails the job and pg-boss retries it. */
  async work(name: string, handler: (data: unknown) => Promise<unknown>): Promise<string> {
    return this.boss.work(name, async (jobs) => {
      for (const job of jobs) await handler(job.data);
    });
  }

  async countJobs(name: string): Promise<number> {
    return this.boss.getQueueSize(name, { before: 'completed' });
  }
}
