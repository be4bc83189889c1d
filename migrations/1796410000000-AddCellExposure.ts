import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Which reader has seen which cell's grades (not their own), first when and through which audited read. */
export class AddCellExposure1796410000000 implements MigrationInterface {
  name = 'AddCellExposure1796410000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "cell_exposure" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "reader_id" uuid NOT NULL, "joint_id" uuid NOT NULL, "modality" "public"."modality" NOT NULL, "feature" character varying(48) NOT NULL, "audit_event_id" uuid NOT NULL, CONSTRAINT "UQ_600506f331eab9b67475260f477" UNIQUE ("reader_id", "joint_id", "modality", "feature"), CONSTRAINT "PK_23a3b3ef47d12a30f3eccc5c099" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "cell_exposure" ADD CONSTRAINT "FK_ab2ad4a8ceaba6d9506f5e001ca" FOREIGN KEY ("reader_id") REFERENCES "reader"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "cell_exposure" ADD CONSTRAINT "FK_c950a976c3f13ae872a062b9fb0" FOREIGN KEY ("joint_id") REFERENCES "joint"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "cell_exposure" ADD CONSTRAINT "FK_c0a2f6f4ed5cb5310ffa61ac774" FOREIGN KEY ("audit_event_id") REFERENCES "audit_event"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "cell_exposure" DROP CONSTRAINT "FK_c0a2f6f4ed5cb5310ffa61ac774"`);
    await queryRunner.query(`ALTER TABLE "cell_exposure" DROP CONSTRAINT "FK_c950a976c3f13ae872a062b9fb0"`);
    await queryRunner.query(`ALTER TABLE "cell_exposure" DROP CONSTRAINT "FK_ab2ad4a8ceaba6d9506f5e001ca"`);
    await queryRunner.query(`DROP TABLE "cell_exposure"`);
  }
}
