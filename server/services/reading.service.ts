import type { SelectQueryBuilder } from 'typeorm';
import type { Db } from '../db/transaction';
import { ErrorCode, ReaderRole, ReferenceSource, Role, type Modality, type PageRequest, type ReadingFilter, type GradeFilter } from '../domain';
import { Adjudication, Joint, Patient, Reading, ReferenceGrade } from '../entities';
import { AppError, badInput, conflict, forbidden, notFound } from '../errors/app-error';
import type { AuditService } from './audit.service';
import type { ExposureService } from './exposure.service';
import { isUuid } from './ids';
import type { GradeValue, GradingService } from './grading.service';
import { paginate, type Page } from './pagination';
import type { PatientService } from './patient.service';
import type { ReaderService } from './reader.service';
import { requireActor, requireRole, type RequestContext } from './request-context';
import { applyGradeFilter, whereIn } from './scope';

/** One joint x modality x feature: the unit that is read twice, adjudicated and given a reference grade. */
export interface GradeCell {
  jointId: string;
  modality: Modality;
  feature: string;
}

export type RecordReading = GradeCell & GradeValue;

export interface Adjudicate extends GradeCell, GradeValue {
  rationale: string;
}

/** A joint-feature whose two readers disagree and that no one has adjudicated yet. */
export interface AdjudicationQueueItem extends GradeCell {
  id: string;
  readings: Reading[];
}

/** How many independent readers grade each cell (DESIGN.md section 3). */
export const READERS_PER_CELL = 2;

const sameGrade = (a: Pick<Reading, 'grade' | 'notAssessable'>, b: Pick<Reading, 'grade' | 'notAssessable'>): boolean =>
  a.notAssessable === b.notAssessable && a.grade === b.grade;

/** Roles that may see unblinded readings and the adjudication queue. */
const UNBLINDED_READER_ROLES = [ReaderRole.ADJUDICATOR, ReaderRole.SENIOR];

/**
 * The reading workflow: two independent reads per cell, blinding until both have read, agreement becoming the
 * reference grade, disagreement entering the adjudication queue, and adjudication by a third, experienced reader.
 */
