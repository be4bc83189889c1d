import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The node's record of the patient populations behind the groups it released, for its differencing guard. */
export class AddReleasedPopulations1797300000000 implements MigrationInterface {
  name = 'AddReleasedPopulations1797300000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "federation_released_population" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "inbox_task_id" uuid NOT NULL, "patients" uuid array NOT NULL, CONSTRAINT "PK_federation_released_population" PRIMARY KEY ("id"))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "federation_released_population"`);
  }
}
