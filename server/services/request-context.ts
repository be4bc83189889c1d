import { randomUUID } from 'node:crypto';
import type { HasManager } from '../db/transaction';
import { ErrorCode, type ReaderRole, Role } from '../domain';
import { AppError } from '../errors/app-error';
import type { DeferredAudit } from './audit.service';

/** Who is calling: resolved from a bearer token. */
export interface Actor {
  tokenId: string | null;
  name: string;
  role: Role;
  /** The site a COORDINATOR or READER token is bound to. */
  siteId: string | null;
  /** The reader a READER token acts as, and that reader's role in the workflow. */
  readerId: string | null;
  readerRole: ReaderRole | null;
  /** When the token stops authenticating (an open subscription ends then); null or absent: until revoked. */
  expiresAt?: Date | null;
}

/** Passed first to every service method: the actor, a request id for logs and audit, the open transaction. */
export interface RequestContext extends HasManager {
  /** Made by the server for every request; a client never chooses it. */
  requestId: string;
  /** The client's own request id (its x-request-id header), recorded beside requestId in the audit log. */
  clientRequestId?: string | null;
  actor: Actor | null;
  /** Aborted when the client goes away before its answer (HTTP): a long-poll stops waiting and claims nothing more. */
  signal?: AbortSignal;
  /** Set for a GraphQL request: its reads' audit rows, written together before it answers (AuditService). */
  deferredAudit?: DeferredAudit;
}

/** Roles that see every site's data; the others see only the site their token names. */
const ALL_SITE_ROLES = new Set<Role>([Role.ADMIN, Role.STATISTICIAN, Role.ENGINEER, Role.HUB]);

/** The context of the node itself (CLI commands, the demo loader): an ADMIN without a token. */
export function systemContext(name = 'system'): RequestContext {
  return { requestId: randomUUID(), actor: { tokenId: null, name, role: Role.ADMIN, siteId: null, readerId: null, readerRole: null } };
}

export function requireActor(ctx: RequestContext): Actor {
  if (!ctx.actor) throw new AppError(ErrorCode.UNAUTHENTICATED, 'A valid bearer token is required');
  return ctx.actor;
}

export function requireRole(ctx: RequestContext, ...roles: Role[]): Actor {
  const actor = requireActor(ctx);
  if (actor.role !== Role.ADMIN && !roles.includes(actor.role)) {
    throw new AppError(ErrorCode.FORBIDDEN, `This needs one of the roles ${[Role.ADMIN, ...roles].join(', ')}`);
  }
  return actor;
}

/** The sites the caller may see patient-level data of; `null` means every site. */
export function siteScope(ctx: RequestContext): string[] | null {
  const actor = requireActor(ctx);
  if (ALL_SITE_ROLES.has(actor.role)) return null;
  return actor.siteId ? [actor.siteId] : [];
}

export function assertSiteInScope(ctx: RequestContext, siteId: string): void {
  const scope = siteScope(ctx);
  if (scope && !scope.includes(siteId)) {
    throw new AppError(ErrorCode.FORBIDDEN, 'That site is outside your token’s scope');
  }
}
