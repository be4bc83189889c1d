import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Statistics (issue 4): model versions (ONNX or external) and their per-grade predictions per joint x modality x feature. */

export class AddPredictions1795770976082 implements MigrationInterface {
  name = 'AddPredictions1795770976082';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "model_version" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "name" character varying(100) NOT NULL, "version" character varying(50) NOT NULL, "description" text, "sha256" character(64), "manifest" jsonb, "registered_by_token_id" uuid, CONSTRAINT "UQ_1cd9facd41af75f2df9e3771979" UNIQUE ("name", "version"), CONSTRAINT "PK_1213bca4e8ee7ac1323cc4bf454" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "prediction" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "model_version_id" uuid NOT NULL, "joint_id" uuid NOT NULL, "modality" "public"."modality" NOT NULL, "feature" character varying(48) NOT NULL, "probabilities" double precision array NOT NULL, "predicted_grade" smallint NOT NULL, CONSTRAINT "UQ_84efc4e6296b00d2505d01b06f2" UNIQUE ("model_version_id", "joint_id", "modality", "feature"), CONSTRAINT "PK_23df2ceecea9f8bbb996ff056a3" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_4e3be67c70403f7a9aed060fd1" ON "prediction"  ("joint_id") `);
    await queryRunner.query(
      `ALTER TABLE "prediction" ADD CONSTRAINT "FK_a904b7c2341dba76a38469e2f19" FOREIGN KEY ("model_version_id") REFERENCES "model_version"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "prediction" ADD CONSTRAINT "FK_4e3be67c70403f7a9aed060fd11" FOREIGN KEY ("joint_id") REFERENCES "joint"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "prediction" DROP CONSTRAINT "FK_4e3be67c70403f7a9aed060fd11"`);
    await queryRunner.query(`ALTER TABLE "prediction" DROP CONSTRAINT "FK_a904b7c2341dba76a38469e2f19"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_4e3be67c70403f7a9aed060fd1"`);
    await queryRunner.query(`DROP TABLE "prediction"`);
    await queryRunner.query(`DROP TABLE "model_version"`);
  }
}
