import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The ReferenceSource values this migration adds; down() removes exactly these, whatever others exist by then. */
const IMPORTED_SOURCES = ['CONSENSUS_PANEL', 'EXTERNAL_READ'];

/**
 * Reader slots (reader 1 and reader 2 of a site) and reference-standard files established elsewhere.
 *
 * Backfill: in each site (and among the central readers), the READER-role readers in the order they were
 * registered (created_at, then code) become FIRST and SECOND; a third and later reader gets no slot, nor do
 * adjudicators and the senior group. Registration order is the only order the data holds that does not depend on
 * random ids; a coordinator corrects a wrong guess with setReaderSlot.
 */
export class AddReaderSlotsAndReferenceImports1796600000000 implements MigrationInterface {
  name = 'AddReaderSlotsAndReferenceImports1796600000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TYPE "public"."reader_slot" AS ENUM('FIRST', 'SECOND')`);
    await queryRunner.query(`ALTER TABLE "reader" ADD "slot" "public"."reader_slot"`);
    await queryRunner.query(`
      UPDATE "reader" r SET "slot" = (CASE o.n WHEN 1 THEN 'FIRST' ELSE 'SECOND' END)::"public"."reader_slot"
      FROM (SELECT "id", row_number() OVER (PARTITION BY "site_id" ORDER BY "created_at", "code") AS n FROM "reader" WHERE "role" = 'READER') o
      WHERE r."id" = o."id" AND o.n <= 2`);
    await queryRunner.query(`CREATE UNIQUE INDEX "UQ_reader_site_slot" ON "reader" ("site_id", "slot") WHERE "slot" IS NOT NULL`);
    await queryRunner.query(`CREATE UNIQUE INDEX "UQ_reader_central_slot" ON "reader" ("slot") WHERE "site_id" IS NULL AND "slot" IS NOT NULL`);

    for (const value of IMPORTED_SOURCES) await queryRunner.query(`ALTER TYPE "public"."reference_source" ADD VALUE IF NOT EXISTS '${value}'`);
    await queryRunner.query(
      `CREATE TABLE "reference_import" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "sha256" character(64) NOT NULL, "rows" integer NOT NULL, "created" integer NOT NULL, "replaced" integer NOT NULL, "sources" "public"."reference_source" array NOT NULL, "imported_by_token_id" uuid, "imported_by" character varying(100) NOT NULL, CONSTRAINT "PK_1637ae89ea9c7a1fdfc2dbd2ade" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_2647fd0dd87d8a1dd933b70bf3" ON "reference_import" ("sha256")`);
    await queryRunner.query(`ALTER TABLE "reference_grade" ADD "import_id" uuid`);
    await queryRunner.query(`CREATE INDEX "IDX_9b78c7fb9d118289566e97a714" ON "reference_grade" ("import_id")`);
    await queryRunner.query(
      `ALTER TABLE "reference_grade" ADD CONSTRAINT "FK_9b78c7fb9d118289566e97a7140" FOREIGN KEY ("import_id") REFERENCES "reference_import"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // Imported grades cannot outlive the values of their source.
    await queryRunner.query(`DELETE FROM "reference_grade" WHERE "import_id" IS NOT NULL OR "source"::text = ANY($1)`, [IMPORTED_SOURCES]);
    await queryRunner.query(`ALTER TABLE "reference_grade" DROP CONSTRAINT "FK_9b78c7fb9d118289566e97a7140"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_9b78c7fb9d118289566e97a714"`);
    await queryRunner.query(`ALTER TABLE "reference_grade" DROP COLUMN "import_id"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_2647fd0dd87d8a1dd933b70bf3"`);
    await queryRunner.query(`DROP TABLE "reference_import"`);
    // Postgres cannot drop an enum value: rebuild the type from the values it holds now, less this migration's, and
    // move every column of that type over (other migrations may have added values or columns since).
    const values: Array<{ v: string }> = await queryRunner.query(`SELECT unnest(enum_range(NULL::"public"."reference_source"))::text AS v`);
    const kept = values.map((r) => r.v).filter((v) => !IMPORTED_SOURCES.includes(v));
    const columns: Array<{ table: string; column: string }> = await queryRunner.query(
      `SELECT table_name AS "table", column_name AS "column" FROM information_schema.columns WHERE table_schema = 'public' AND udt_name = 'reference_source'`,
    );
    await queryRunner.query(`CREATE TYPE "public"."reference_source_old" AS ENUM(${kept.map((v) => `'${v}'`).join(', ')})`);
    for (const { table, column } of columns) {
      await queryRunner.query(
        `ALTER TABLE "${table}" ALTER COLUMN "${column}" TYPE "public"."reference_source_old" USING "${column}"::text::"public"."reference_source_old"`,
      );
    }
    await queryRunner.query(`DROP TYPE "public"."reference_source"`);
    await queryRunner.query(`ALTER TYPE "public"."reference_source_old" RENAME TO "reference_source"`);

    await queryRunner.query(`DROP INDEX "public"."UQ_reader_central_slot"`);
    await queryRunner.query(`DROP INDEX "public"."UQ_reader_site_slot"`);
    await queryRunner.query(`ALTER TABLE "reader" DROP COLUMN "slot"`);
    await queryRunner.query(`DROP TYPE "public"."reader_slot"`);
  }
}
