import type { SelectQueryBuilder } from 'typeorm';
import type { Db } from '../db/transaction';
import { ErrorCode, ReaderRole, Role, type PageRequest, type ReferenceGradeFilter } from '../domain';
import { Joint, Patient, ReferenceGrade } from '../entities';
import { AppError, badInput, forbidden, notFound } from '../errors/app-error';
import type { AuditService } from './audit.service';
import type { GradeValue, GradingService } from './grading.service';
import { paginate, type Page } from './pagination';
import type { ReaderService } from './reader.service';
import { requireRole, type RequestContext } from './request-context';
import { applyGradeFilter } from './scope';

export interface ReviseReferenceGrade extends GradeValue {
  id: string;
}

/** At most this many reference grades are confirmed in one call (one transaction, one lock set). */
export const MAX_CONFIRM_BATCH = 1000;

/** The reference standard: listed for unblinded roles, revised until the senior group confirms and locks it. */
export class ReferenceService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly grading: GradingService,
    private readonly readers: ReaderService,
  ) {}

  private references(ctx: RequestContext, filter: ReferenceGradeFilter = {}): SelectQueryBuilder<ReferenceGrade> {
    const actor = requireRole(ctx, Role.COORDINATOR, Role.READER);
    if (actor.role === Role.READER && actor.readerRole === ReaderRole.READER) {
      throw forbidden('Readers are blinded to the reference standard');
    }
    const qb = this.db
      .repo(ctx, ReferenceGrade)
      .createQueryBuilder('ref')
      .innerJoin(Joint, 'joint', 'joint.id = ref.joint_id')
      .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id');
    applyGradeFilter(qb, ctx, { cell: 'ref', joint: 'joint', patient: 'patient' }, filter);
    if (filter.confirmed === true) qb.andWhere('ref.confirmed_at IS NOT NULL');
    if (filter.confirmed === false) qb.andWhere('ref.confirmed_at IS NULL');
    return qb;
  }

  async listReferenceGrades(ctx: RequestContext, filter: ReferenceGradeFilter, page: PageRequest): Promise<Page<ReferenceGrade>> {
    const result = await paginate(this.references(ctx, filter), 'ref', page);
    await this.audit.recordAccess(ctx, 'ReferenceGrade', result.nodes.length, filter);
    return result;
  }

  referenceGradesByJointIds(ctx: RequestContext, jointIds: readonly string[]): Promise<ReferenceGrade[]> {
    return this.references(ctx).andWhere('ref.joint_id IN (:...jointIds)', { jointIds }).getMany();
  }

  /** Locks the rows in scope, in id order (no deadlock between two overlapping batches). */
  private async lockForChange(ctx: RequestContext, ids: readonly string[]): Promise<ReferenceGrade[]> {
    const rows = await this.references(ctx)
      .andWhere('ref.id IN (:...ids)', { ids })
      .orderBy('ref.id')
      .setLock('pessimistic_write', undefined, ['ref'])
      .getMany();
    const missing = ids.find((id) => !rows.some((r) => r.id === id));
    if (missing) throw notFound('ReferenceGrade', missing);
    const locked = rows.find((r) => r.confirmedAt);
    if (locked) throw new AppError(ErrorCode.REFERENCE_LOCKED, `Reference grade ${locked.id} is confirmed and locked`, { id: locked.id });
    return rows;
  }

  /** The senior group confirms reference grades; confirmation locks them for good. All or none. */
  async confirmReferenceGrades(ctx: RequestContext, ids: string[]): Promise<ReferenceGrade[]> {
    const senior = await this.readers.requireActingReader(ctx, ReaderRole.SENIOR);
    const unique = [...new Set(ids)];
    if (unique.length === 0 || unique.length > MAX_CONFIRM_BATCH) {
      throw badInput(`Confirm between 1 and ${MAX_CONFIRM_BATCH} reference grades at a time`, { field: 'ids' });
    }
    return this.db.transaction(ctx, async (tx) => {
      const rows = await this.lockForChange(tx, unique);
      const confirmedAt = new Date();
      await this.db.repo(tx, ReferenceGrade).update(unique, { confirmedById: senior.id, confirmedAt });
      const sites = await this.sitesOfJoints(
        tx,
        rows.map((r) => r.jointId),
      );
      for (const row of rows) {
        await this.audit.record(tx, { action: 'confirmReferenceGrade', entityType: 'ReferenceGrade', entityId: row.id, siteId: sites.get(row.jointId) });
      }
      return rows.map((r) => Object.assign(r, { confirmedById: senior.id, confirmedAt }));
    });
  }

  /** Before confirmation an adjudicator or the senior group may revise a reference grade; afterwards REFERENCE_LOCKED. */
  async reviseReferenceGrade(ctx: RequestContext, input: ReviseReferenceGrade): Promise<ReferenceGrade> {
    await this.readers.requireActingReader(ctx, ReaderRole.ADJUDICATOR, ReaderRole.SENIOR);
    return this.db.transaction(ctx, async (tx) => {
      const [row] = await this.lockForChange(tx, [input.id]);
      const value = await this.grading.validateGrade(tx, row.feature, input);
      const before = { grade: row.grade, notAssessable: row.notAssessable };
      Object.assign(row, value);
      const saved = await this.db.repo(tx, ReferenceGrade).save(row);
      await this.audit.record(tx, {
        action: 'reviseReferenceGrade',
        entityType: 'ReferenceGrade',
        entityId: row.id,
        siteId: (await this.sitesOfJoints(tx, [row.jointId])).get(row.jointId),
        details: { before, after: value },
      });
      return saved;
    });
  }

  private async sitesOfJoints(ctx: RequestContext, jointIds: string[]): Promise<Map<string, string>> {
    const rows = await this.db
      .repo(ctx, Joint)
      .createQueryBuilder('joint')
      .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id')
      .select(['joint.id AS "jointId"', 'patient.site_id AS "siteId"'])
      .where('joint.id IN (:...jointIds)', { jointIds })
      .getRawMany<{ jointId: string; siteId: string }>();
    return new Map(rows.map((r) => [r.jointId, r.siteId]));
  }
}
