import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Inference jobs resume exactly (issue 5): the cursor of the last work item accounted for, and the lease of the
 * run that may write (a run whose lease was taken over by a retry stops at its next batch). A cancel now ends the
 * job at once and clears its lease, so the separate cancel request flag goes.
 */
export class AddJobLeases1795860000000 implements MigrationInterface {
  name = 'AddJobLeases1795860000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "inference_job" ADD "cursor" character varying(160)`);
    await queryRunner.query(`ALTER TABLE "inference_job" ADD "lease_id" uuid`);
    await queryRunner.query(`ALTER TABLE "inference_job" ADD "worker" character varying(128)`);
    await queryRunner.query(`ALTER TABLE "inference_job" ADD "attempts" integer NOT NULL DEFAULT '0'`);
    await queryRunner.query(`ALTER TABLE "inference_job" DROP COLUMN "cancel_requested"`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "inference_job" ADD "cancel_requested" boolean NOT NULL DEFAULT false`);
    await queryRunner.query(`ALTER TABLE "inference_job" DROP COLUMN "attempts"`);
    await queryRunner.query(`ALTER TABLE "inference_job" DROP COLUMN "worker"`);
    await queryRunner.query(`ALTER TABLE "inference_job" DROP COLUMN "lease_id"`);
    await queryRunner.query(`ALTER TABLE "inference_job" DROP COLUMN "cursor"`);
  }
}
