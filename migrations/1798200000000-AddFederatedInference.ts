import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Federated inference: the INFERENCE task kind at a hub, the hub's latest progress report per site and task, and a
 * node's record of each federated inference task (the model it registered, its job, what it last reported).
 */
export class AddFederatedInference1798200000000 implements MigrationInterface {
  name = 'AddFederatedInference1798200000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "federated_inference_progress" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "task_id" uuid NOT NULL, "site" character varying(64) NOT NULL, "sequence" integer NOT NULL, "phase" character varying(16) NOT NULL, "total" integer NOT NULL, "done" integer NOT NULL, "failed" integer NOT NULL, "elapsed_seconds" double precision NOT NULL, "execution_provider" character varying(32), "payload_sha256" character(64) NOT NULL, CONSTRAINT "UQ_38be2b194b93e055646df2bff42" UNIQUE ("task_id", "site"), CONSTRAINT "PK_2281cae5691bad198f010ac4e45" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "federated_inference_run" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "inbox_task_id" uuid NOT NULL, "model_sha256" character(64) NOT NULL, "model_version_id" uuid, "inference_job_id" uuid, "sequence" integer NOT NULL DEFAULT '0', "reported" jsonb, "closed" boolean NOT NULL DEFAULT false, CONSTRAINT "PK_63248efa00bf0379678b4ae4dff" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_04da3b7e700f56a75cf0244de4" ON "federated_inference_run" ("inbox_task_id") `);
    await queryRunner.query(`CREATE INDEX "IDX_3925ade5570ea0744a042b6de8" ON "federated_inference_run" ("inference_job_id") `);
    await queryRunner.query(`ALTER TYPE "public"."federated_query_kind" ADD VALUE 'INFERENCE'`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // The kind goes with its tasks (their site-tasks follow by cascade, their stored results first).
    await queryRunner.query(`DELETE FROM "federation_result" WHERE "task_id" IN (SELECT "id" FROM "federation_task" WHERE "kind"::text = 'INFERENCE')`);
    await queryRunner.query(`DELETE FROM "federation_task" WHERE "kind"::text = 'INFERENCE'`);
    // Every other value as it stands (a later migration may have added kinds), in its order: only INFERENCE goes.
    const kept: Array<{ label: string }> = await queryRunner.query(
      `SELECT e.enumlabel AS label FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
        WHERE t.typname = 'federated_query_kind' AND e.enumlabel <> 'INFERENCE' ORDER BY e.enumsortorder`,
    );
    const labels = kept.map((k) => `'${k.label.replace(/'/g, "''")}'`).join(', ');
    await queryRunner.query(`CREATE TYPE "public"."federated_query_kind_old" AS ENUM(${labels})`);
    await queryRunner.query(
      `ALTER TABLE "federation_task" ALTER COLUMN "kind" TYPE "public"."federated_query_kind_old" USING "kind"::"text"::"public"."federated_query_kind_old"`,
    );
    await queryRunner.query(`DROP TYPE "public"."federated_query_kind"`);
    await queryRunner.query(`ALTER TYPE "public"."federated_query_kind_old" RENAME TO "federated_query_kind"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_3925ade5570ea0744a042b6de8"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_04da3b7e700f56a75cf0244de4"`);
    await queryRunner.query(`DROP TABLE "federated_inference_run"`);
    await queryRunner.query(`DROP TABLE "federated_inference_progress"`);
  }
}
