import os from 'node:os';
import { DataSource } from 'typeorm';
import { loadConfig } from '../../server/config/config';
import type { HasManager } from '../../server/db/transaction';
import { jobHandlers } from '../../server/jobs/job-registry';
import { DEAD_LETTER_QUEUES, INFERENCE_FAILED, JOB_NAMES, QUEUE_POLICY, RUN_INFERENCE, type JobName } from '../../server/queue/job-catalogue';
import type { JobQueue } from '../../server/queue/job-queue';
import { createServices } from '../../server/services';
import { filesSpelling } from '../helpers/source-literals';

/**
 * Never called: `npm run typecheck` compiles it, and each @ts-expect-error must meet a type error there. So a
 * payload of the wrong shape, or a queue outside the catalogue, is refused by the compiler.
 */
function sendIsTypedByTheCatalogue(queue: JobQueue, tx: HasManager): void {
  void queue.send(tx, RUN_INFERENCE, { inferenceJobId: 'a job id' });
  void queue.send(tx, INFERENCE_FAILED, { inferenceJobId: 'a job id' });
  // @ts-expect-error a payload of another shape
  void queue.send(tx, RUN_INFERENCE, { jobId: 'a job id' });
  // @ts-expect-error a payload missing its id
  void queue.send(tx, RUN_INFERENCE, {});
  // @ts-expect-error a queue outside the catalogue
  void queue.send(tx, 'run-inferences', { inferenceJobId: 'a job id' });
  // @ts-expect-error a handler for a payload of another shape
  void queue.work(RUN_INFERENCE, async (data: { jobId: string }) => data.jobId);
}
void sendIsTypedByTheCatalogue;

describe('the job catalogue', () => {
  it('has one handler per queue, and no handler without a queue', () => {
    // Services built over an unconnected DataSource: handlers are only constructed here, never run.
    const services = createServices(new DataSource({ type: 'postgres' }), { objectRoot: os.tmpdir() });
    expect(Object.keys(jobHandlers(services)).sort()).toEqual([...JOB_NAMES].sort());
  });

  it('creates each dead-letter queue before the queue that names it', () => {
    for (const [queue, deadLetter] of Object.entries(DEAD_LETTER_QUEUES) as Array<[JobName, JobName]>) {
      expect(JOB_NAMES).toContain(deadLetter);
      expect(JOB_NAMES.indexOf(deadLetter)).toBeLessThan(JOB_NAMES.indexOf(queue));
    }
  });

  it.each(JOB_NAMES)('spells the queue name %s once in server/, in the catalogue', (name) => {
    expect(filesSpelling(name)).toEqual(['server/queue/job-catalogue.ts']);
  });

  it('takes the environment defaults of the queue from its policy', () => {
    const config = loadConfig({});
    expect({ expire: config.jobExpireSeconds, retries: config.jobRetryLimit, maintenance: config.queueMaintenanceSeconds }).toEqual({
      expire: QUEUE_POLICY.expireInSeconds,
      retries: QUEUE_POLICY.retryLimit,
      maintenance: QUEUE_POLICY.maintenanceIntervalSeconds,
    });
  });
});
