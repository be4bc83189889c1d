import { In } from 'typeorm';
import type { Db } from '../db/transaction';
import { ReaderRole, Role, type PageRequest, type ReaderFilter } from '../domain';
import { Reader, Site } from '../entities';
import { badInput, conflict, forbidden, notFound } from '../errors/app-error';
import type { AuditService } from './audit.service';
import { paginate, type Page } from './pagination';
import { assertSiteInScope, requireActor, requireRole, type RequestContext } from './request-context';
import { whereIn } from './scope';

export interface CreateReader {
  code: string;
  role: ReaderRole;
  yearsOfExperience: number;
  siteId?: string | null;
}

/** Readers are pseudonymous codes with a role and experience; they are not patient data. */
export class ReaderService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
  ) {}

  async listReaders(ctx: RequestContext, filter: ReaderFilter, page: PageRequest): Promise<Page<Reader>> {
    requireActor(ctx);
    const qb = this.db.repo(ctx, Reader).createQueryBuilder('r');
    whereIn(qb, 'r.site_id', filter.siteIds);
    whereIn(qb, 'r.role', filter.roles);
    return paginate(qb, 'r', page);
  }

  async getReader(ctx: RequestContext, id: string): Promise<Reader> {
    requireActor(ctx);
    const reader = await this.db.repo(ctx, Reader).findOneBy({ id });
    if (!reader) throw notFound('Reader', id);
    return reader;
  }

  async readersByIds(ctx: RequestContext, ids: readonly string[]): Promise<Reader[]> {
    return this.db.repo(ctx, Reader).findBy({ id: In([...ids]) });
  }

  /** The reader a READER token acts as; FORBIDDEN for any other token. */
  async requireActingReader(ctx: RequestContext, ...roles: ReaderRole[]): Promise<Reader> {
    const actor = requireActor(ctx);
    if (actor.role !== Role.READER || !actor.readerId) throw forbidden('Only a reader’s own token can do this');
    const reader = await this.db.repo(ctx, Reader).findOneBy({ id: actor.readerId });
    if (!reader) throw forbidden('The token’s reader no longer exists');
    if (roles.length && !roles.includes(reader.role)) {
      throw forbidden(`This needs a reader with role ${roles.join(' or ')}; you are ${reader.role}`);
    }
    return reader;
  }

  /** ADMIN for any site; a COORDINATOR for readers of their own site. */
  async createReader(ctx: RequestContext, input: CreateReader): Promise<Reader> {
    const actor = requireRole(ctx, Role.COORDINATOR);
    if (actor.role === Role.COORDINATOR) {
      if (!input.siteId) throw forbidden('A coordinator creates readers of their own site only');
      assertSiteInScope(ctx, input.siteId);
    }
    return this.db.transaction(ctx, async (tx) => {
      if (input.siteId && !(await this.db.repo(tx, Site).existsBy({ id: input.siteId }))) {
        throw badInput(`Site ${input.siteId} does not exist`, { field: 'siteId' });
      }
      const repo = this.db.repo(tx, Reader);
      if (await repo.existsBy({ code: input.code })) throw conflict(`A reader with code ${input.code} exists`, { field: 'code' });
      const reader = await repo.save(
        repo.create({ code: input.code, role: input.role, yearsOfExperience: input.yearsOfExperience, siteId: input.siteId ?? null }),
      );
      await this.audit.record(tx, {
        action: 'createReader',
        entityType: 'Reader',
        entityId: reader.id,
        siteId: reader.siteId,
        details: { role: reader.role },
      });
      return reader;
    });
  }
}
