import { Client } from 'pg';
import { ACTIVE_JOB_STATUSES, isActiveJob, JobStatus } from '../../server/domain';
import { filePassed } from '../helpers/lifecycle';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db';

describe('the inference job vocabulary (server/domain)', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    if (filePassed()) await database.drop();
  });

  it('names exactly the statuses of the job_status type the migrations made', async () => {
    const client = new Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ status: string }>(`SELECT unnest(enum_range(NULL::job_status))::text AS status`);
      expect(rows.map((r) => r.status).sort()).toEqual(Object.values(JobStatus).sort());
    } finally {
      await client.end();
    }
  });

  it('calls QUEUED and RUNNING active (a worker may run them, a cancel may end them), and no other status', () => {
    expect(Object.values(JobStatus).filter(isActiveJob)).toEqual([JobStatus.QUEUED, JobStatus.RUNNING]);
    expect(ACTIVE_JOB_STATUSES).toEqual([JobStatus.QUEUED, JobStatus.RUNNING]);
  });
});
