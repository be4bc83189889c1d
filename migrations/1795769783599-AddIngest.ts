import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Ingest (issue 3): the node's secrets (the UID/ID hashing key), and per patient the keyed hash of the hospital
 * patient ID and the de-identification date shift. Existing patients get a random shift of 1-10 years back.
 */

export class AddIngest1795769783599 implements MigrationInterface {
  name = 'AddIngest1795769783599';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "node_secret" ("name" character varying(64) NOT NULL, "value" bytea NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_8a997e6fea5b0b722acb695c4e6" PRIMARY KEY ("name"))`,
    );
    await queryRunner.query(`ALTER TABLE "patient" ADD "patient_key" character(64)`);
    await queryRunner.query(`ALTER TABLE "patient" ADD "date_shift_days" integer`);
    await queryRunner.query(`UPDATE "patient" SET "date_shift_days" = -(365 + floor(random() * 3286))::int`);
    await queryRunner.query(`ALTER TABLE "patient" ALTER COLUMN "date_shift_days" SET NOT NULL`);
    await queryRunner.query(`ALTER TABLE "patient" ADD CONSTRAINT "UQ_58e46b96a6502db736a236122ef" UNIQUE ("site_id", "patient_key")`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "patient" DROP CONSTRAINT "UQ_58e46b96a6502db736a236122ef"`);
    await queryRunner.query(`ALTER TABLE "patient" DROP COLUMN "date_shift_days"`);
    await queryRunner.query(`ALTER TABLE "patient" DROP COLUMN "patient_key"`);
    await queryRunner.query(`DROP TABLE "node_secret"`);
  }
}
