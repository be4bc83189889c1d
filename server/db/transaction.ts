import {
  type DataSource,
  type EntityManager,
  type QueryRunner,
  type EntityTarget,
  type FindOptionsWhere,
  type ObjectLiteral,
  QueryFailedError,
  type Repository,
} from 'typeorm';
import { ErrorCode } from '../domain';
import { AppError, notFound } from '../errors/app-error';

/** What the data layer needs of a request: the transaction it may already have open. */
export interface HasManager {
  manager?: EntityManager;
}

/**
 * The context of work that joins no request's transaction: a cache shared by requests (a rolled-back request must
 * not take the node key with it), clean-up after a rollback, authentication before a request has a context.
 */
export const NO_TRANSACTION: HasManager = Object.freeze({});

const PG_UNIQUE_VIOLATION = '23505';
const PG_FOREIGN_KEY_VIOLATION = '23503';
const PG_CHECK_VIOLATION = '23514';

/**
 * Repositories and transactions bound to a request context. Services get repositories only here, so a
 * method called inside another's transaction joins it instead of opening a second one.
 */
export class Db {
  constructor(private readonly dataSource: DataSource) {}

  manager(ctx: HasManager): EntityManager {
    return ctx.manager ?? this.dataSource.manager;
  }

  /** This process's connection pool (node-postgres's Pool under TypeORM's driver): open, idle, and clients waiting for one. */
  poolUse(): { total: number; idle: number; waiting: number } {
    const pool = (this.dataSource.driver as unknown as { master?: { totalCount: number; idleCount: number; waitingCount: number } }).master;
    return { total: pool?.totalCount ?? 0, idle: pool?.idleCount ?? 0, waiting: pool?.waitingCount ?? 0 };
  }

  repo<T extends ObjectLiteral>(ctx: HasManager, entity: EntityTarget<T>): Repository<T> {
    return this.manager(ctx).getRepository(entity);
  }

  /**
   * Rows of raw SQL through the context's transaction (or the pool), for what the query builder cannot say
   * (advisory locks, `= ANY($1)` over an array, set-returning functions). Values go in `params` as $1, $2…, never
   * into `sql`.
   */
  async query<T extends ObjectLiteral>(ctx: HasManager, sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.manager(ctx).query(sql, [...params]);
  }

  /**
   * The row of `entity` with this id (and `where`, e.g. a site scope), read through the context's transaction, or
   * NOT_FOUND naming the entity: a row outside the caller's scope is as absent as a missing one.
   */
  async getEntityOrThrow<T extends ObjectLiteral & { id: string }>(
    ctx: HasManager,
    entity: EntityTarget<T> & { name: string },
    id: string,
    where: FindOptionsWhere<T> = {},
  ): Promise<T> {
    return foundOrThrow(await this.repo(ctx, entity).findOneBy({ ...where, id } as FindOptionsWhere<T>), entity.name, id);
  }

  /**
   * A connection of its own, outside every transaction, for session-level state that must outlive one statement
   * (a session advisory lock held while a loop runs). The caller connects and releases it.
   */
  sessionConnection(): QueryRunner {
    return this.dataSource.createQueryRunner();
  }

  /** Runs `fn` in the context's open transaction, or in a new one; constraint violations become typed errors. */
  async transaction<C extends HasManager, T>(ctx: C, fn: (tx: C) => Promise<T>): Promise<T> {
    if (ctx.manager?.queryRunner?.isTransactionActive) return fn(ctx);
    try {
      return await this.dataSource.transaction((manager) => fn({ ...ctx, manager }));
    } catch (error) {
      throw translateConstraintError(error);
    }
  }
}

/** `value`, or NOT_FOUND naming the entity and id: for rows read by a query of the service's own (a scoped join). */
export function foundOrThrow<T>(value: T | null | undefined, entity: string, id: string): T {
  if (value === null || value === undefined) throw notFound(entity, id);
  return value;
}

/** A race that slips past a service's own checks still reaches the client as CONFLICT or BAD_USER_INPUT. */
export function translateConstraintError(error: unknown): unknown {
  if (!(error instanceof QueryFailedError)) return error;
  const code = (error.driverError as { code?: string } | undefined)?.code;
  const constraint = (error.driverError as { constraint?: string } | undefined)?.constraint;
  if (code === PG_UNIQUE_VIOLATION) return new AppError(ErrorCode.CONFLICT, 'The record already exists', { constraint });
  if (code === PG_FOREIGN_KEY_VIOLATION) return new AppError(ErrorCode.BAD_USER_INPUT, 'A referenced record does not exist', { constraint });
  if (code === PG_CHECK_VIOLATION) return new AppError(ErrorCode.BAD_USER_INPUT, 'A value is outside its allowed range', { constraint });
  return error;
}
