import { createHash, randomBytes } from 'node:crypto';
import { IsNull } from 'typeorm';
import { NO_TRANSACTION, type Db } from '../db/transaction';
import { Role, type PageRequest } from '../domain';
import { ApiToken, Reader, Site } from '../entities';
import { badInput } from '../errors/app-error';
import type { PostgresPubSub } from '../pubsub/postgres-pubsub';
import { TOKEN_REVOKED } from '../pubsub/topics';
import type { AuditService } from './audit.service';
import { paginate, type Page } from './pagination';
import { TokenCache } from './token-cache';
import { requireRole, type Actor, type RequestContext } from './request-context';

export interface CreateApiToken {
  name: string;
  role: Role;
  siteId?: string | null;
  readerId?: string | null;
  /** When the token stops authenticating; absent or null: until revoked. */
  expiresAt?: Date | null;
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

/** `Authorization: Bearer <secret>` (HTTP header, or the graphql-ws connection param of the same name). */
function bearerSecret(header: unknown): string | null {
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match ? match[1] : null;
}

/**
 * Any fixed number not taken by another advisory lock (7_146_318 migrations, 7_146_319 the object store): the lock
 * under which starting servers decide who mints the first token.
 */
const BOOTSTRAP_LOCK = 7_146_320;

/** Bearer tokens: random secrets, stored hashed, carrying a role, a site and (for readers) a reader. */
export class TokenService {
  private readonly cache = new TokenCache();

  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly pubSub: PostgresPubSub,
  ) {
    // Every server forgets a revoked token as the revocation commits (the revoking server also at once, below).
    const revoked = pubSub.subscribeAll(TOKEN_REVOKED)[Symbol.asyncIterator]();
    const forget = async (): Promise<void> => {
      for (let event = await revoked.next(); !event.done; event = await revoked.next()) this.cache.forgetToken(event.value.tokenId);
    };
    void forget();
    pubSub.onEventsMissed(() => this.cache.clear());
  }

  /** The actor behind an `Authorization` header or graphql-ws connection param; null without a bearer token. */
  async authenticateAuthorization(authorization: unknown): Promise<Actor | null> {
    const secret = bearerSecret(authorization);
    return secret ? this.authenticate(secret) : null;
  }

  /** The actor behind a bearer secret, or null for an unknown, revoked or expired token. */
  async authenticate(secret: string): Promise<Actor | null> {
    if (!secret.startsWith(TOKEN_PREFIX)) return null;
    const hash = hashToken(secret);
    const cached = this.cache.get(hash);
    if (cached) return cached;
    const actor = await this.lookUp(hash);
    if (actor) this.cache.set(hash, actor);
    return actor;
  }

  private async lookUp(hash: string): Promise<Actor | null> {
    const token = await this.db
      .repo(NO_TRANSACTION, ApiToken)
      .createQueryBuilder('t')
      .leftJoinAndMapOne('t.reader', Reader, 'reader', 'reader.id = t.reader_id')
      .where('t.token_hash = :hash', { hash })
      .andWhere('t.revoked_at IS NULL')
      // The server's clock, not the database's: the same clock ends a token's open subscriptions at expiresAt.
      .andWhere('(t.expires_at IS NULL OR t.expires_at > :now)', { now: new Date() })
      .getOne();
    if (!token) return null;
    return {
      tokenId: token.id,
      name: token.name,
      role: token.role,
      siteId: token.siteId,
      readerId: token.readerId,
      readerRole: token.reader?.role ?? null,
      expiresAt: token.expiresAt,
    };
  }

  async createApiToken(ctx: RequestContext, input: CreateApiToken): Promise<CreatedApiToken> {
    requireRole(ctx);
    const expiresAt = input.expiresAt ?? null;
    if (expiresAt && !(expiresAt.getTime() > Date.now())) throw badInput('expiresAt must be in the future', { field: 'expiresAt' });
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
        repo.create({ name: input.name, role: input.role, siteId, readerId: input.readerId ?? null, tokenHash: hashToken(secret), revokedAt: null, expiresAt }),
      );
      await this.audit.record(tx, {
        action: 'createApiToken',
        entityType: 'ApiToken',
        entityId: token.id,
        siteId,
        details: { role: token.role, ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}) },
      });
      return { token, secret };
    });
  }

  /**
   * The node's first ADMIN token, made only while the database holds no token at all (revoked and expired ones
   * count, so a revoked bootstrap token is never replaced); null when there is one. Servers starting together on
   * one database take turns on an advisory lock, so exactly one mints. `keep` stores the secret before the row
   * commits: a committed bootstrap token always has its secret kept somewhere.
   */
  async mintBootstrapAdminToken(ctx: RequestContext, keep: (secret: string) => Promise<void>): Promise<CreatedApiToken | null> {
    requireRole(ctx);
    return this.db.transaction(ctx, async (tx) => {
      await this.db.manager(tx).query('SELECT pg_advisory_xact_lock($1)', [BOOTSTRAP_LOCK]);
      if (await this.db.repo(tx, ApiToken).createQueryBuilder('t').getExists()) return null;
      const created = await this.createApiToken(tx, { name: 'bootstrap admin', role: Role.ADMIN });
      await keep(created.secret);
      return created;
    });
  }

  async revokeApiToken(ctx: RequestContext, id: string): Promise<ApiToken> {
    requireRole(ctx);
    const revoked = await this.db.transaction(ctx, async (tx) => {
      const token = await this.db.getEntityOrThrow(tx, ApiToken, id, { revokedAt: IsNull() });
      token.revokedAt = new Date();
      await this.db.repo(tx, ApiToken).save(token);
      await this.audit.record(tx, { action: 'revokeApiToken', entityType: 'ApiToken', entityId: id });
      // Sent when the revocation commits (not at all if it rolls back): every server ends the token's subscriptions.
      await this.pubSub.publish(TOKEN_REVOKED, id, { tokenId: id }, this.db.manager(tx));
      return token;
    });
    this.cache.forgetToken(id);
    return revoked;
  }

  listApiTokens(ctx: RequestContext, page: PageRequest): Promise<Page<ApiToken>> {
    requireRole(ctx);
    return paginate(this.db.repo(ctx, ApiToken).createQueryBuilder('t'), 't', page);
  }
}
