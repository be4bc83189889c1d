import type { Db } from '../db/transaction';
import { NO_TRANSACTION } from '../db/transaction';
import type { Role } from '../domain';

/** One audit_event row as the writer inserts it (the id chosen by the caller, so it is known before the insert). */
export interface AuditRow {
  id: string;
  actorTokenId: string | null;
  actorRole: Role | null;
  action: string;
  entityType: string;
  entityId: string | null;
  siteId: string | null;
  requestId: string;
  clientRequestId: string | null;
  details: Record<string, unknown>;
}

/** Rows per INSERT: 10 parameters a row stays far below PostgreSQL's 65,535 bind parameters. */
const MAX_ROWS_PER_INSERT = 1000;
const COLUMNS = ['id', 'actor_token_id', 'actor_role', 'action', 'entity_type', 'entity_id', 'site_id', 'request_id', 'client_request_id', 'details'];

interface Waiting {
  rows: AuditRow[];
  done: (error: Error | null) => void;
}

/**
 * Group commit of audit rows written outside a transaction (the reads a GraphQL request made): rows handed in while
 * an INSERT is on its way are queued and go together in the next one, so under load many requests share one
 * statement and one WAL flush, and an idle server still writes each request's rows at once. `write` settles only
 * when its rows are committed (or failed), so a caller that answers after it never acknowledges a read whose audit
 * row could be lost in a crash.
 */
export class AuditBatchWriter {
  private queue: Waiting[] = [];
  private flushing = false;

  constructor(private readonly db: Db) {}

  write(rows: AuditRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ rows, done: (error) => (error ? reject(error) : resolve()) });
      if (!this.flushing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.insert(batch.flatMap((w) => w.rows));
          for (const w of batch) w.done(null);
        } catch (error) {
          for (const w of batch) w.done(error as Error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** One statement per MAX_ROWS_PER_INSERT rows; several run in one transaction, so a batch lands whole or not at all. */
  private async insert(rows: AuditRow[]): Promise<void> {
    const statements: { sql: string; params: unknown[] }[] = [];
    for (let start = 0; start < rows.length; start += MAX_ROWS_PER_INSERT) {
      const chunk = rows.slice(start, start + MAX_ROWS_PER_INSERT);
      const params: unknown[] = [];
      const tuples = chunk.map((r) => {
        const base = params.length;
        params.push(r.id, r.actorTokenId, r.actorRole, r.action, r.entityType, r.entityId, r.siteId, r.requestId, r.clientRequestId, JSON.stringify(r.details));
        return `(${COLUMNS.map((_, i) => `$${base + i + 1}`).join(', ')})`;
      });
      statements.push({ sql: `INSERT INTO audit_event (${COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`, params });
    }
    if (statements.length === 1) {
      await this.db.query(NO_TRANSACTION, statements[0].sql, statements[0].params);
      return;
    }
    await this.db.transaction(NO_TRANSACTION, async (tx) => {
      for (const s of statements) await this.db.query(tx, s.sql, s.params);
    });
  }
}
