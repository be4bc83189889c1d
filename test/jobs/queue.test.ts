import { JobQueue } from '../../server/queue/job-queue';
import { createTestDatabase } from '../helpers/test-db';
import { filePassed } from '../helpers/lifecycle';
import { startTestNode, type TestNode } from '../helpers/test-node';

const QUEUE = 'queue-test';
/** This file's own catalogue: the adapter is the node's, the queue is not. */
interface TestCatalogue {
  [QUEUE]: { id: string };
  'a-queue': object;
  'b-queue': object;
  'c-queue': object;
  'd-queue': object;
}

describe(JobQueue.name, () => {
  let node: TestNode;
  let queue: JobQueue<TestCatalogue>;

  beforeAll(async () => {
    node = await startTestNode();
    queue = new JobQueue<TestCatalogue>(node.database.url, { supervise: false });
    await queue.start([QUEUE]);
  });
  afterAll(async () => {
    await queue.stop();
    await node.close(filePassed());
  });

  it('sends a job only when the transaction that sent it commits', async () => {
    await expect(
      node.services.db.transaction({}, async (tx) => {
        await queue.send(tx, QUEUE, { id: 'rolled-back' });
        throw new Error('mutation failed');
      }),
    ).rejects.toThrow('mutation failed');
    expect(await queue.countJobs(QUEUE)).toBe(0);

    await node.services.db.transaction({}, (tx) => queue.send(tx, QUEUE, { id: 'committed' }));
    expect(await queue.countJobs(QUEUE)).toBe(1);
  });

  it('rejects a send outside a transaction', async () => {
    await expect(queue.send({}, QUEUE, { id: 'loose' })).rejects.toThrow(/open transaction/);
  });

  it('delivers the committed job to a worker', async () => {
    const received = new Promise<unknown>((resolve) => {
      void queue.work(QUEUE, async (data) => resolve(data));
    });
    await expect(received).resolves.toEqual({ id: 'committed' });
  });

  it('starts the queues of many processes together on one empty database (a deadlock victim retries)', async () => {
    for (let round = 0; round < 3; round++) {
      const database = await createTestDatabase();
      const queues = Array.from({ length: 6 }, () => new JobQueue<TestCatalogue>(database.url, { supervise: false }));
      try {
        await Promise.all(queues.map((q) => q.start(['a-queue', 'b-queue', 'c-queue', 'd-queue'])));
        expect(await queues[0].countJobs('d-queue')).toBe(0);
      } finally {
        await Promise.all(queues.map((q) => q.stop()));
      }
      await database.drop();
    }
  });
});
