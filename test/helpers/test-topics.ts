import type { PostgresPubSub } from '../../server/pubsub/postgres-pubsub';

/** A topic of the tests' own, which no part of the node listens to; its payloads are whatever a test sends. */
export type TestTopics = { TEST: unknown };

/** The node's pub/sub (the same LISTEN connection and channel), typed for TEST events. */
export const withTestTopics = (pubSub: PostgresPubSub): PostgresPubSub<TestTopics> => pubSub as PostgresPubSub<object> as PostgresPubSub<TestTopics>;
