import { useTestNode } from '../helpers/lifecycle';
import { withTestTopics } from '../helpers/test-topics';

/** Next event of `events`, or null after `ms`. */
async function nextWithin<T>(iterator: AsyncIterator<T>, ms: number): Promise<T | null> {
  const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), ms));
  const next = iterator.next().then((r) => (r.done ? null : r.value));
  return Promise.race([next, timeout]);
}

describe('PostgreSQL LISTEN/NOTIFY pub/sub', () => {
  const node = useTestNode();
  const pubSub = () => withTestTopics(node().services.pubSub);

  it('listens from subscribe on: an event published before the first read is not lost', async () => {
    const events = pubSub().subscribe('TEST', 'early')[Symbol.asyncIterator]();
    await pubSub().publish('TEST', 'early', { n: 1 });
    await new Promise((r) => setTimeout(r, 200)); // delivered while nobody is reading
    expect(await nextWithin(events, 2000)).toEqual({ n: 1 });
    await events.return?.();
  });

  it('sends a NOTIFY given inside a transaction at its commit, and none on rollback', async () => {
    const events = pubSub().subscribe('TEST', 'tx')[Symbol.asyncIterator]();
    await node()
      .dataSource.transaction(async (manager) => {
        await pubSub().publish('TEST', 'tx', { n: 'rolled back' }, manager);
        throw new Error('roll back');
      })
      .catch(() => undefined);
    await node().dataSource.transaction(async (manager) => {
      await pubSub().publish('TEST', 'tx', { n: 'committed' }, manager);
    });
    expect(await nextWithin(events, 2000)).toEqual({ n: 'committed' });
    await events.return?.();
  });

  it('reopens its LISTEN connection when PostgreSQL drops it, and delivers again', async () => {
    const lost: string[] = [];
    pubSub().onListenerLost = (error) => lost.push(error.message);
    const events = pubSub().subscribe('TEST', 'after-drop')[Symbol.asyncIterator]();
    const [{ n }] = await node().dataSource.query(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = 'facet-listen' AND datname = current_database()`,
    );
    expect(n).toBe(1);
    // Publish until the reopened connection hears it (one pending read takes the first delivery).
    let received: unknown = null;
    const first = events.next().then((r) => (received = r.value));
    for (const deadline = Date.now() + 15_000; received === null && Date.now() < deadline;) {
      await pubSub().publish('TEST', 'after-drop', { n: 'again' });
      await new Promise((r) => setTimeout(r, 250));
    }
    await Promise.race([first, new Promise((r) => setTimeout(r, 100))]);
    expect(received).toEqual({ n: 'again' });
    expect(lost.length).toBeGreaterThanOrEqual(1);
    await events.return?.();
  });
});
