import PgBoss from 'pg-boss';
import type { HasManager } from '../db/transaction';
import { DEAD_LETTER_QUEUES, JOB_NAMES, QUEUE_POLICY, RETRY_OVERRIDES, type JobCatalogue } from './job-catalogue';

/** Adapts the request's open transaction to pg-boss's `db` option, so a job is sent only if the transaction commits. */
function transactionAdapter(ctx: HasManager) {
  const manager = ctx.manager;
  if (!manager?.queryRunner?.isTransactionActive) throw new Error('queue.send needs a context with an open transaction');
  return { executeSql: async (text: string, values: unknown[] = []) => ({ rows: await manager.query(text, values) }) };
}

/** Overrides of QUEUE_POLICY (from Config) and whether this process runs maintenance. */
export interface JobQueueOptions {
  /** Run maintenance here (expiring jobs whose worker died); any number of processes may, one at a time does. */
  supervise?: boolean;
  /**
   * A job still active this long after it started is taken for dead (its worker was killed) and retried. Handlers
   * must finish well within it: long work runs as a chain of short jobs (see InferenceRunner).
   */
  expireInSeconds?: number;
  /** How often a supervising process looks for expired jobs. */
  maintenanceIntervalSeconds?: number;
  retryLimit?: number;
  retryDelaySeconds?: number;
}

/** Queue names of a catalogue. */
type NameOf<C> = keyof C & string;

/**
 * What a worker runs per job of queue `N`: the payload it was sent with, and the output pg-boss recorded for it (for
 * a dead-letter queue's job, the original's last error). A throw fails the job, and pg-boss retries it.
 */
export type WorkHandler<C, N extends NameOf<C>> = (data: C[N], output: unknown) => Promise<unknown>;

const PG_DEADLOCK_DETECTED = '40P01';

/**
 * Runs `fn` again when PostgreSQL chose it as a deadlock's victim: servers and workers starting together on an
 * empty database create the same queues at once (pg-boss's createQueue takes no lock), and PostgreSQL resolves
 * that by failing one of them, which may simply retry.
 */
async function retryOnDeadlock<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if ((error as { code?: unknown }).code !== PG_DEADLOCK_DETECTED || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt * (1 + Math.random())));
    }
  }
}

/**
 * The PostgreSQL job queue (pg-boss 10, in its own `pgboss` schema): one per process. Workers anywhere that
 * point at the same database share its queues. Typed by a catalogue of queue names and payloads: the node's
 * JobCatalogue unless a test brings its own.
 */
export class JobQueue<C extends object = JobCatalogue> {
  private readonly boss: PgBoss;

  private errorHandler: (error: Error) => void = () => undefined;

  private readonly sendOptions: PgBoss.SendOptions;

  constructor(databaseUrl: string, options: JobQueueOptions = {}) {
    this.boss = new PgBoss({
      connectionString: databaseUrl,
      max: QUEUE_POLICY.poolSize,
      supervise: options.supervise ?? true,
      maintenanceIntervalSeconds: options.maintenanceIntervalSeconds ?? QUEUE_POLICY.maintenanceIntervalSeconds,
      application_name: 'facet-queue',
    });
    this.boss.on('error', (error) => this.errorHandler(error));
    this.sendOptions = {
      expireInSeconds: options.expireInSeconds ?? QUEUE_POLICY.expireInSeconds,
      retryLimit: options.retryLimit ?? QUEUE_POLICY.retryLimit,
      retryDelay: options.retryDelaySeconds ?? QUEUE_POLICY.retryDelaySeconds,
    };
  }

  onError(handler: (error: Error) => void): void {
    this.errorHandler = handler;
  }

  private started = false;

  /** Starts pg-boss and creates `queues` (by default every queue of the catalogue, dead-letter queues first). */
  async start(queues: readonly NameOf<C>[] = JOB_NAMES as readonly string[] as readonly NameOf<C>[]): Promise<void> {
    await this.boss.start();
    this.started = true;
    for (const name of queues) await retryOnDeadlock(() => this.boss.createQueue(name, { name, policy: QUEUE_POLICY.policy }));
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.boss.stop({ graceful: true, wait: true, timeout: 30_000 });
  }

  /** Enqueues in `ctx`'s transaction: a rolled-back mutation leaves no job. Returns the job id. `startAfter`: not before then. */
  async send<N extends NameOf<C>>(ctx: HasManager, name: N, data: C[N] & object, options: { startAfter?: Date } = {}): Promise<string | null> {
    const deadLetter = (DEAD_LETTER_QUEUES as Partial<Record<string, string>>)[name];
    const retries = (RETRY_OVERRIDES as Partial<Record<string, PgBoss.SendOptions>>)[name];
    return this.boss.send(name, data, {
      ...this.sendOptions,
      ...retries,
      ...(deadLetter ? { deadLetter } : {}),
      ...(options.startAfter ? { startAfter: options.startAfter } : {}),
      db: transactionAdapter(ctx),
    });
  }

  /**
   * Runs `handler` for each job of `name`; a throw fails the job and pg-boss retries it, up to the retry limit,
   * then moves it to the queue's dead-letter queue (DEAD_LETTER_QUEUES), whose handler records the failure.
   */
  async work<N extends NameOf<C>>(name: N, handler: WorkHandler<C, N>): Promise<string> {
    return this.boss.work<C[N]>(name, { pollingIntervalSeconds: QUEUE_POLICY.pollingIntervalSeconds, includeMetadata: true }, async (jobs) => {
      for (const job of jobs) await handler(job.data, job.output);
    });
  }

  async countJobs(name: NameOf<C>): Promise<number> {
    return this.boss.getQueueSize(name, { before: 'completed' });
  }
}
