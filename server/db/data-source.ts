import 'reflect-metadata';
import { DataSource, type Logger } from 'typeorm';
import { ENTITIES } from '../entities';
import { MIGRATIONS } from '../../migrations';
import { DatabaseLogger } from './database-logger';
import { SnakeNamingStrategy } from './naming-strategy';

/**
 * The only way the application builds a DataSource: entities, migrations and naming in one place. Logging goes
 * through DatabaseLogger (no SQL parameters in the logs) unless the caller passes its own logger.
 */
export function createDataSource(url: string, options: { poolSize?: number; applicationName?: string; logger?: Logger } = {}): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    namingStrategy: new SnakeNamingStrategy(),
    uuidExtension: 'pgcrypto',
    synchronize: false,
    logging: true,
    logger: options.logger ?? new DatabaseLogger(),
    extra: { max: options.poolSize ?? 10, application_name: options.applicationName ?? 'facet' },
  });
}

/**
 * For the TypeORM CLI only (`npm run migration:generate -- migrations/<Name>`): it loads this compiled file
 * and needs a DataSource export. The application never uses this instance.
 */
export const cliDataSource = createDataSource(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/facet');
