import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Hub tasks of the later kinds (AUC, agreement, their hub-started parts) and the link from a part to its query. */
export class AddFederatedRounds1798000000000 implements MigrationInterface {
  name = 'AddFederatedRounds1798000000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    for (const kind of ['AUC', 'AGREEMENT', 'PLACEMENT_SUMS', 'BOOTSTRAP_SUMS']) {
      await queryRunner.query(`ALTER TYPE "public"."federated_query_kind" ADD VALUE IF NOT EXISTS '${kind}'`);
    }
    // Set only by the hub when it chains a part to a query (federated-rounds.ts), never by a request.
    await queryRunner.query(`ALTER TABLE "federation_task" ADD "parent_task_id" uuid`);
    await queryRunner.query(`CREATE INDEX "IDX_03ecefbaaf45afc0cb2eebbd32" ON "federation_task" ("parent_task_id") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DELETE FROM "federation_task" WHERE "kind" IN ('AUC', 'AGREEMENT', 'PLACEMENT_SUMS', 'BOOTSTRAP_SUMS')`);
    await queryRunner.query(`DROP INDEX "public"."IDX_03ecefbaaf45afc0cb2eebbd32"`);
    await queryRunner.query(`ALTER TABLE "federation_task" DROP COLUMN "parent_task_id"`);
    // PostgreSQL cannot drop an enum value: the type is recreated without the later kinds.
    await queryRunner.query(`ALTER TYPE "public"."federated_query_kind" RENAME TO "federated_query_kind_old"`);
    await queryRunner.query(`CREATE TYPE "public"."federated_query_kind" AS ENUM('STUDY_FLOW', 'BINARY_COUNTS')`);
    await queryRunner.query(
      `ALTER TABLE "federation_task" ALTER COLUMN "kind" TYPE "public"."federated_query_kind" USING "kind"::text::"public"."federated_query_kind"`,
    );
    await queryRunner.query(`DROP TYPE "public"."federated_query_kind_old"`);
  }
}
