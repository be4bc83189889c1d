import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { Client } from 'pg';

/**
 * The migrated template every test file clones, one per checkout (named by a hash of its path): two checkouts
 * testing at once on one PostgreSQL would otherwise drop each other's template mid-run.
 */
export const TEMPLATE_DATABASE = `facet_template_${createHash('sha256').update(path.resolve(__dirname, '../..')).digest('hex').slice(0, 10)}`;

/** The server tests run against: TEST_DATABASE_URL, default the local PostgreSQL of the CI machine. */
const BASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function databaseUrl(name: string): string {
  const url = new URL(BASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export const adminUrl = (): string => databaseUrl(new URL(BASE_URL).pathname.slice(1) || 'postgres');

export interface TestDatabase {
  name: string;
  url: string;
  /** Drops the database; call only when the file passed, so a failing one stays for inspection. */
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A database of its own for one test file, cloned from the migrated template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `facet_t_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}`));
  return { name, url: databaseUrl(name), drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined) };
}

/** A database with nothing in it, not even the migrations (what an operator gives a node the first time). */
export async function createEmptyDatabase(): Promise<TestDatabase> {
  const name = `facet_e_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE template0`));
  return { name, url: databaseUrl(name), drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined) };
}
