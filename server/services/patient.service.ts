import { randomInt } from 'node:crypto';
import { foundOrThrow, type Db } from '../db/transaction';
import { ALL_LEVELS, ALL_SIDES, ExclusionReason, Role, Sex, type JointFilter, type PageRequest, type PatientFilter } from '../domain';
import { Joint, Patient, Site } from '../entities';
import { badInput, conflict } from '../errors/app-error';
import type { AuditService } from './audit.service';
import { isUuid } from './ids';
import { paginate, type Page } from './pagination';
import { assertSiteInScope, requireRole, type RequestContext } from './request-context';
import { applyJointFilter, applyPatientFilter, whereIn } from './scope';

export interface CreatePatient {
  siteId: string;
  pseudonym: string;
  sex?: Sex | null;
  ageAtFirstImaging?: number | null;
  exclusionReasons?: ExclusionReason[] | null;
}

/**
 * A patient's de-identification date shift: between 1 and 10 years back, uniformly at random, so shifted
 * dates keep intervals and weekdays drift but cannot be undone without the node's database.
 */
export const randomDateShift = (): number => -randomInt(365, 3651);

/** Roles that may read patient-level rows at all; the site scope then narrows what they see. */
export const PATIENT_LEVEL_ROLES = [Role.COORDINATOR, Role.READER] as const;

