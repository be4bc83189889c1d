import type { DataSource } from 'typeorm';

/** Any fixed number: the advisory lock that lets one of several starting servers migrate at a time. */
const MIGRATION_LOCK = 7_146_318;

/** Runs pending migrations, each in its own transaction, under an advisory lock (servers may start together). */
export async function runMigrations(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await runner.release();
  }
}
