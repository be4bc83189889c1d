import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A revised reference grade says so: source REVISED, who revised it, when, and the value (and source) it replaced.
 * The enum value is added, not the type rebuilt, so other migrations that add values to `reference_source` commute
 * with this one.
 */
export class AddReferenceRevision1796400000000 implements MigrationInterface {
  name = 'AddReferenceRevision1796400000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TYPE "public"."reference_source" ADD VALUE IF NOT EXISTS 'REVISED'`);
    await queryRunner.query(`ALTER TABLE "reference_grade" ADD "revised_by_id" uuid`);
    await queryRunner.query(`ALTER TABLE "reference_grade" ADD "revised_at" TIMESTAMP WITH TIME ZONE`);
    await queryRunner.query(`ALTER TABLE "reference_grade" ADD "previous_grade" smallint`);
    await queryRunner.query(`ALTER TABLE "reference_grade" ADD "previous_not_assessable" boolean`);
    await queryRunner.query(`ALTER TABLE "reference_grade" ADD "previous_source" "public"."reference_source"`);
    await queryRunner.query(
      `ALTER TABLE "reference_grade" ADD CONSTRAINT "CHK_bcd5eb0f62f2a78e80a6c8d8df" CHECK (("previous_grade" IS NULL OR "previous_grade" >= 0) AND ("previous_not_assessable" IS NULL OR ("previous_grade" IS NULL) = "previous_not_assessable"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "reference_grade" ADD CONSTRAINT "CHK_f40aa18678564b71adb899e172" CHECK ("source"::text <> 'REVISED' OR ("revised_by_id" IS NOT NULL AND "revised_at" IS NOT NULL AND "previous_source" IS NOT NULL))`,
    );
    await queryRunner.query(
      `ALTER TABLE "reference_grade" ADD CONSTRAINT "FK_ed5c920ba2e79ff16f46136e21b" FOREIGN KEY ("revised_by_id") REFERENCES "reader"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "reference_grade" DROP CONSTRAINT "FK_ed5c920ba2e79ff16f46136e21b"`);
    await queryRunner.query(`ALTER TABLE "reference_grade" DROP CONSTRAINT "CHK_f40aa18678564b71adb899e172"`);
    await queryRunner.query(`ALTER TABLE "reference_grade" DROP CONSTRAINT "CHK_bcd5eb0f62f2a78e80a6c8d8df"`);
    await queryRunner.query(`ALTER TABLE "reference_grade" DROP COLUMN "previous_source"`);
    await queryRunner.query(`ALTER TABLE "reference_grade" DROP COLUMN "previous_not_assessable"`);
    await queryRunner.query(`ALTER TABLE "reference_grade" DROP COLUMN "previous_grade"`);
    await queryRunner.query(`ALTER TABLE "reference_grade" DROP COLUMN "revised_at"`);
    await queryRunner.query(`ALTER TABLE "reference_grade" DROP COLUMN "revised_by_id"`);
    // A revision was an experienced reader's decision: the closest source without REVISED is ADJUDICATION.
    await queryRunner.query(`UPDATE "reference_grade" SET "source" = 'ADJUDICATION' WHERE "source"::text = 'REVISED'`);
    // Postgres cannot drop an enum value: rebuild the type with every other value it has now (including any that
    // later migrations added), in their order.
    const rows: Array<{ label: string }> = await queryRunner.query(
      `SELECT enumlabel AS label FROM pg_enum WHERE enumtypid = '"public"."reference_source"'::regtype AND enumlabel <> 'REVISED' ORDER BY enumsortorder`,
    );
    const labels = rows.map((r) => `'${r.label.replace(/'/g, "''")}'`).join(', ');
    await queryRunner.query(`CREATE TYPE "public"."reference_source_old" AS ENUM(${labels})`);
    await queryRunner.query(
      `ALTER TABLE "reference_grade" ALTER COLUMN "source" TYPE "public"."reference_source_old" USING "source"::"text"::"public"."reference_source_old"`,
    );
    await queryRunner.query(`DROP TYPE "public"."reference_source"`);
    await queryRunner.query(`ALTER TYPE "public"."reference_source_old" RENAME TO "reference_source"`);
  }
}
