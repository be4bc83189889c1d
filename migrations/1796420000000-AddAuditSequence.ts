import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A total order of audit events for paging newest first: events of one transaction share `created_at`, so a
 * bigserial orders them. Existing events are numbered by (created_at, id), the best order they have.
 */
export class AddAuditSequence1796420000000 implements MigrationInterface {
  name = 'AddAuditSequence1796420000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // Fills 1..n in physical order and leaves the sequence at n; the renumbering below keeps the same set of values.
    await queryRunner.query(`ALTER TABLE "audit_event" ADD "seq" BIGSERIAL NOT NULL`);
    await queryRunner.query(
      `UPDATE "audit_event" e SET "seq" = o.n FROM (SELECT "id", row_number() OVER (ORDER BY "created_at", "id") AS n FROM "audit_event") o WHERE o."id" = e."id"`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_53300da00860bdf4dc3ef7daae" ON "audit_event"  ("seq") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."IDX_53300da00860bdf4dc3ef7daae"`);
    await queryRunner.query(`ALTER TABLE "audit_event" DROP COLUMN "seq"`);
  }
}
