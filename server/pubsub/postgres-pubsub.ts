import { setMaxListeners } from 'node:events';
import { createPubSub } from '@graphql-yoga/subscription';
import type { DataSource } from 'typeorm';
import { ListenConnection, type ListenConnectionOptions } from './listen-connection';
import type { TopicCatalogue } from './topics';

/** The one NOTIFY channel; payloads name their topic and id. PostgreSQL caps a payload at 8000 bytes. */
const CHANNEL = 'facet_events';
/** The local id under which every event of a topic is also delivered. */
const ANY_ID = '*';

interface Envelope {
  topic: string;
  id: string;
  payload: unknown;
}

/** A thousand dashboards on one job are one topic's thousand listeners: not a leak, so no warning past ten. */
function unboundedEventTarget(): EventTarget {
  const target = new EventTarget();
  setMaxListeners(0, target);
  return target;
}

/**
 * Starts `events` at once: the in-process pub/sub (a Repeater) adds its listener only on the first next(), which
 * a subscriber would call only after reading the current state, losing what was published meanwhile.
 */
function listeningNow<T>(events: AsyncIterable<T>): AsyncIterable<T> {
  const iterator = events[Symbol.asyncIterator]();
  let first: Promise<IteratorResult<T>> | null = iterator.next();
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => {
        const next = first ?? iterator.next();
        first = null;
        return next;
      },
      return: (value?: unknown) => iterator.return?.(value) ?? Promise.resolve({ done: true, value: undefined as T }),
    }),
  };
}

/** Something that runs SQL: an open transaction's EntityManager or query runner. */
export interface Queryable {
  query(sql: string, params: unknown[]): Promise<unknown>;
}

/** Topic names of a catalogue. */
type TopicOf<C> = keyof C & string;

/**
 * The node's pub/sub over PostgreSQL LISTEN/NOTIFY, typed by a topic catalogue (the node's TopicCatalogue unless a
 * test brings its own): `publish` sends a NOTIFY, every server process LISTENs and hands the event to its local
 * subscribers. So a subscriber on one server sees events published by any server or worker of the node, and
 * servers stay stateless behind a load balancer.
 */
export class PostgresPubSub<C extends object = TopicCatalogue> {
  private readonly local = createPubSub<Record<string, [string, unknown]>>({ eventTarget: unboundedEventTarget() });
  private listener: ListenConnection | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly databaseUrl: string,
  ) {}

  /** Where a lost LISTEN connection is reported (the node's log); it is reopened either way. */
  onListenerLost: (error: Error) => void = () => undefined;
  /** A reconnect attempt failed; the next follows after `delayMs`. */
  onListenerRetry: (error: Error, attempt: number, delayMs: number) => void = () => undefined;
  /** Listening again after `attempts` attempts. */
  onListenerRestored: (attempts: number) => void = () => undefined;
  /** Caches that trust notifications to stay fresh; each is told when events may have been missed (LISTEN was down). */
  private readonly gapWatchers: (() => void)[] = [];

  /** Calls `fn` whenever the LISTEN connection comes back after a loss: events sent meanwhile were not delivered. */
  onEventsMissed(fn: () => void): void {
    this.gapWatchers.push(fn);
  }

  /**
   * Starts listening (servers only: a process that only publishes needs no listener). The LISTEN connection is
   * reopened whenever it breaks (ListenConnection: one loop, bounded backoff with jitter), so the server neither
   * crashes nor goes silent. Events sent while it was down are lost; each subscription's next event carries the
   * full current state again.
   */
  async listen(options: Pick<ListenConnectionOptions, 'baseDelayMs' | 'maxDelayMs' | 'random'> = {}): Promise<void> {
    if (this.listener) return;
    const listener = new ListenConnection(this.databaseUrl, CHANNEL, (payload) => this.deliver(payload), {
      ...options,
      onLost: (error) => this.onListenerLost(error),
      onRetry: (error, attempt, delayMs) => this.onListenerRetry(error, attempt, delayMs),
      onRestored: (attempts) => {
        for (const fn of this.gapWatchers) fn();
        this.onListenerRestored(attempts);
      },
    });
    await listener.open();
    this.listener = listener;
  }

  /** Hands one NOTIFY to the local subscribers; a payload that is not ours (someone else's NOTIFY) is dropped. */
  private deliver(payload: string): void {
    let event: Envelope;
    try {
      event = JSON.parse(payload) as Envelope;
    } catch {
      return;
    }
    if (typeof event?.topic !== 'string' || typeof event.id !== 'string') return;
    this.local.publish(event.topic, event.id, event.payload);
    this.local.publish(event.topic, ANY_ID, event.payload);
  }

  /** Whether the LISTEN connection is open now (false while it reconnects). */
  get listening(): boolean {
    return this.listener?.listening ?? false;
  }

  async close(): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    await listener?.close();
  }

  /**
   * Publishes `payload` to the subscribers of `topic` and `id` on every server, once PostgreSQL has taken the
   * notification. With `tx` (an open transaction), the notification goes out when that transaction commits, and not
   * at all if it rolls back.
   */
  async publish<T extends TopicOf<C>>(topic: T, id: string, payload: C[T], tx?: Queryable): Promise<void> {
    await (tx ?? this.dataSource).query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ topic, id, payload } satisfies Envelope)]);
  }

  /**
   * Events of `topic` and `id`, listened for from this call on (not from the first read): a subscriber that
   * then reads the current state misses nothing published in between.
   */
  subscribe<T extends TopicOf<C>>(topic: T, id: string): AsyncIterable<C[T]> {
    return listeningNow(this.local.subscribe(topic, id) as AsyncIterable<C[T]>);
  }

  /** Every event of `topic`, whatever its id (e.g. every job's progress, for a site's job list), listened for from now. */
  subscribeAll<T extends TopicOf<C>>(topic: T): AsyncIterable<C[T]> {
    return listeningNow(this.local.subscribe(topic, ANY_ID) as AsyncIterable<C[T]>);
  }
}
