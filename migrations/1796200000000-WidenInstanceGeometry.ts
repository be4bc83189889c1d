import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Bits Allocated and Samples per Pixel are US values (0 to 65535, PS3.5 Table 6.2-1); smallint holds only up to
 * 32767, so a valid value such as 40000 could not be recorded. integer holds every US value.
 */
export class WidenInstanceGeometry1796200000000 implements MigrationInterface {
  name = 'WidenInstanceGeometry1796200000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "instance" ALTER COLUMN "bits_allocated" TYPE integer`);
    await queryRunner.query(`ALTER TABLE "instance" ALTER COLUMN "samples_per_pixel" TYPE integer`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // Fails, and changes nothing, while a row holds a value above 32767: narrowing must not alter recorded data.
    await queryRunner.query(`ALTER TABLE "instance" ALTER COLUMN "samples_per_pixel" TYPE smallint`);
    await queryRunner.query(`ALTER TABLE "instance" ALTER COLUMN "bits_allocated" TYPE smallint`);
  }
}
