import type { Logger } from 'typeorm';

/** Where the database logger writes: one JSON line per call, like the node's log (server/http/log.ts). */
export type LogSink = (level: 'warn' | 'error', message: string, fields: Record<string, unknown>) => void;

const stderrSink: LogSink = (level, message, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
};

/**
 * TypeORM's logger for every DataSource. A failed query is logged by its SQLSTATE and constraint only: TypeORM's
 * own loggers print the SQL with its parameters, and the parameters are user input (names, codes, manifest
 * cells), and PostgreSQL's message and detail quote values too. Successful queries and schema chatter are not
 * logged; TypeORM's warnings (a pool error, a missing extension) are.
 */
export class DatabaseLogger implements Logger {
  constructor(private readonly sink: LogSink = stderrSink) {}

  logQueryError(error: string | Error): void {
    const { code, constraint, table, column } = (typeof error === 'object' ? ((error as { driverError?: object }).driverError ?? error) : {}) as Record<
      string,
      unknown
    >;
    this.sink('warn', 'query failed', { code: typeof code === 'string' ? code : 'unknown', constraint, table, column });
  }

  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    if (level === 'warn') this.sink('warn', 'database warning', { detail: String(message).slice(0, 500) });
  }

  logQuery(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
}
