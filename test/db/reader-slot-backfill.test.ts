import { createDataSource } from '../../server/db/data-source';
import { runMigrations } from '../../server/db/migrate';
import { filePassed } from '../helpers/lifecycle';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db';

const MIGRATION = 'AddReaderSlotsAndReferenceImports1796600000000';

describe('the reader-slot migration', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    if (filePassed()) await database.drop();
  });

  it('backfills existing readers: per site (and among central readers) the first two READERs by registration become FIRST and SECOND', async () => {
    const ds = createDataSource(database.url, { poolSize: 2 });
    await ds.initialize();
    try {
      // Back to the schema before the migration (undoing any later ones first), with readers as they were then.
      while ((await ds.query(`SELECT count(*)::int AS n FROM migrations WHERE name = $1`, [MIGRATION]))[0].n > 0) {
        await ds.undoLastMigration({ transaction: 'each' });
      }
      await ds.query(`INSERT INTO site (code, name) VALUES ('A', 'a'), ('B', 'b')`);
      await ds.query(`
        INSERT INTO reader (code, role, years_of_experience, site_id, created_at)
        SELECT code, role::reader_role, 5, (SELECT id FROM site WHERE site.code = v.site), timestamptz '2026-01-01' + make_interval(secs => v.at)
        FROM (VALUES ('A-LATE', 'READER', 'A', 30), ('A-EARLY', 'READER', 'A', 10), ('A-THIRD', 'READER', 'A', 40), ('A-SEN', 'SENIOR', 'A', 0),
                     ('A-ADJ', 'ADJUDICATOR', 'A', 1), ('B-ONLY', 'READER', 'B', 50), ('C-2', 'READER', NULL, 20), ('C-1b', 'READER', NULL, 10),
                     ('C-1a', 'READER', NULL, 10)) AS v(code, role, site, at)`);
      expect(await runMigrations(ds)).toContain(MIGRATION);
      const slots = await ds.query(`SELECT code, slot FROM reader ORDER BY code`);
      expect(Object.fromEntries(slots.map((r: { code: string; slot: string | null }) => [r.code, r.slot]))).toEqual({
        'A-EARLY': 'FIRST',
        'A-LATE': 'SECOND',
        'A-THIRD': null,
        'A-SEN': null,
        'A-ADJ': null,
        'B-ONLY': 'FIRST',
        // Registered in the same instant: the code decides.
        'C-1a': 'FIRST',
        'C-1b': 'SECOND',
        'C-2': null,
      });
    } finally {
      await ds.destroy();
    }
  });

  it('down() removes only its own ReferenceSource values and the imported grades, keeping the workflow’s', async () => {
    const ds = createDataSource(database.url, { poolSize: 2 });
    await ds.initialize();
    try {
      const types = async () =>
        (await ds.query(`SELECT unnest(enum_range(NULL::reference_source))::text AS v`)).map((r: { v: string }) => r.v as string).sort();
      expect(await types()).toEqual(expect.arrayContaining(['ADJUDICATION', 'AGREEMENT', 'CONSENSUS_PANEL', 'EXTERNAL_READ']));
      const [patient] = await ds.query(
        `INSERT INTO patient (site_id, pseudonym, date_shift_days) SELECT id, 'A-P1', -400 FROM site WHERE code = 'A' RETURNING id`,
      );
      const [joint] = await ds.query(`INSERT INTO joint (patient_id, level, side) VALUES ($1, 'L4_L5', 'LEFT') RETURNING id`, [patient.id]);
      const [file] = await ds.query(
        `INSERT INTO reference_import (sha256, rows, created, replaced, sources, imported_by) VALUES (repeat('a', 64), 1, 1, 0, '{CONSENSUS_PANEL}', 'test') RETURNING id`,
      );
      await ds.query(
        `INSERT INTO reference_grade (joint_id, modality, feature, grade, not_assessable, source, import_id) VALUES
         ($1, 'CT', 'OSTEOPHYTES', 2, false, 'AGREEMENT', NULL), ($1, 'CT', 'EROSION', 1, false, 'CONSENSUS_PANEL', $2)`,
        [joint.id, file.id],
      );
      while ((await ds.query(`SELECT count(*)::int AS n FROM migrations WHERE name = $1`, [MIGRATION]))[0].n > 0) {
        await ds.undoLastMigration({ transaction: 'each' });
      }
      const after = await types();
      expect(after).toContain('AGREEMENT');
      expect(after).toContain('ADJUDICATION');
      expect(after).not.toContain('CONSENSUS_PANEL');
      expect(after).not.toContain('EXTERNAL_READ');
      expect(await ds.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'reader' AND column_name = 'slot'`)).toEqual([]);
      expect(await ds.query(`SELECT feature, source::text FROM reference_grade`)).toEqual([{ feature: 'OSTEOPHYTES', source: 'AGREEMENT' }]);
      await runMigrations(ds);
      expect((await ds.driver.createSchemaBuilder().log()).upQueries).toEqual([]);
    } finally {
      await ds.destroy();
    }
  });
});
