import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Secure summation over the transport: the hub's round per task and the sites' signed answers in it; the node's share
 * of each secure task (kept until the round asks) and its secure-sum ledger.
 */
export class AddSecureRounds1798100000000 implements MigrationInterface {
  name = 'AddSecureRounds1798100000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "federation_secure_answer" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "task_id" uuid NOT NULL, "round_id" character varying(80) NOT NULL, "site" character varying(32) NOT NULL, "step" character varying(16) NOT NULL, "envelope" jsonb NOT NULL, CONSTRAINT "PK_a580099ab909f34cd6f1652d8eb" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_d1678025bf674c2f11829d3589" ON "federation_secure_answer"  ("task_id")`);
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_b1ae2832cdee7bcc6f96abf680" ON "federation_secure_answer"  ("round_id", "site", "step")`);
    await queryRunner.query(
      `CREATE TABLE "federation_secure_ledger_entry" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "round_id" character varying(300) NOT NULL, "task_id" character varying(200) NOT NULL, "fingerprint" character(64) NOT NULL, "participants" character varying(32) array NOT NULL, "seed" text, "masked_sha256" character(64), "masked" text, "revealed_seed" text, "state" character varying(16) NOT NULL, CONSTRAINT "PK_16090ab3a3b9f8f79053831c3cf" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_83180d9b6f8a2fee22c28f3f32" ON "federation_secure_ledger_entry"  ("round_id")`);
    await queryRunner.query(`CREATE INDEX "IDX_6b8d68d33c760f7429f60db7f7" ON "federation_secure_ledger_entry"  ("fingerprint")`);
    await queryRunner.query(
      `CREATE TABLE "federation_secure_round" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "task_id" uuid NOT NULL, "kind" character varying(32) NOT NULL, "attempt" integer NOT NULL, "round_id" character varying(80) NOT NULL, "participants" character varying(32) array NOT NULL, "keys" jsonb NOT NULL, "lengths" jsonb NOT NULL, "phase" character varying(24) NOT NULL, "failure" character varying(32), "restarts" jsonb NOT NULL, "deadline" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_94bc67d85d76f305b85ead968c4" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_255379a3dc01c96386841d0c8c" ON "federation_secure_round"  ("task_id")`);
    await queryRunner.query(
      `CREATE TABLE "federation_secure_share" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "task_id" character varying(200) NOT NULL, "kind" character varying(32) NOT NULL, "fingerprint" character(64) NOT NULL, "declaration" jsonb NOT NULL, "share" jsonb NOT NULL, CONSTRAINT "PK_7255f4a3d224a6d3b6031c89c83" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_6cda7fc31c2f26a5615e282d10" ON "federation_secure_share"  ("task_id")`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."IDX_6cda7fc31c2f26a5615e282d10"`);
    await queryRunner.query(`DROP TABLE "federation_secure_share"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_255379a3dc01c96386841d0c8c"`);
    await queryRunner.query(`DROP TABLE "federation_secure_round"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_6b8d68d33c760f7429f60db7f7"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_83180d9b6f8a2fee22c28f3f32"`);
    await queryRunner.query(`DROP TABLE "federation_secure_ledger_entry"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_b1ae2832cdee7bcc6f96abf680"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_d1678025bf674c2f11829d3589"`);
    await queryRunner.query(`DROP TABLE "federation_secure_answer"`);
  }
}
