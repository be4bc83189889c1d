import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Inference (issue 5): inference jobs with their status, counts and failures. */

export class AddInferenceJobs1795774455756 implements MigrationInterface {
  name = 'AddInferenceJobs1795774455756';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TYPE "public"."job_status" AS ENUM('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')`);
    await queryRunner.query(
      `CREATE TABLE "inference_job" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "model_version_id" uuid NOT NULL, "scope" jsonb NOT NULL, "status" "public"."job_status" NOT NULL DEFAULT 'QUEUED', "total" integer NOT NULL DEFAULT '0', "done" integer NOT NULL DEFAULT '0', "failed" integer NOT NULL DEFAULT '0', "failures" jsonb NOT NULL DEFAULT '[]', "provider" character varying(32), "cancel_requested" boolean NOT NULL DEFAULT false, "error" text, "requested_by_token_id" uuid, "started_at" TIMESTAMP WITH TIME ZONE, "finished_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_51d26d75eaae8b0bbd6842a90d7" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_2357fc9d00cbb6f68dfa3cf12f" ON "inference_job"  ("model_version_id") `);
    await queryRunner.query(`CREATE INDEX "IDX_b4d144c9a25c1464fc8b0e675f" ON "inference_job"  ("status") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."IDX_b4d144c9a25c1464fc8b0e675f"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_2357fc9d00cbb6f68dfa3cf12f"`);
    await queryRunner.query(`DROP TABLE "inference_job"`);
    await queryRunner.query(`DROP TYPE "public"."job_status"`);
  }
}
