import { createDataSource } from '../../server/db/data-source';
import { runMigrations } from '../../server/db/migrate';
import { WEISHAUPT_FEATURES } from '../../server/domain';
import { filePassed } from '../helpers/lifecycle';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db';

describe('migrations', () => {
  let database: TestDatabase;
  const dataSource = () => createDataSource(database.url, { poolSize: 2 });

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    if (filePassed()) await database.drop();
  });

  it('create exactly the schema the entities describe (the schema diff is empty)', async () => {
    const ds = dataSource();
    await ds.initialize();
    try {
      const diff = await ds.driver.createSchemaBuilder().log();
      expect(diff.upQueries.map((q) => q.query)).toEqual([]);
    } finally {
      await ds.destroy();
    }
  });

  it('ship the Weishaupt grading scheme as data', async () => {
    const ds = dataSource();
    await ds.initialize();
    try {
      const rows: Array<{ code: string; grades: Array<{ grade: number }> }> = await ds.query('SELECT code, grades FROM grading_feature ORDER BY position');
      expect(rows.map((r) => r.code)).toEqual(WEISHAUPT_FEATURES.map((f) => f.code));
      expect(rows.map((r) => r.grades.length)).toEqual([2, 4, 4, 3, 2]);
    } finally {
      await ds.destroy();
    }
  });

  it('revert with down() to an empty schema and apply again', async () => {
    const ds = dataSource();
    await ds.initialize();
    try {
      while ((await ds.query('SELECT count(*)::int AS n FROM migrations'))[0].n > 0) await ds.undoLastMigration({ transaction: 'each' });
      const tables: Array<{ tablename: string }> = await ds.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'migrations'`);
      expect(tables).toEqual([]);
      const types: unknown[] = await ds.query(
        `SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' AND t.typtype = 'e'`,
      );
      expect(types).toEqual([]);
      expect((await runMigrations(ds)).length).toBeGreaterThan(0);
      expect((await ds.driver.createSchemaBuilder().log()).upQueries).toEqual([]);
    } finally {
      await ds.destroy();
    }
  });

  it('are a no-op when run again (and safe when two nodes start at once)', async () => {
    const [a, b] = [dataSource(), dataSource()];
    await Promise.all([a.initialize(), b.initialize()]);
    try {
      expect(await Promise.all([runMigrations(a), runMigrations(b)])).toEqual([[], []]);
    } finally {
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });
});
