import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The node side of the federation: the inbox of tasks from the hub and the node's release policy (one row). */
export class AddFederationInbox1797200000000 implements MigrationInterface {
  name = 'AddFederationInbox1797200000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TYPE "public"."federation_inbox_state" AS ENUM('RECEIVED', 'COMPUTING', 'HELD', 'RELEASED', 'REFUSED', 'FAILED', 'SUBMITTED')`,
    );
    await queryRunner.query(
      `CREATE TABLE "federation_inbox_task" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "task_id" character varying(200) NOT NULL, "task_envelope" jsonb NOT NULL, "task_sha256" character(64) NOT NULL, "kind" character varying(32) NOT NULL, "state" "public"."federation_inbox_state" NOT NULL, "reason" character varying(64), "detail" text, "provenance" jsonb, "held_aggregate" jsonb, "held_aggregate_sha256" character(64), "decided_by" character varying(300), "result_payload" jsonb, "result_payload_sha256" character(64), "receipt" jsonb, "delivery_attempts" integer NOT NULL DEFAULT '0', CONSTRAINT "PK_federation_inbox_task" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_3b6c55d2ad2769483a9c0cec18" ON "federation_inbox_task" ("task_id") `);
    await queryRunner.query(`CREATE INDEX "IDX_e819a9325ffe2ec40cfd14c70c" ON "federation_inbox_task" ("state") `);
    await queryRunner.query(
      `CREATE TABLE "federation_release_policy" ("id" smallint NOT NULL, "policy" jsonb NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "CHK_87c19c32bc60740924eb8339ea" CHECK ("id" = 1), CONSTRAINT "PK_federation_release_policy" PRIMARY KEY ("id"))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "federation_release_policy"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_e819a9325ffe2ec40cfd14c70c"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_3b6c55d2ad2769483a9c0cec18"`);
    await queryRunner.query(`DROP TABLE "federation_inbox_task"`);
    await queryRunner.query(`DROP TYPE "public"."federation_inbox_state"`);
  }
}
