import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Tokens may expire; the audit log keeps a client's own request id beside the server's. */
export class TokenExpiryAndClientRequestId1796300000000 implements MigrationInterface {
  name = 'TokenExpiryAndClientRequestId1796300000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "api_token" ADD "expires_at" TIMESTAMP WITH TIME ZONE`);
    await queryRunner.query(`ALTER TABLE "audit_event" ADD "client_request_id" character varying(64)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "audit_event" DROP COLUMN "client_request_id"`);
    await queryRunner.query(`ALTER TABLE "api_token" DROP COLUMN "expires_at"`);
  }
}