export class ReadingService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly grading: GradingService,
    private readonly patients: PatientService,
    private readonly readers: ReaderService,
    private readonly exposures: ExposureService,
  ) {}

  /** A READER token whose reader is a plain READER sees another's reading only where it has read the cell too. */
  private isBlinded(ctx: RequestContext): boolean {
    const actor = requireActor(ctx);
    return actor.role === Role.READER && !UNBLINDED_READER_ROLES.includes(actor.readerRole as ReaderRole);
  }

  private readings(ctx: RequestContext, filter: ReadingFilter = {}): SelectQueryBuilder<Reading> {
    requireRole(ctx, Role.COORDINATOR, Role.READER);
    const qb = this.db
      .repo(ctx, Reading)
      .createQueryBuilder('reading')
      .innerJoin(Joint, 'joint', 'joint.id = reading.joint_id')
      .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id');
    applyGradeFilter(qb, ctx, { cell: 'reading', joint: 'joint', patient: 'patient' }, filter);
    whereIn(qb, 'reading.reader_id', filter.readerIds);
    if (this.isBlinded(ctx)) {
      qb.andWhere(
        `(reading.reader_id = :me OR EXISTS (SELECT 1 FROM reading mine WHERE mine.reader_id = :me AND mine.joint_id = reading.joint_id
          AND mine.modality = reading.modality AND mine.feature = reading.feature))`,
        { me: ctx.actor?.readerId },
      );
    }
    return qb;
  }

  async listReadings(ctx: RequestContext, filter: ReadingFilter, page: PageRequest): Promise<Page<Reading>> {
    const result = await paginate(this.readings(ctx, filter), 'reading', page);
    await this.exposures.recordGradeRead(ctx, result.nodes, (tx) => this.audit.recordAccess(tx, 'Reading', result.nodes.length, filter));
    return result;
  }

  /**
   * NOT_FOUND outside the caller's sites; READER_BLINDED for another reader's grade before the caller has read the
   * cell. Audited either way.
   */
  async getReading(ctx: RequestContext, id: string): Promise<Reading> {
    try {
      const qb = this.readings(ctx).andWhere('reading.id = :id', { id });
      const visible = isUuid(id) ? await qb.getOne() : null;
      if (visible) {
        await this.exposures.recordGradeRead(ctx, [visible], (tx) => this.audit.recordSingleRead(tx, 'Reading', id, 'OK'));
        return visible;
      }
      if (this.isBlinded(ctx) && isUuid(id)) {
        const blindedQb = this.db
          .repo(ctx, Reading)
          .createQueryBuilder('reading')
          .innerJoin(Joint, 'joint', 'joint.id = reading.joint_id')
          .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id')
          .andWhere('reading.id = :id', { id });
        applyGradeFilter(blindedQb, ctx, { cell: 'reading', joint: 'joint', patient: 'patient' });
        if (await blindedQb.getExists()) {
          throw new AppError(ErrorCode.READER_BLINDED, 'You cannot see another reader’s grade before you have read this joint-feature yourself');
        }
      }
      throw notFound('Reading', id);
    } catch (error) {
      throw await this.audit.refusedRead(ctx, 'Reading', id, error);
    }
  }

  /** For `Joint.readings`: audited like a list, and what it shows a reader is recorded. */
  async readingsByJointIds(ctx: RequestContext, jointIds: readonly string[]): Promise<Reading[]> {
    const rows = await this.readings(ctx).andWhere('reading.joint_id IN (:...jointIds)', { jointIds }).getMany();
    await this.exposures.recordGradeRead(ctx, rows, (tx) => this.audit.recordAccess(tx, 'Reading', rows.length, { jointIds }));
    return rows;
  }

  /** For `Reader.readings`: audited like a list, and what it shows a reader is recorded. */
  async readingsByReaderIds(ctx: RequestContext, readerIds: readonly string[]): Promise<Reading[]> {
    const rows = await this.readings(ctx, { readerIds: [...readerIds] }).getMany();
    await this.exposures.recordGradeRead(ctx, rows, (tx) => this.audit.recordAccess(tx, 'Reading', rows.length, { readerIds }));
    return rows;
  }

  /** Records the acting reader's grade; the second of two agreeing reads creates the reference grade. */
  async recordReading(ctx: RequestContext, input: RecordReading): Promise<Reading> {
    const reader = await this.readers.requireActingReader(ctx);
    return this.db.transaction(ctx, async (tx) => {
      const siteId = await this.patients.siteOfJoint(tx, input.jointId);
      const value = await this.grading.validateGrade(tx, input.feature, input);
      const existing = await this.lockCell(tx, input);
      if (existing.some((r) => r.readerId === reader.id)) {
        throw conflict('You have already graded this joint-feature', { field: 'feature' });
      }
      // Checked under the cell's lock and before the count, so a reader who has seen the grades hears why.
      await this.exposures.assertIndependent(tx, reader.id, input);
      if (existing.length >= READERS_PER_CELL) {
        throw conflict(`This joint-feature already has ${READERS_PER_CELL} independent readings`);
      }
      const repo = this.db.repo(tx, Reading);
      const reading = await repo.save(repo.create({ ...cellOf(input), ...value, readerId: reader.id }));
      await this.audit.record(tx, {
        action: 'recordReading',
        entityType: 'Reading',
        entityId: reading.id,
        siteId,
        details: { ...cellOf(input), ...value },
      });
      const [first] = existing;
      // A reference standard imported for the cell (a consensus panel's) stands: the readers' agreement adds none.
      if (first && sameGrade(first, reading) && !(await this.db.repo(tx, ReferenceGrade).existsBy(cellOf(input)))) {
        const reference = await this.db.repo(tx, ReferenceGrade).save({ ...cellOf(input), ...value, source: ReferenceSource.AGREEMENT });
        await this.audit.record(tx, {
          action: 'deriveReferenceGrade',
          entityType: 'ReferenceGrade',
          entityId: reference.id,
          siteId,
          details: { source: ReferenceSource.AGREEMENT },
        });
      }
      return reading;
    });
  }

  /** Serialises writers of one cell (two readers finishing at once must not both miss the agreement). */
  private async lockCell(ctx: RequestContext, cell: GradeCell): Promise<Reading[]> {
    await this.db.manager(ctx).query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`${cell.jointId}:${cell.modality}:${cell.feature}`]);
    return this.db.repo(ctx, Reading).find({ where: cellOf(cell), order: { createdAt: 'ASC' } });
  }

  private assertMaySeeQueue(ctx: RequestContext): void {
    const actor = requireRole(ctx, Role.COORDINATOR, Role.READER);
    if (actor.role === Role.READER && !UNBLINDED_READER_ROLES.includes(actor.readerRole as ReaderRole)) {
      throw forbidden('Only adjudicators and the senior group see the adjudication queue');
    }
  }

  private queue(ctx: RequestContext, filter: GradeFilter = {}): SelectQueryBuilder<Reading> {
    const qb = this.db
      .repo(ctx, Reading)
      .createQueryBuilder('r1')
      .innerJoin(Joint, 'joint', 'joint.id = r1.joint_id')
      .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id')
      .andWhere(
        `EXISTS (SELECT 1 FROM reading r2 WHERE r2.joint_id = r1.joint_id AND r2.modality = r1.modality AND r2.feature = r1.feature
          AND r2.reader_id > r1.reader_id AND (r2.grade IS DISTINCT FROM r1.grade OR r2.not_assessable <> r1.not_assessable))`,
      )
      .andWhere('NOT EXISTS (SELECT 1 FROM adjudication a WHERE a.joint_id = r1.joint_id AND a.modality = r1.modality AND a.feature = r1.feature)')
      // A cell whose reference standard was imported needs no adjudication.
      .andWhere('NOT EXISTS (SELECT 1 FROM reference_grade ref WHERE ref.joint_id = r1.joint_id AND ref.modality = r1.modality AND ref.feature = r1.feature)');
    return applyGradeFilter(qb, ctx, { cell: 'r1', joint: 'joint', patient: 'patient' }, filter);
  }

  async adjudicationQueue(ctx: RequestContext, filter: GradeFilter, page: PageRequest): Promise<Page<AdjudicationQueueItem>> {
    this.assertMaySeeQueue(ctx);
    const firstReads = await paginate(this.queue(ctx, filter), 'r1', page);
    const partners = firstReads.nodes.length
      ? await this.db
          .repo(ctx, Reading)
          .createQueryBuilder('r2')
          .innerJoin('reading', 'r1', 'r1.joint_id = r2.joint_id AND r1.modality = r2.modality AND r1.feature = r2.feature AND r2.reader_id > r1.reader_id')
          .where('r1.id IN (:...ids)', { ids: firstReads.nodes.map((r) => r.id) })
          .getMany()
      : [];
    await this.exposures.recordGradeRead(ctx, [...firstReads.nodes, ...partners], (tx) =>
      this.audit.recordAccess(tx, 'AdjudicationQueueItem', firstReads.nodes.length, filter),
    );
    return {
      ...firstReads,
      nodes: firstReads.nodes.map((r1) => ({
        id: r1.id,
        ...cellOf(r1),
        readings: [r1, ...partners.filter((r2) => r2.jointId === r1.jointId && r2.modality === r1.modality && r2.feature === r1.feature)],
      })),
    };
  }

  /** An adjudicator decides a disagreement they were not part of; the decision becomes the reference grade. */
  async adjudicate(ctx: RequestContext, input: Adjudicate): Promise<Adjudication> {
    const adjudicator = await this.readers.requireActingReader(ctx, ...UNBLINDED_READER_ROLES);
    if (!input.rationale.trim()) throw badInput('A rationale is required', { field: 'rationale' });
    return this.db.transaction(ctx, async (tx) => {
      const siteId = await this.patients.siteOfJoint(tx, input.jointId);
      const value = await this.grading.validateGrade(tx, input.feature, input);
      const readings = await this.lockCell(tx, input);
      if (readings.some((r) => r.readerId === adjudicator.id)) {
        throw forbidden('You read this joint-feature yourself and cannot adjudicate it');
      }
      if (readings.length < READERS_PER_CELL || sameGrade(readings[0], readings[1])) {
        throw badInput('This joint-feature has no disagreement to adjudicate', { reads: readings.length });
      }
      const reference = await this.db.repo(tx, ReferenceGrade).findOneBy(cellOf(input));
      if (reference?.confirmedAt) throw new AppError(ErrorCode.REFERENCE_LOCKED, 'The reference grade is confirmed and locked');
      if (reference?.importId) throw conflict(`This joint-feature's reference standard was imported (${reference.source}); it is not adjudicated`);
      if (await this.db.repo(tx, Adjudication).existsBy(cellOf(input))) throw conflict('This joint-feature is already adjudicated');
      const repo = this.db.repo(tx, Adjudication);
      const adjudication = await repo.save(repo.create({ ...cellOf(input), ...value, adjudicatorId: adjudicator.id, rationale: input.rationale.trim() }));
      const saved = await this.db.repo(tx, ReferenceGrade).save({ ...cellOf(input), ...value, source: ReferenceSource.ADJUDICATION });
      await this.audit.record(tx, {
        action: 'adjudicate',
        entityType: 'Adjudication',
        entityId: adjudication.id,
        siteId,
        details: { ...cellOf(input), ...value, referenceGradeId: saved.id },
      });
      return adjudication;
    });
  }

  private adjudications(ctx: RequestContext, filter: GradeFilter = {}): SelectQueryBuilder<Adjudication> {
    this.assertMaySeeQueue(ctx);
    const qb = this.db
      .repo(ctx, Adjudication)
      .createQueryBuilder('adj')
      .innerJoin(Joint, 'joint', 'joint.id = adj.joint_id')
      .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id');
    return applyGradeFilter(qb, ctx, { cell: 'adj', joint: 'joint', patient: 'patient' }, filter);
  }

  async listAdjudications(ctx: RequestContext, filter: GradeFilter, page: PageRequest): Promise<Page<Adjudication>> {
    const result = await paginate(this.adjudications(ctx, filter), 'adj', page);
    await this.exposures.recordGradeRead(ctx, result.nodes, (tx) => this.audit.recordAccess(tx, 'Adjudication', result.nodes.length, filter));
    return result;
  }
}

export const cellOf = (c: GradeCell): GradeCell => ({ jointId: c.jointId, modality: c.modality, feature: c.feature });
