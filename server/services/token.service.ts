import { createHash, randomBytes } from 'node:crypto';
import { IsNull } from 'typeorm';
import type { Db } from '../db/transaction';
import { Role, type PageRequest } from '../domain';
import { ApiToken, Reader, Site } from '../entities';
import { badInput, notFound } from '../errors/app-error';
import type { AuditService } from './audit.service';
import { paginate, type Page } from './pagination';
import { requireRole, type Actor, type RequestContext } from './request-context';

export interface CreateApiToken {
  name: string;
  role: Role;
  siteId?: string | null;
  readerId?: string | null;
}

export interface CreatedApiToken {
  token: ApiToken;
  /** The bearer secret: shown once, stored only as its sha256. */
  secret: string;
}

const TOKEN_PREFIX = 'fct_';
export const hashToken = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

/** Roles bound to one site, whose tokens must name it. */
const SITE_BOUND_ROLES = new Set<Role>([Role.COORDINATOR, Role.READER]);

/** Bearer tokens: random secrets, stored hashed, carrying a role, a site and (for readers) a reader. */
export class TokenService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
  ) {}

  /** The actor behind a bearer secret, or null for an unknown or revoked token. */
  async authenticate(secret: string): Promise<Actor | null> {
    if (!secret.startsWith(TOKEN_PREFIX)) return null;
    const token = await this.db.dataSource
      .getRepository(ApiToken)
      .createQueryBuilder('t')
      .leftJoinAndMapOne('t.reader', Reader, 'reader', 'reader.id = t.reader_id')
      .where('t.token_hash = :hash', { hash: hashToken(secret) })
      .andWhere('t.revoked_at IS NULL')
      .getOne();
    if (!token) return null;
    return {
      tokenId: token.id,
      name: token.name,
      role: token.role,
      siteId: token.siteId,
      readerId: token.readerId,
      readerRole: token.reader?.role ?? null,
    };
  }

  async createApiToken(ctx: RequestContext, input: CreateApiToken): Promise<CreatedApiToken> {
    requireRole(ctx);
    return this.db.transaction(ctx, async (tx) => {
      let siteId = input.siteId ?? null;
      if (input.role === Role.READER) {
        if (!input.readerId) throw badInput('A READER token needs a readerId', { field: 'readerId' });
        const reader = await this.db.repo(tx, Reader).findOneBy({ id: input.readerId });
        if (!reader) throw badInput(`Reader ${input.readerId} does not exist`, { field: 'readerId' });
        if (reader.siteId && siteId && siteId !== reader.siteId) {
          throw badInput('A READER token is scoped to its reader’s own site', { field: 'siteId' });
        }
        siteId ??= reader.siteId;
      } else if (input.readerId) {
        throw badInput('Only READER tokens name a reader', { field: 'readerId' });
      }
      if (SITE_BOUND_ROLES.has(input.role) && !siteId) throw badInput(`A ${input.role} token needs a siteId`, { field: 'siteId' });
      if (!SITE_BOUND_ROLES.has(input.role) && siteId) throw badInput(`A ${input.role} token is not bound to a site`, { field: 'siteId' });
      if (siteId && !(await this.db.repo(tx, Site).existsBy({ id: siteId }))) throw badInput(`Site ${siteId} does not exist`, { field: 'siteId' });
      const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const repo = this.db.repo(tx, ApiToken);
      const token = await repo.save(
        repo.create({ name: input.name, role: input.role, siteId, readerId: input.readerId ?? null, tokenHash: hashToken(secret), revokedAt: null }),
      );
      await this.audit.record(tx, { action: 'createApiToken', entityType: 'ApiToken', entityId: token.id, siteId, details: { role: token.role } });
      return { token, secret };
    });
  }

  async revokeApiToken(ctx: RequestContext, id: string): Promise<ApiToken> {
    requireRole(ctx);
    return this.db.transaction(ctx, async (tx) => {
      const repo = this.db.repo(tx, ApiToken);
      const token = await repo.findOneBy({ id, revokedAt: IsNull() });
      if (!token) throw notFound('ApiToken', id);
      token.revokedAt = new Date();
      await repo.save(token);
      await this.audit.record(tx, { action: 'revokeApiToken', entityType: 'ApiToken', entityId: id });
      return token;
    });
  }

  listApiTokens(ctx: RequestContext, page: PageRequest): Promise<Page<ApiToken>> {
    requireRole(ctx);
    return paginate(this.db.repo(ctx, ApiToken).createQueryBuilder('t'), 't', page);
  }
}
