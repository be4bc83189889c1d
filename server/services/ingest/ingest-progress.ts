import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { INGEST_PROGRESS, type IngestProgressEvent } from '../../pubsub/topics';

/** At most one progress event per batch in this many ms, besides the first and the last. */
const PUBLISH_EVERY_MS = 250;

/** Progress events of one batch: the first and the last always, in between at most one per 250 ms. */
export class IngestProgress {
  private last = 0;
  private readonly event: IngestProgressEvent;

  constructor(
    private readonly pubSub: PostgresPubSub,
    batchId: string,
    siteId: string,
    objectsTotal: number,
  ) {
    this.event = { batchId, siteId, kind: 'DICOM', status: 'RUNNING', objectsTotal, objectsDone: 0, rejected: 0, bytes: 0, at: '' };
  }

  async update(change: Partial<IngestProgressEvent>, force = false): Promise<void> {
    Object.assign(this.event, change);
    if (!force && Date.now() - this.last < PUBLISH_EVERY_MS) return;
    this.last = Date.now();
    await this.pubSub.publish(INGEST_PROGRESS, this.event.siteId, { ...this.event, at: new Date().toISOString() }).catch(() => undefined);
  }
}
