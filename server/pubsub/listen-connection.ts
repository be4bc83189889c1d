import { Client, type Notification } from 'pg';

export interface ListenConnectionOptions {
  /** The first retry's delay; each failed attempt doubles it up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called with a number in [0, 1) per retry; tests pass a seeded one. */
  random?: () => number;
  /** A LISTEN connection was lost (PostgreSQL restarted, the backend was terminated). */
  onLost?: (error: Error) => void;
  /** A reconnect attempt failed; another is scheduled after `delayMs`. */
  onRetry?: (error: Error, attempt: number, delayMs: number) => void;
  /** The connection is listening again after a loss. */
  onRestored?: (attempts: number) => void;
}

/**
 * The delay before reconnect attempt `attempt` (1, 2, ...): exponential from `base` up to `max`, with "equal
 * jitter" (half fixed, half random) so servers that lost the database together do not return in lockstep.
 * With the defaults, 0.25-0.5 s, 0.5-1 s, 1-2 s, 2-4 s, then 2.5-5 s: a 3 s restart costs about four attempts,
 * an hour's outage about a thousand, per server.
 */
export function reconnectDelay(attempt: number, base: number, max: number, random: () => number): number {
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt - 1, 20));
  return ceiling / 2 + (random() * ceiling) / 2;
}

/**
 * One PostgreSQL connection that LISTENs on one channel and stays open: when it breaks, exactly one reconnect
 * loop runs (one timer, one attempt at a time) until a new connection listens again. A connection being made is
 * not "live" until LISTEN succeeded, so its failure only schedules the next attempt: it never starts a second
 * loop, and a superseded client's late 'end' or 'error' is ignored.
 */
export class ListenConnection {
  private live: Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private attempting = false;
  private failures = 0;
  private closed = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;

  constructor(
    private readonly databaseUrl: string,
    private readonly channel: string,
    private readonly onNotification: (payload: string) => void,
    private readonly options: ListenConnectionOptions = {},
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`Not a plain channel name: ${channel}`);
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 5_000;
    this.random = options.random ?? Math.random;
  }

  /** Opens the connection; rejects if the first attempt fails (a server should not start without its database). */
  async open(): Promise<void> {
    this.closed = false;
    await this.connect();
  }

  /** Whether a connection is listening now. */
  get listening(): boolean {
    return this.live !== null;
  }

  /** One attempt: a new client that is live once it LISTENs; false if closed meanwhile. */
  private async connect(): Promise<boolean> {
    const client = new Client({ connectionString: this.databaseUrl, application_name: 'facet-listen' });
    // An 'error' with no listener would crash the process; before the client is live, connect() rejects instead.
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('LISTEN connection ended')));
    client.on('notification', (message: Notification) => {
      if (message.channel === this.channel && message.payload) this.onNotification(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch (error) {
      void client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return false;
    }
    this.live = client;
    return true;
  }

  /** The live client broke: drop it and start the one reconnect loop. */
  private lost(client: Client, error: Error): void {
    if (client !== this.live) return;
    this.live = null;
    void client.end().catch(() => undefined);
    if (this.closed) return;
    this.options.onLost?.(error);
    this.failures = 0;
    this.retryAfter(this.nextDelay());
  }

  private nextDelay(): number {
    return reconnectDelay(this.failures + 1, this.baseDelayMs, this.maxDelayMs, this.random);
  }

  /** Arms the one retry timer, unless one is armed, an attempt is running, or a connection is live. */
  private retryAfter(delayMs: number): void {
    if (this.closed || this.timer || this.attempting || this.live) return;
    this.timer = setTimeout(() => void this.attempt(), delayMs);
    this.timer.unref();
  }

  private async attempt(): Promise<void> {
    this.timer = null;
    if (this.closed || this.live) return;
    this.attempting = true;
    let delay: number | null = null;
    try {
      if (await this.connect()) this.options.onRestored?.(this.failures + 1);
      this.failures = 0;
    } catch (error) {
      this.failures++;
      delay = this.nextDelay();
      this.options.onRetry?.(error as Error, this.failures, delay);
    } finally {
      this.attempting = false;
    }
    // Also when the new connection broke at once (it is no longer live): the loop goes on.
    if (!this.live) this.retryAfter(delay ?? this.nextDelay());
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const client = this.live;
    this.live = null;
    await client?.end().catch(() => undefined);
  }
}
