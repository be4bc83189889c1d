/**
 * One-line JSON logs on stderr. Callers pass ids and codes, never PHI; errors are reduced to name, message and
 * stack (no request bodies, no headers), and a database error to its SQLSTATE, constraint, table and column:
 * PostgreSQL's messages quote the offending value (`invalid input syntax for type uuid: "…"`), which is user input.
 */
function serialise(value: unknown): unknown {
  if (!isErrorLike(value)) return value;
  const cause = databaseError(value);
  if (cause) {
    const { code, constraint, table, column, routine } = cause;
    // The stack's first line repeats the message; its frames are kept.
    const frames = value.stack?.split('\n').filter((line) => /^\s+at /.test(line));
    return { name: 'DatabaseError', code, constraint, table, column, routine, stack: frames?.join('\n') };
  }
  const { code } = value as { code?: unknown };
  return { name: value.name ?? 'Error', ...(typeof code === 'string' ? { code } : {}), message: value.message, stack: value.stack };
}

/** An Error, or an error spread into a plain object (pg-boss reports worker errors as `{ ...error, message, stack }`). */
function isErrorLike(value: unknown): value is Error {
  if (value instanceof Error) return true;
  const v = value as { message?: unknown; stack?: unknown } | null;
  return typeof v === 'object' && v !== null && typeof v.message === 'string' && typeof v.stack === 'string';
}

interface DatabaseErrorLike {
  name: string;
  code: string;
  constraint?: string;
  table?: string;
  column?: string;
  routine?: string;
}

/**
 * The PostgreSQL error in `error` or what it wraps (GraphQL's originalError, TypeORM's driverError): an error
 * with a five-character SQLSTATE and a severity, as node-postgres raises them.
 */
function databaseError(error: unknown, depth = 0): DatabaseErrorLike | null {
  if (depth > 5 || typeof error !== 'object' || error === null) return null;
  const e = error as Record<string, unknown>;
  if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string') return e as unknown as DatabaseErrorLike;
  return databaseError(e.driverError, depth + 1) ?? databaseError(e.originalError, depth + 1) ?? databaseError(e.cause, depth + 1);
}

function write(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  const entry = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, serialise(v)]));
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...entry })}\n`);
}

export const log = {
  info: (message: string, fields?: Record<string, unknown>) => write('info', message, fields),
  warn: (message: string, fields?: Record<string, unknown>) => write('warn', message, fields),
  error: (message: string, fields?: Record<string, unknown>) => write('error', message, fields),
};
