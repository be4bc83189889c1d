import 'reflect-metadata';
import { Client } from 'pg';
import { createDataSource } from '../../server/db/data-source';
import { runMigrations } from '../../server/db/migrate';
import { TEMPLATE_DATABASE, adminUrl, databaseUrl } from '../helpers/test-db';

/** Migrates this checkout's `facet_template_<hash>` once; every test file clones it (CREATE DATABASE … TEMPLATE), which takes ~100 ms. */
export default async function globalSetup(): Promise<void> {
  const admin = new Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`UPDATE pg_database SET datistemplate = false WHERE datname = '${TEMPLATE_DATABASE}'`);
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const dataSource = createDataSource(databaseUrl(TEMPLATE_DATABASE));
  await dataSource.initialize();
  try {
    await runMigrations(dataSource);
  } finally {
    await dataSource.destroy();
  }
  const marker = new Client({ connectionString: adminUrl() });
  await marker.connect();
  try {
    await marker.query(`ALTER DATABASE ${TEMPLATE_DATABASE} WITH IS_TEMPLATE true`);
  } finally {
    await marker.end();
  }
}
