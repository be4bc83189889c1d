import type { PostgresPubSub } from '../../server/pubsub/postgres-pubsub';
import { INGEST_PROGRESS, JOB_PROGRESS, jobProgressEvent, TOKEN_REVOKED, type IngestProgressEvent, type TopicCatalogue } from '../../server/pubsub/topics';
import { filesSpelling } from '../helpers/source-literals';

/**
 * Never called: `npm run typecheck` compiles it, and each @ts-expect-error must meet a type error there. So a
 * publisher and the subscribers of a topic agree on its payload.
 */
function publishAndSubscribeAreTypedByTheCatalogue(pubSub: PostgresPubSub): void {
  void pubSub.publish(JOB_PROGRESS, 'a job id', jobProgressEvent('a job id'));
  void pubSub.publish(TOKEN_REVOKED, 'a token id', { tokenId: 'a token id' });
  // @ts-expect-error a payload of another topic
  void pubSub.publish(JOB_PROGRESS, 'a job id', { tokenId: 'a token id' });
  // @ts-expect-error a payload missing a field
  void pubSub.publish(TOKEN_REVOKED, 'a token id', {});
  // @ts-expect-error a topic outside the catalogue
  void pubSub.publish('JOB_PROGRES', 'a job id', jobProgressEvent('a job id'));
  const events: AsyncIterable<IngestProgressEvent> = pubSub.subscribe(INGEST_PROGRESS, 'a site id');
  // @ts-expect-error a topic's events are its payloads, not another's
  const wrong: AsyncIterable<IngestProgressEvent> = pubSub.subscribeAll(TOKEN_REVOKED);
  void [events, wrong];
}
void publishAndSubscribeAreTypedByTheCatalogue;

const TOPICS = [JOB_PROGRESS, INGEST_PROGRESS, TOKEN_REVOKED] satisfies Array<keyof TopicCatalogue>;

describe('the topic catalogue', () => {
  it.each(TOPICS)('spells the topic %s once in server/, in the catalogue', (topic) => {
    expect(filesSpelling(topic)).toEqual(['server/pubsub/topics.ts']);
  });

  it('gives each job progress event an id of its own (subscribers share one read per event)', () => {
    const events = Array.from({ length: 100 }, () => jobProgressEvent('a job id'));
    expect(new Set(events.map((e) => e.event)).size).toBe(100);
    expect(events.every((e) => e.jobId === 'a job id')).toBe(true);
  });
});
