import { ErrorCode } from '../domain';
import { AppError } from './app-error';

/**
 * Seconds a client is told to wait (`Retry-After`) when the database is unavailable. A PostgreSQL restart takes
 * 1-5 s, and the LISTEN connection retries within about that (pubsub/listen-connection.ts).
 */
export const RETRY_AFTER_SECONDS = 5;

/** Socket errors of a connection that could not be made or broke (the server is down, restarting or unreachable). */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * SQLSTATEs that mean "not now" rather than "not this": admin_shutdown, crash_shutdown, cannot_connect_now
 * (starting up or shutting down), too_many_connections, and the whole connection_exception class (08).
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** node-postgres and pg-pool raise these without a code when a connection ends or cannot be had in time. */
const DRIVER_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /^Client has encountered a connection error and is not queryable/,
  /^Client was closed and is not queryable/,
  /^Query read timeout/,
];

/** The error and what it wraps: TypeORM's driverError, GraphQL's originalError, `cause`, an AggregateError's errors. */
function* chain(error: unknown, depth = 0): Generator<Record<string, unknown>> {
  if (depth > 8 || typeof error !== 'object' || error === null) return;
  const e = error as Record<string, unknown>;
  yield e;
  for (const inner of [e.driverError, e.originalError, e.cause]) if (inner && inner !== error) yield* chain(inner, depth + 1);
  if (Array.isArray(e.errors)) for (const inner of e.errors) yield* chain(inner, depth + 1);
}

/**
 * Why `error` means the database is unavailable (restarting, refusing connections, out of connections,
 * unreachable) rather than that this request is wrong: the SQLSTATE or socket code, or the driver's words for a
 * connection that ended; null for any other error. The one place that decides it: the HTTP and GraphQL edges
 * answer such a failure with SERVICE_UNAVAILABLE (503, Retry-After), workers wait and carry on, and logs name
 * the cause by this code alone.
 */
export function unavailableCause(error: unknown): string | null {
  for (const e of chain(error)) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (SOCKET_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return code;
    // A FATAL error ends the backend: the connection is gone whatever the cause (e.g. 55000 "database is not
    // currently accepting connections", 3D000 a database dropped under us, 28P01 a password changed).
    if (e.severity === 'FATAL' || e.severity === 'PANIC') return code || 'FATAL';
    const message = typeof e.message === 'string' ? e.message : '';
    const known = DRIVER_MESSAGES.find((pattern) => pattern.test(message));
    if (known) return known.source.slice(1).toLowerCase();
  }
  return null;
}

export const isDatabaseUnavailable = (error: unknown): boolean => unavailableCause(error) !== null;

/** The error a client sees while the database is unavailable: no driver text, a code and when to retry. */
export const serviceUnavailable = (): AppError =>
  new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'The database is unavailable; retry shortly', { retryAfterSeconds: RETRY_AFTER_SECONDS });
