import type { Db } from '../../db/transaction';
import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { JOB_PROGRESS, jobProgressEvent } from '../../pubsub/topics';
import type { RequestContext } from '../request-context';

/** NOTIFY of a job's change on JOB_PROGRESS; with `tx`, sent when that transaction commits (and not if it rolls back). */
export function announceJobProgress(db: Db, pubSub: PostgresPubSub, jobId: string, tx?: RequestContext): Promise<void> {
  return pubSub.publish(JOB_PROGRESS, jobId, jobProgressEvent(jobId), tx ? db.manager(tx) : undefined);
}
