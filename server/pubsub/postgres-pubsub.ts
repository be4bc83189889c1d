import { setMaxListeners } from 'node:events';
import { createPubSub } from '@graphql-yoga/subscription';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';

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
 * type-graphql's PubSub over PostgreSQL LISTEN/NOTIFY: `publish` sends a NOTIFY, every server process LISTENs
 * and hands the event to its local subscribers. So a subscriber on one server sees events published by any
 * server or worker of the node, and servers stay stateless behind a load balancer.
 */
export class PostgresPubSub {
  private readonly local = createPubSub<Record<string, [string, unknown]>>({ eventTarget: unboundedEventTarget() });
  private listener: Client | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly databaseUrl: string,
  ) {}

  /** Starts listening (servers only: a process that only publishes needs no listener). */
  async listen(): Promise<void> {
    const client = new Client({ connectionString: this.databaseUrl, application_name: 'facet-listen' });
    await client.connect();
    client.on('notification', (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      const event = JSON.parse(message.payload) as Envelope;
      this.local.publish(event.topic, event.id, event.payload);
      this.local.publish(event.topic, ANY_ID, event.payload);
    });
    await client.query(`LISTEN ${CHANNEL}`);
    this.listener = client;
  }

  async close(): Promise<void> {
    await this.listener?.end();
    this.listener = null;
  }

  /** type-graphql calls publish(topic, id, payload) for topic-id subscriptions. */
  publish(topic: string, ...args: unknown[]): void {
    const [id, payload] = args as [string, unknown];
    const text = JSON.stringify({ topic, id, payload } satisfies Envelope);
    void this.dataSource.query('SELECT pg_notify($1, $2)', [CHANNEL, text]).catch(() => undefined);
  }

  /** Publishes and waits until PostgreSQL has taken the notification. */
  async publishNow(topic: string, id: string, payload: unknown): Promise<void> {
    await this.dataSource.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ topic, id, payload } satisfies Envelope)]);
  }

  subscribe(topic: string, id?: unknown): AsyncIterable<unknown> {
    return this.local.subscribe(topic, String(id));
  }

  /** Every event of `topic`, whatever its id (e.g. every job's progress, for a site's job list). */
  subscribeAll(topic: string): AsyncIterable<unknown> {
    return this.local.subscribe(topic, ANY_ID);
  }
}
