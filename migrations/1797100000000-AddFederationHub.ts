import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The federation hub's tables: tasks and their per-site states, received results (immutable: a trigger refuses any
 * UPDATE, so a stored signed result and its receipt stay exactly as they were), accepted nonces of the replay guard,
 * and each member's last claim.
 */
export class AddFederationHub1797100000000 implements MigrationInterface {
  name = 'AddFederationHub1797100000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "federation_nonce" ("key_id" character varying(64) NOT NULL, "nonce" character varying(128) NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_da975f0d389bd85e29ceb11c342" PRIMARY KEY ("key_id", "nonce"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_944e43cfd6ea22a412b7ae6fd4" ON "federation_nonce"  ("expires_at") `);
    await queryRunner.query(
      `CREATE TABLE "federation_result" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "site_task_id" uuid NOT NULL, "task_id" uuid NOT NULL, "site" character varying(32) NOT NULL, "state" character varying(16) NOT NULL, "envelope" jsonb NOT NULL, "envelope_sha256" character(64) NOT NULL, "payload_sha256" character(64) NOT NULL, "aggregate_sha256" character(64) NOT NULL, "receipt" jsonb NOT NULL, CONSTRAINT "PK_1fbe41606dc8f2b2a48a5323170" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_ccd766fc9233029ce97930b6d1" ON "federation_result"  ("site_task_id") `);
    await queryRunner.query(`CREATE INDEX "IDX_a24505cf299acd7a331d1ca7d7" ON "federation_result"  ("task_id") `);
    await queryRunner.query(
      `CREATE TABLE "federation_site_contact" ("site" character varying(32) NOT NULL, "last_claim_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_83907d9792cc55c0985f8540382" PRIMARY KEY ("site"))`,
    );
    await queryRunner.query(`CREATE TYPE "public"."federated_query_kind" AS ENUM('STUDY_FLOW', 'BINARY_COUNTS')`);
    await queryRunner.query(`CREATE TYPE "public"."federated_query_status" AS ENUM('RUNNING', 'COMPLETE', 'PARTIAL', 'INSUFFICIENT', 'CANCELLED')`);
    await queryRunner.query(
      `CREATE TABLE "federation_task" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "kind" "public"."federated_query_kind" NOT NULL, "query" jsonb NOT NULL, "query_sha256" character(64) NOT NULL, "requested_by_token_id" uuid, "requested_by" character varying(200) NOT NULL, "min_sites" integer NOT NULL, "deadline" TIMESTAMP WITH TIME ZONE NOT NULL, "status" "public"."federated_query_status" NOT NULL DEFAULT 'RUNNING', "revision" integer NOT NULL DEFAULT '1', CONSTRAINT "PK_a9f924a8119cc2d0b3367982b03" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_d0053c71eb51627052e2d14702" ON "federation_task"  ("status") `);
    await queryRunner.query(`CREATE TYPE "public"."federation_site_task_state" AS ENUM('QUEUED', 'CLAIMED', 'SUCCEEDED', 'REFUSED', 'FAILED', 'EXPIRED')`);
    await queryRunner.query(
      `CREATE TABLE "federation_site_task" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "task_id" uuid NOT NULL, "site" character varying(32) NOT NULL, "state" "public"."federation_site_task_state" NOT NULL DEFAULT 'QUEUED', "payload" jsonb NOT NULL, "task_sha256" character(64) NOT NULL, "claimed_at" TIMESTAMP WITH TIME ZONE, "lease_until" TIMESTAMP WITH TIME ZONE, "settled_at" TIMESTAMP WITH TIME ZONE, "late" boolean NOT NULL DEFAULT false, "reason" character varying(200), "cancel_delivered" boolean NOT NULL DEFAULT false, CONSTRAINT "UQ_8c0c8e717b432ebbf1297449ad5" UNIQUE ("task_id", "site"), CONSTRAINT "PK_6458683ec0d517bd51997bc75bf" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_ef696c1ce3a3e0ed26b1dbfc7a" ON "federation_site_task"  ("site", "state") `);
    await queryRunner.query(
      `ALTER TABLE "federation_site_task" ADD CONSTRAINT "FK_db169c51a43dd8e6d6de935be6f" FOREIGN KEY ("task_id") REFERENCES "federation_task"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `CREATE FUNCTION "federation_result_immutable"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'federation_result rows are immutable'; END $$`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "federation_result_immutable" BEFORE UPDATE ON "federation_result" FOR EACH ROW EXECUTE FUNCTION "federation_result_immutable"()`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "federation_result_immutable" ON "federation_result"`);
    await queryRunner.query(`DROP FUNCTION "federation_result_immutable"()`);
    await queryRunner.query(`ALTER TABLE "federation_site_task" DROP CONSTRAINT "FK_db169c51a43dd8e6d6de935be6f"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_ef696c1ce3a3e0ed26b1dbfc7a"`);
    await queryRunner.query(`DROP TABLE "federation_site_task"`);
    await queryRunner.query(`DROP TYPE "public"."federation_site_task_state"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_d0053c71eb51627052e2d14702"`);
    await queryRunner.query(`DROP TABLE "federation_task"`);
    await queryRunner.query(`DROP TYPE "public"."federated_query_status"`);
    await queryRunner.query(`DROP TYPE "public"."federated_query_kind"`);
    await queryRunner.query(`DROP TABLE "federation_site_contact"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_a24505cf299acd7a331d1ca7d7"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_ccd766fc9233029ce97930b6d1"`);
    await queryRunner.query(`DROP TABLE "federation_result"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_944e43cfd6ea22a412b7ae6fd4"`);
    await queryRunner.query(`DROP TABLE "federation_nonce"`);
  }
}
