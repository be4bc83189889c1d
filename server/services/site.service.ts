import { In } from 'typeorm';
import type { Db } from '../db/transaction';
import type { PageRequest } from '../domain';
import { Site } from '../entities';
import { conflict } from '../errors/app-error';
import type { AuditService } from './audit.service';
import { paginate, type Page } from './pagination';
import { requireActor, requireRole, type RequestContext } from './request-context';

/** What createSite accepts as a code (CreateSiteInput): letters, digits, - and _, at most 32. */
const SITE_CODE = /^[A-Za-z0-9_-]{1,32}$/;

export interface CreateSite {
  code: string;
  name: string;
}

/** Sites are not patient data: any authenticated caller may list them. */
export class SiteService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
  ) {}

  async listSites(ctx: RequestContext, page: PageRequest): Promise<Page<Site>> {
    requireActor(ctx);
    return paginate(this.db.repo(ctx, Site).createQueryBuilder('s'), 's', page);
  }

  async getSite(ctx: RequestContext, id: string): Promise<Site> {
    requireActor(ctx);
    return this.db.getEntityOrThrow(ctx, Site, id);
  }

  async findSiteByCode(ctx: RequestContext, code: string): Promise<Site | null> {
    requireActor(ctx);
    // A code no site can have (NUL, over-long, other characters) is not sent to PostgreSQL, which refuses NUL outright.
    if (!SITE_CODE.test(code)) return null;
    return this.db.repo(ctx, Site).findOneBy({ code });
  }

  async sitesByIds(ctx: RequestContext, ids: readonly string[]): Promise<Site[]> {
    return this.db.repo(ctx, Site).findBy({ id: In([...ids]) });
  }

  async createSite(ctx: RequestContext, input: CreateSite): Promise<Site> {
    requireRole(ctx);
    return this.db.transaction(ctx, async (tx) => {
      const repo = this.db.repo(tx, Site);
      if (await repo.existsBy({ code: input.code })) throw conflict(`A site with code ${input.code} exists`, { field: 'code' });
      const site = await repo.save(repo.create({ code: input.code, name: input.name }));
      await this.audit.record(tx, { action: 'createSite', entityType: 'Site', entityId: site.id, siteId: site.id, details: { code: site.code } });
      return site;
    });
  }
}
