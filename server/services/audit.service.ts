import { randomUUID } from 'node:crypto';
import type { Db } from '../db/transaction';
import { Role, type PageRequest } from '../domain';
import { AuditEvent } from '../entities';
import { AppError } from '../errors/app-error';
import type { AuditBatchWriter, AuditRow } from './audit-writer';
import { isUuid } from './ids';
import { paginateNewestFirst, type Page } from './pagination';
import { requireActor, requireRole, type RequestContext } from './request-context';

export interface AuditEntry {
  action: string;
  entityType: string;
  entityId?: string | null;
  siteId?: string | null;
  /** Ids, counts and codes only: never names, identifiers or free text that could hold PHI. */
  details?: Record<string, unknown>;
}

/** How a read ended: `OK`, or the code it was refused with (NOT_FOUND, FORBIDDEN, READER_BLINDED…). */
export type ReadOutcome = 'OK' | string;

/**
 * The audit rows of one request's reads, held until the request answers: `AuditService.flushDeferred` writes them
 * (with other requests' rows, through the batch writer) before the answer leaves the server.
 */
export interface DeferredAudit {
  rows: AuditRow[];
}

/**
 * Writes the audit log in the caller's transaction, so an audited change and its audit row land together. Outside
 * a transaction, a context that carries a `DeferredAudit` (a GraphQL request) collects its rows instead, and the
 * server writes them in one group-committed INSERT before it answers: an answered read always has its row, a request
 * costs one audit statement however many fields it read, and concurrent requests share it.
 */
export class AuditService {
  constructor(
    private readonly db: Db,
    private readonly writer: AuditBatchWriter,
  ) {}

  /** Returns the new event's id (an exposure of grades points at the read that showed them). */
  async record(ctx: RequestContext, entry: AuditEntry): Promise<string> {
    const actor = requireActor(ctx);
    const row: AuditRow = {
      id: randomUUID(),
      actorTokenId: actor.tokenId,
      actorRole: actor.role,
      action: entry.action,
      entityType: entry.entityType,
      entityId: entry.entityId ?? null,
      siteId: entry.siteId ?? null,
      requestId: ctx.requestId,
      clientRequestId: ctx.clientRequestId ?? null,
      details: entry.details ?? {},
    };
    if (!ctx.manager && ctx.deferredAudit) {
      ctx.deferredAudit.rows.push(row);
      return row.id;
    }
    await this.db.repo(ctx, AuditEvent).insert({ ...row, details: row.details as AuditEvent['details'] & object });
    return row.id;
  }

  /** A context whose reads outside transactions are audited when `flushDeferred` runs, not one statement each. */
  deferUntilAnswered<C extends RequestContext>(ctx: C): C {
    ctx.deferredAudit = { rows: [] };
    return ctx;
  }

  /** Writes the rows a deferring context collected; settles once they are committed. Call before answering. */
  async flushDeferred(ctx: RequestContext): Promise<void> {
    const deferred = ctx.deferredAudit;
    if (!deferred || deferred.rows.length === 0) return;
    const rows = deferred.rows.splice(0);
    await this.writer.write(rows);
  }

  /** A read of patient-level rows: which kind, how many, under which filter (a nested field's filter names its parents). */
  async recordAccess(ctx: RequestContext, entityType: string, count: number, filter: object = {}): Promise<string> {
    return this.record(ctx, { action: 'read', entityType, details: { count, filter, outcome: 'OK' } });
  }

  /** A read of one row by id (null: named otherwise), whether it was answered or refused. */
  async recordSingleRead(
    ctx: RequestContext,
    entityType: string,
    id: string | null,
    outcome: ReadOutcome,
    details: Record<string, unknown> = {},
  ): Promise<string> {
    return this.record(ctx, {
      action: 'read',
      entityType,
      // The id is the caller's input: kept as the entity id only when it is one (a malformed id stays in details).
      entityId: id !== null && isUuid(id) ? id : null,
      details: { count: outcome === 'OK' ? 1 : 0, filter: id === null ? {} : { id }, outcome, ...details },
    });
  }

  /**
   * Audits a refused single-id read with the refusal's code and hands the error back to be thrown. Only typed
   * refusals of an authenticated caller are written (an unexpected error is no answer, an anonymous caller no actor).
   */
  async refusedRead(ctx: RequestContext, entityType: string, id: string | null, error: unknown, details: Record<string, unknown> = {}): Promise<unknown> {
    if (error instanceof AppError && ctx.actor) await this.recordSingleRead(ctx, entityType, id, error.code, details);
    return error;
  }

  /** Newest first, by the events' sequence (events of one transaction share their timestamp). */
  async listAuditEvents(ctx: RequestContext, filter: { actions?: string[] | null }, page: PageRequest): Promise<Page<AuditEvent>> {
    requireRole(ctx, Role.ADMIN);
    const qb = this.db.repo(ctx, AuditEvent).createQueryBuilder('e');
    if (filter.actions?.length) qb.andWhere('e.action IN (:...actions)', { actions: filter.actions });
    return paginateNewestFirst(qb, 'e', page);
  }
}