/** Patients and their joints. Every query is narrowed to the caller's sites in `scope.ts`. */
export class PatientService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
  ) {}

  private patients(ctx: RequestContext, filter: PatientFilter = {}) {
    requireRole(ctx, ...PATIENT_LEVEL_ROLES);
    return applyPatientFilter(this.db.repo(ctx, Patient).createQueryBuilder('patient'), ctx, 'patient', filter);
  }

  private joints(ctx: RequestContext, filter: JointFilter = {}) {
    requireRole(ctx, ...PATIENT_LEVEL_ROLES);
    const qb = this.db.repo(ctx, Joint).createQueryBuilder('joint').innerJoin(Patient, 'patient', 'patient.id = joint.patient_id');
    return applyJointFilter(qb, ctx, { joint: 'joint', patient: 'patient' }, filter);
  }

  async listPatients(ctx: RequestContext, filter: PatientFilter, page: PageRequest): Promise<Page<Patient>> {
    const result = await paginate(this.patients(ctx, filter), 'patient', page);
    await this.audit.recordAccess(ctx, 'Patient', result.nodes.length, filter);
    return result;
  }

  /** NOT_FOUND outside the caller's sites; audited whether answered or refused. */
  async getPatient(ctx: RequestContext, id: string): Promise<Patient> {
    try {
      const qb = this.patients(ctx).andWhere('patient.id = :id', { id });
      const patient = foundOrThrow(isUuid(id) ? await qb.getOne() : null, 'Patient', id);
      await this.audit.recordSingleRead(ctx, 'Patient', id, 'OK');
      return patient;
    } catch (error) {
      throw await this.audit.refusedRead(ctx, 'Patient', id, error);
    }
  }

  /** For parent lookups (`Joint.patient`, `Study.patient`…): audited like a list. */
  async patientsByIds(ctx: RequestContext, ids: readonly string[]): Promise<Patient[]> {
    const qb = this.patients(ctx);
    whereIn(qb, 'patient.id', ids);
    const rows = await qb.getMany();
    await this.audit.recordAccess(ctx, 'Patient', rows.length, { ids });
    return rows;
  }

  /** `Site.patients`: a page of the site's patients the caller may see, audited like `patients`. */
  async patientsBySite(ctx: RequestContext, siteId: string, page: PageRequest): Promise<Page<Patient>> {
    const filter = { siteIds: [siteId] };
    const result = await paginate(this.patients(ctx, filter), 'patient', page);
    await this.audit.recordAccess(ctx, 'Patient', result.nodes.length, filter);
    return result;
  }

  async listJoints(ctx: RequestContext, filter: JointFilter, page: PageRequest): Promise<Page<Joint>> {
    const result = await paginate(this.joints(ctx, filter), 'joint', page);
    await this.audit.recordAccess(ctx, 'Joint', result.nodes.length, filter);
    return result;
  }

  /** NOT_FOUND outside the caller's sites; audited whether answered or refused. */
  async getJoint(ctx: RequestContext, id: string): Promise<Joint> {
    try {
      const qb = this.joints(ctx).andWhere('joint.id = :id', { id });
      const joint = foundOrThrow(isUuid(id) ? await qb.getOne() : null, 'Joint', id);
      await this.audit.recordSingleRead(ctx, 'Joint', id, 'OK');
      return joint;
    } catch (error) {
      throw await this.audit.refusedRead(ctx, 'Joint', id, error);
    }
  }

  /** For parent lookups (`Reading.joint`, `JointImage.joint`…): audited like a list. */
  async jointsByIds(ctx: RequestContext, ids: readonly string[]): Promise<Joint[]> {
    const rows = await this.joints(ctx).andWhere('joint.id IN (:...ids)', { ids }).getMany();
    await this.audit.recordAccess(ctx, 'Joint', rows.length, { ids });
    return rows;
  }

  /** `Patient.joints`, audited like `joints`. */
  async jointsByPatientIds(ctx: RequestContext, patientIds: readonly string[]): Promise<Joint[]> {
    const filter = { patientIds: [...patientIds] };
    const rows = await this.joints(ctx, filter).orderBy('joint.level').addOrderBy('joint.side').getMany();
    await this.audit.recordAccess(ctx, 'Joint', rows.length, filter);
    return rows;
  }

  /** The site a joint belongs to, checked against the caller's scope: NOT_FOUND when outside it. */
  async siteOfJoint(ctx: RequestContext, jointId: string): Promise<string> {
    const row = foundOrThrow(
      await this.joints(ctx).select('patient.site_id', 'siteId').andWhere('joint.id = :jointId', { jointId }).getRawOne<{ siteId: string }>(),
      'Joint',
      jointId,
    );
    return row.siteId;
  }

  /** A patient with their ten facet joints (L1/L2..L5/S1, left and right), in one transaction. */
  async createPatient(ctx: RequestContext, input: CreatePatient): Promise<Patient> {
    requireRole(ctx, Role.COORDINATOR);
    assertSiteInScope(ctx, input.siteId);
    const reasons = [...new Set(input.exclusionReasons ?? [])];
    return this.db.transaction(ctx, async (tx) => {
      if (!(await this.db.repo(tx, Site).existsBy({ id: input.siteId }))) {
        throw badInput(`Site ${input.siteId} does not exist`, { field: 'siteId' });
      }
      const repo = this.db.repo(tx, Patient);
      if (await repo.existsBy({ siteId: input.siteId, pseudonym: input.pseudonym })) {
        throw conflict('A patient with this pseudonym exists at the site', { field: 'pseudonym' });
      }
      const patient = await repo.save(
        repo.create({
          siteId: input.siteId,
          pseudonym: input.pseudonym,
          sex: input.sex ?? Sex.UNKNOWN,
          ageAtFirstImaging: input.ageAtFirstImaging ?? null,
          exclusionReasons: reasons,
          patientKey: null,
          dateShiftDays: randomDateShift(),
        }),
      );
      await this.insertJoints(tx, patient.id);
      await this.audit.record(tx, {
        action: 'createPatient',
        entityType: 'Patient',
        entityId: patient.id,
        siteId: patient.siteId,
        details: { exclusionReasons: reasons },
      });
      return patient;
    });
  }

  /** A new patient's ten facet joints: L1/L2..L5/S1, left and right. */
  async insertJoints(ctx: RequestContext, patientId: string): Promise<void> {
    await this.db.repo(ctx, Joint).insert(ALL_LEVELS.flatMap((level) => ALL_SIDES.map((side) => ({ patientId, level, side }))));
  }

  /** Sets a patient's exclusion reasons (empty = eligible). Splits already frozen keep their assignments. */
  async setExclusionReasons(ctx: RequestContext, patientId: string, reasons: ExclusionReason[]): Promise<Patient> {
    requireRole(ctx, Role.COORDINATOR);
    return this.db.transaction(ctx, async (tx) => {
      const patient = foundOrThrow(
        await this.patients(tx).andWhere('patient.id = :patientId', { patientId }).setLock('pessimistic_write').getOne(),
        'Patient',
        patientId,
      );
      patient.exclusionReasons = [...new Set(reasons)];
      const saved = await this.db.repo(tx, Patient).save(patient);
      await this.audit.record(tx, {
        action: 'setExclusionReasons',
        entityType: 'Patient',
        entityId: patient.id,
        siteId: patient.siteId,
        details: { exclusionReasons: patient.exclusionReasons },
      });
      return saved;
    });
  }
}
