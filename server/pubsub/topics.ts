import { randomUUID } from 'node:crypto';

/**
 * The topic catalogue: every pub/sub topic of the node, spelled once here, with the payload its events carry and
 * what its topic id is. `PostgresPubSub.publish` and `subscribe` are typed by it, so a publisher and its
 * subscribers agree on the payload. A payload travels in a NOTIFY (PostgreSQL caps one at 8000 bytes): ids and
 * small counters only.
 */

/** An inference job changed (status, counters). Topic id: the job id. */
export const JOB_PROGRESS = 'JOB_PROGRESS';
/** A DICOM batch into a site progressed. Topic id: the site id. */
export const INGEST_PROGRESS = 'INGEST_PROGRESS';
/** An API token was revoked, so every server ends what it opened. Topic id: the token id. */
export const TOKEN_REVOKED = 'TOKEN_REVOKED';

/**
 * Only the job and an id of this event: subscribers re-read the row, and every subscriber that one NOTIFY woke
 * shares one read (keyed by `event`), while a later NOTIFY never gets a read that may predate its commit.
 */
export interface JobProgressEvent {
  jobId: string;
  event: string;
}

/** A running or finished DICOM batch, as dashboards see it (published per site, a few times a second at most). */
export interface IngestProgressEvent {
  batchId: string;
  siteId: string;
  kind: 'DICOM';
  status: 'RUNNING' | 'STORED' | 'REJECTED' | 'FAILED';
  objectsTotal: number;
  objectsDone: number;
  rejected: number;
  bytes: number;
  at: string;
}

export interface TokenRevokedEvent {
  tokenId: string;
}

/** A federation hub queued a task for a site: its pending long-poll claim wakes. Topic id: the site's registry code. */
export const FEDERATION_TASK_QUEUED = 'FEDERATION_TASK_QUEUED';

export interface FederationTaskQueuedEvent {
  taskId: string;
}

/** A federated query's answer changed (a result, the deadline, a cancellation). Topic id: the task id. */
export const FEDERATED_QUERY_CHANGED = 'FEDERATED_QUERY_CHANGED';

export interface FederatedQueryChangedEvent {
  taskId: string;
}

export interface TopicCatalogue {
  [JOB_PROGRESS]: JobProgressEvent;
  [INGEST_PROGRESS]: IngestProgressEvent;
  [TOKEN_REVOKED]: TokenRevokedEvent;
  [FEDERATION_TASK_QUEUED]: FederationTaskQueuedEvent;
  [FEDERATED_QUERY_CHANGED]: FederatedQueryChangedEvent;
}

export type Topic = keyof TopicCatalogue & string;

/** The payload of a NOTIFY on JOB_PROGRESS that says `jobId` changed. */
export const jobProgressEvent = (jobId: string): JobProgressEvent => ({ jobId, event: randomUUID() });
