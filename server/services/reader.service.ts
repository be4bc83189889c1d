import { In, IsNull } from 'typeorm';
import { foundOrThrow, type Db } from '../db/transaction';
import { ReaderRole, ReaderSlot, Role, type PageRequest, type ReaderFilter } from '../domain';
import { Reader, Site } from '../entities';
import { badInput, conflict, forbidden } from '../errors/app-error';
import type { AuditService } from './audit.service';
import { paginate, type Page } from './pagination';
import { assertSiteInScope, requireActor, requireRole, type RequestContext } from './request-context';
import { whereIn } from './scope';

export interface CreateReader {
  code: string;
  role: ReaderRole;
  yearsOfExperience: number;
  siteId?: string | null;
  /** Reader 1 or 2 of the site; a READER without one takes the first free slot of their site (none if both are taken). */
  slot?: ReaderSlot | null;
}

/** Slots in the order a new reader of a site takes them. */
const SLOT_ORDER: readonly ReaderSlot[] = [ReaderSlot.FIRST, ReaderSlot.SECOND];

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
    whereIn(qb, 'r.slot', filter.slots);
    return paginate(qb, 'r', page);
  }

  async getReader(ctx: RequestContext, id: string): Promise<Reader> {
    requireActor(ctx);
    const reader = await this.db.getEntityOrThrow(ctx, Reader, id);
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
    assertSlotFitsRole(input.role, input.slot);
    return this.db.transaction(ctx, async (tx) => {
      if (input.siteId && !(await this.db.repo(tx, Site).existsBy({ id: input.siteId }))) {
        throw badInput(`Site ${input.siteId} does not exist`, { field: 'siteId' });
      }
      const repo = this.db.repo(tx, Reader);
      if (await repo.existsBy({ code: input.code })) throw conflict(`A reader with code ${input.code} exists`, { field: 'code' });
      const siteId = input.siteId ?? null;
      const taken = await this.slotsTaken(tx, siteId);
      let slot = input.slot ?? null;
      if (slot && taken.has(slot)) throw conflict(`Site ${siteId ?? '(central)'} already has its ${slot} reader`, { field: 'slot' });
      if (!input.slot && input.role === ReaderRole.READER) slot = SLOT_ORDER.find((s) => !taken.has(s)) ?? null;
      const reader = await repo.save(repo.create({ code: input.code, role: input.role, yearsOfExperience: input.yearsOfExperience, siteId, slot }));
      await this.audit.record(tx, {
        action: 'createReader',
        entityType: 'Reader',
        entityId: reader.id,
        siteId: reader.siteId,
        details: { role: reader.role, slot: reader.slot },
      });
      return reader;
    });
  }

  /**
   * Moves a reader to another slot of their site, or out of any (null). A slot held by someone else is a
   * CONFLICT: to swap two readers, clear one first. Agreement tables and slot-pooled metrics follow at once.
   */
  async setReaderSlot(ctx: RequestContext, readerId: string, slot: ReaderSlot | null): Promise<Reader> {
    const actor = requireRole(ctx, Role.COORDINATOR);
    return this.db.transaction(ctx, async (tx) => {
      const repo = this.db.repo(tx, Reader);
      const reader = foundOrThrow(await repo.findOne({ where: { id: readerId }, lock: { mode: 'pessimistic_write' } }), 'Reader', readerId);
      if (actor.role === Role.COORDINATOR) {
        if (!reader.siteId) throw forbidden('A coordinator manages readers of their own site only');
        assertSiteInScope(tx, reader.siteId);
      }
      assertSlotFitsRole(reader.role, slot);
      if (reader.slot === slot) return reader;
      if (slot && (await this.slotsTaken(tx, reader.siteId)).has(slot)) {
        throw conflict(`Site ${reader.siteId ?? '(central)'} already has its ${slot} reader`, { field: 'slot' });
      }
      const before = reader.slot;
      reader.slot = slot;
      const saved = await repo.save(reader);
      await this.audit.record(tx, {
        action: 'setReaderSlot',
        entityType: 'Reader',
        entityId: reader.id,
        siteId: reader.siteId,
        details: { before, after: slot },
      });
      return saved;
    });
  }

  private async slotsTaken(ctx: RequestContext, siteId: string | null): Promise<Set<ReaderSlot>> {
    const readers = await this.db.repo(ctx, Reader).find({ where: { siteId: siteId ?? IsNull() }, select: { id: true, slot: true } });
    return new Set(readers.flatMap((r) => (r.slot ? [r.slot] : [])));
  }
}

/** Slots belong to the pair of readers who grade each cell, never to adjudicators or the senior group. */
function assertSlotFitsRole(role: ReaderRole, slot: ReaderSlot | null | undefined): void {
  if (slot && role !== ReaderRole.READER) throw badInput(`Only READER-role readers have a slot; a ${role} has none`, { field: 'slot' });
}
