import type { Db } from '../../db/transaction';
import { runClaimLoop, sleep, type Backoff, type HubClient } from '../../federation/hub-client';
import type { FederationNodeService } from './federation-node.service';

export interface ClaimLoopOptions {
  /** Long-poll wait per claim (the hub holds at most 25 s). */
  waitSeconds?: number;
  /** How often a worker without the lock tries to take it (another worker of the node holds it meanwhile). */
  lockRetryMs?: number;
  backoff?: Backoff;
  onError?: (error: unknown, delayMs: number) => void;
}

/**
 * The node's one claim loop. Any number of workers may run against one database, but only one of them long-polls
 * the hub for this site: a PostgreSQL session advisory lock (pg_try_advisory_lock on the site's name) held on a
 * dedicated connection for as long as the loop runs. A worker that dies loses its connection and with it the lock;
 * the others try again every few seconds and one takes over. Tasks are handed to FederationNodeService.receiveTask,
 * which verifies and stores them with their compute job.
 */
export class FederationClaimLoop {
  private controller: AbortController | null = null;
  private running: Promise<void> | null = null;
  private locked = false;

  constructor(
    private readonly db: Db,
    private readonly node: FederationNodeService,
    private readonly client: HubClient,
    private readonly options: ClaimLoopOptions = {},
  ) {}

  /** Whether this process holds the node's claim lock now. */
  get holdsLock(): boolean {
    return this.locked;
  }

  start(): void {
    if (this.running) return;
    const controller = new AbortController();
    this.controller = controller;
    this.running = this.run(controller.signal);
  }

  /** Stops claiming, releases the lock and closes this loop's connections to the hub. */
  async stop(): Promise<void> {
    this.controller?.abort();
    await this.running;
    this.running = null;
    await this.client.close();
  }

  private async run(signal: AbortSignal): Promise<void> {
    const site = this.node.options?.site;
    if (!site) return;
    const lockName = `facet-federation-claim:${site}`;
    const waitSeconds = this.options.waitSeconds ?? 25;
    while (!signal.aborted) {
      const runner = this.db.sessionConnection();
      try {
        await runner.connect();
        const [{ locked }] = await runner.query(`SELECT pg_try_advisory_lock(hashtext($1)) AS locked`, [lockName]);
        if (!locked) {
          await sleep(this.options.lockRetryMs ?? 5000, signal);
          continue;
        }
        this.locked = true;
        const identity = await this.node.identity();
        let working = await this.node.workingTaskIds();
        await runClaimLoop({
          client: {
            claimTasks: async (claim, wait, abort) => {
              try {
                return await this.client.claimTasks(claim, wait, abort);
              } finally {
                working = await this.node.workingTaskIds().catch(() => working);
              }
            },
          },
          makeClaim: () => this.node.makeClaim(identity, waitSeconds, working),
          onTasks: async (tasks) => {
            for (const task of tasks) await this.node.receiveTask(task);
          },
          onCancelled: (taskIds) => this.node.cancelTasks(taskIds),
          signal,
          waitSeconds,
          backoff: this.options.backoff,
          onError: this.options.onError,
        });
      } catch (error) {
        // The lock's connection failed (database restarting): start over, after a pause.
        this.options.onError?.(error, this.options.lockRetryMs ?? 5000);
        await sleep(this.options.lockRetryMs ?? 5000, signal);
      } finally {
        if (this.locked) await runner.query(`SELECT pg_advisory_unlock(hashtext($1))`, [lockName]).catch(() => undefined);
        this.locked = false;
        await runner.release().catch(() => undefined);
      }
    }
  }
}
