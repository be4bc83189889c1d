import type { Db } from '../db/transaction';
import { Role, type PageRequest } from '../domain';
import { AuditEvent } from '../entities';
import { paginate, type Page } from './pagination';
import { requireActor, requireRole, type RequestContext } from './request-context';

export interface AuditEntry {
  action: string;
  entityType: string;
  entityId?: string | null;
  siteId?: string | null;
  /** Ids, counts and codes only: never names, identifiers or free text that could hold PHI. */
  details?: Record<string, unknown>;
}

/** Writes the audit log in the caller's transaction, so an audited change and its audit row land together. */
export class AuditService {
  constructor(private readonly db: Db) {}

  async record(ctx: RequestContext, entry: AuditEntry): Promise<void> {
    const actor = requireActor(ctx);
    await this.db.repo(ctx, AuditEvent).insert({
      actorTokenId: actor.tokenId,
      actorRole: actor.role,
      action: entry.action,
      entityType: entry.entityType,
      entityId: entry.entityId ?? null,
      siteId: entry.siteId ?? null,
      requestId: ctx.requestId,
      clientRequestId: ctx.clientRequestId ?? null,
      details: (entry.details ?? {}) as AuditEvent['details'] & object,
    });
  }

  /** A read of patient-level rows: which kind, how many, under which filter. */
  async recordAccess(ctx: RequestContext, entityType: string, count: number, filter: object = {}): Promise<void> {
    await this.record(ctx, { action: 'read', entityType, details: { count, filter } });
  }

  async listAuditEvents(ctx: RequestContext, filter: { actions?: string[] | null }, page: PageRequest): Promise<Page<AuditEvent>> {
    requireRole(ctx, Role.ADMIN);
    const qb = this.db.repo(ctx, AuditEvent).createQueryBuilder('e');
    if (filter.actions?.length) qb.andWhere('e.action IN (:...actions)', { actions: filter.actions });
    return paginate(qb, 'e', page);
  }
}
