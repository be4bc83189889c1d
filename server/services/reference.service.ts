import type { SelectQueryBuilder } from 'typeorm';
import type { Db } from '../db/transaction';
import { ErrorCode, ReaderRole, ReferenceSource, Role, type PageRequest, type ReferenceGradeFilter } from '../domain';
import { Adjudication, Joint, Patient, Reading, ReferenceGrade } from '../entities';
import { AppError, badInput, forbidden, notFound } from '../errors/app-error';
import type { AuditService } from './audit.service';
import type { ExposureService } from './exposure.service';
import type { GradeValue, GradingService } from './grading.service';
import { paginate, type Page } from './pagination';
import type { ReaderService } from './reader.service';
import { cellOf, type GradeCell } from './reading.service';
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
    private readonly exposures: ExposureService,
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
    await this.exposures.recordGradeRead(ctx, result.nodes, (tx) => this.audit.recordAccess(tx, 'ReferenceGrade', result.nodes.length, filter));
    return result;
  }

  /** For `Joint.referenceGrades`: audited like a list, and what it shows a reader is recorded. */
  async referenceGradesByJointIds(ctx: RequestContext, jointIds: readonly string[]): Promise<ReferenceGrade[]> {
    const rows = await this.references(ctx).andWhere('ref.joint_id IN (:...jointIds)', { jointIds }).getMany();
    await this.exposures.recordGradeRead(ctx, rows, (tx) => this.audit.recordAccess(tx, 'ReferenceGrade', rows.length, { jointIds }));
    return rows;
  }

  /**
   * FORBIDDEN where `reader` read one of the cells, or, to confirm, decided its current value (adjudicated it or last
   * revised it): the reference standard is set and checked by people independent of the grades it judges.
   */
  private async assertNotConflicted(ctx: RequestContext, reader: { id: string }, rows: ReferenceGrade[], action: 'revise' | 'confirm'): Promise<void> {
    const [read] = await this.ownInCells(ctx, Reading, 'reader_id', reader.id, rows);
    if (read) {
      throw new AppError(ErrorCode.FORBIDDEN, `You read this joint-feature yourself and cannot ${action} its reference grade`, {
        reason: 'READ_THE_CELL',
        ...cellOf(read),
      });
    }
    if (action === 'revise') return;
    const adjudications = await this.ownInCells(ctx, Adjudication, 'adjudicator_id', reader.id, rows);
    const decided = rows.find((r) => r.revisedById === reader.id || (r.source === ReferenceSource.ADJUDICATION && adjudications.some((a) => sameCell(a, r))));
    if (decided) {
      throw new AppError(ErrorCode.FORBIDDEN, 'You decided this reference grade (adjudicated or revised it); another senior reader confirms it', {
        reason: 'DECIDED_THE_CELL',
        id: decided.id,
      });
    }
  }

  /** The readings or adjudications `readerId` wrote in the cells of `references` (one query for any batch size). */
  private ownInCells<T extends Reading | Adjudication>(
    ctx: RequestContext,
    entity: new () => T,
    readerColumn: 'reader_id' | 'adjudicator_id',
    readerId: string,
    references: ReferenceGrade[],
  ): Promise<T[]> {
    return this.db
      .repo(ctx, entity)
      .createQueryBuilder('own')
      .where(`own.${readerColumn} = :readerId`, { readerId })
      .andWhere(
        '(own.joint_id, own.modality::text, own.feature) IN (SELECT * FROM unnest(CAST(:jointIds AS uuid[]), CAST(:modalities AS text[]), CAST(:features AS text[])))',
        { jointIds: references.map((r) => r.jointId), modalities: references.map((r) => r.modality), features: references.map((r) => r.feature) },
      )
      .getMany();
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
      await this.assertNotConflicted(tx, senior, rows, 'confirm');
      const confirmedAt = new Date();
      await this.db.repo(tx, ReferenceGrade).update(unique, { confirmedById: senior.id, confirmedAt });
      const sites = await this.sitesOfJoints(
        tx,
        rows.map((r) => r.jointId),
      );
      const events: string[] = [];
      for (const row of rows) {
        events.push(
          await this.audit.record(tx, { action: 'confirmReferenceGrade', entityType: 'ReferenceGrade', entityId: row.id, siteId: sites.get(row.jointId) }),
        );
      }
      // The answer shows the grades: the senior has seen these cells (recorded under the batch's first event).
      await this.exposures.recordForEvent(tx, rows, events[0]);
      return rows.map((r) => Object.assign(r, { confirmedById: senior.id, confirmedAt }));
    });
  }

  /**
   * Before confirmation an adjudicator or the senior group may revise a reference grade, unless they read the cell
   * (FORBIDDEN); afterwards REFERENCE_LOCKED. The grade's source becomes REVISED, with who, when and the previous
   * value; a revision to the value it already has is BAD_USER_INPUT.
   */
  async reviseReferenceGrade(ctx: RequestContext, input: ReviseReferenceGrade): Promise<ReferenceGrade> {
    const reviser = await this.readers.requireActingReader(ctx, ReaderRole.ADJUDICATOR, ReaderRole.SENIOR);
    return this.db.transaction(ctx, async (tx) => {
      const [row] = await this.lockForChange(tx, [input.id]);
      await this.assertNotConflicted(tx, reviser, [row], 'revise');
      const value = await this.grading.validateGrade(tx, row.feature, input);
      if (value.grade === row.grade && value.notAssessable === row.notAssessable) {
        throw badInput('The reference grade already has this value', { field: 'grade' });
      }
      const before = { grade: row.grade, notAssessable: row.notAssessable, source: row.source };
      Object.assign(row, value, {
        source: ReferenceSource.REVISED,
        revisedById: reviser.id,
        revisedAt: new Date(),
        previousGrade: before.grade,
        previousNotAssessable: before.notAssessable,
        previousSource: before.source,
      });
      const saved = await this.db.repo(tx, ReferenceGrade).save(row);
      const eventId = await this.audit.record(tx, {
        action: 'reviseReferenceGrade',
        entityType: 'ReferenceGrade',
        entityId: row.id,
        siteId: (await this.sitesOfJoints(tx, [row.jointId])).get(row.jointId),
        details: { before, after: { ...value, source: ReferenceSource.REVISED } },
      });
      await this.exposures.recordForEvent(tx, [row], eventId);
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

const sameCell = (a: GradeCell, b: GradeCell): boolean => a.jointId === b.jointId && a.modality === b.modality && a.feature === b.feature;
