import { getMetadataStorage } from 'type-graphql';
// Registers every resolver's metadata.
import '../../server/graphql/schema';

describe('subscriptions', () => {
  it('stream from a service through subscribe: (GraphQLContext.streams), none through type-graphql topics', () => {
    const subscriptions = getMetadataStorage().subscriptions;
    expect(subscriptions.length).toBeGreaterThanOrEqual(3);
    const byTopics = subscriptions.filter((s) => s.topics !== undefined || s.subscribe === undefined).map((s) => s.methodName);
    expect(byTopics).toEqual([]);
  });
});
