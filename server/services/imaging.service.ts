import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { foundOrThrow, type Db } from '../db/transaction';
import type { ImagingFilter, JointImageFilter, PageRequest } from '../domain';
import { Instance, Joint, JointImage, Patient, Series, Study } from '../entities';
import { notFound } from '../errors/app-error';
import type { ObjectStore } from '../storage/object-store';
import type { AuditService } from './audit.service';
import { isUuid } from './ids';
import { paginate, type Page } from './pagination';
import { PATIENT_LEVEL_ROLES } from './patient.service';
import { requireRole, type RequestContext } from './request-context';
import { applyJointFilter, applyPatientFilter, whereIn } from './scope';

/** DICOM UID syntax (PS3.5 9.1): digits in dot-separated components, at most 64 characters. */
const DICOM_UID = /^(?=.{1,64}$)[0-9]+(\.[0-9]+)*$/;

/** Studies, series, instances and joint images: each query joins up to the patient for the site scope. */
export class ImagingService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly objects: ObjectStore,
  ) {}

  private studies(ctx: RequestContext, filter: ImagingFilter = {}) {
    requireRole(ctx, ...PATIENT_LEVEL_ROLES);
    const qb = this.db.repo(ctx, Study).createQueryBuilder('study').innerJoin(Patient, 'patient', 'patient.id = study.patient_id');
    applyPatientFilter(qb, ctx, 'patient', filter);
    whereIn(qb, 'patient.id', filter.patientIds);
    if (filter.modalities) {
      qb.andWhere('EXISTS (SELECT 1 FROM series sm WHERE sm.study_id = study.id AND sm.modality IN (:...studyModalities))', {
        studyModalities: filter.modalities.length ? filter.modalities : [null],
      });
    }
    return qb;
  }

  private series(ctx: RequestContext, filter: ImagingFilter = {}) {
    requireRole(ctx, ...PATIENT_LEVEL_ROLES);
    const qb = this.db
      .repo(ctx, Series)
      .createQueryBuilder('series')
      .innerJoin(Study, 'study', 'study.id = series.study_id')
      .innerJoin(Patient, 'patient', 'patient.id = study.patient_id');
    applyPatientFilter(qb, ctx, 'patient', filter);
    whereIn(qb, 'patient.id', filter.patientIds);
    whereIn(qb, 'series.modality', filter.modalities);
    return qb;
  }

  private instances(ctx: RequestContext, filter: ImagingFilter = {}) {
    requireRole(ctx, ...PATIENT_LEVEL_ROLES);
    const qb = this.db
      .repo(ctx, Instance)
      .createQueryBuilder('instance')
      .innerJoin(Series, 'series', 'series.id = instance.series_id')
      .innerJoin(Study, 'study', 'study.id = series.study_id')
      .innerJoin(Patient, 'patient', 'patient.id = study.patient_id');
    applyPatientFilter(qb, ctx, 'patient', filter);
    whereIn(qb, 'patient.id', filter.patientIds);
    whereIn(qb, 'series.modality', filter.modalities);
    return qb;
  }

  private jointImages(ctx: RequestContext, filter: JointImageFilter = {}) {
    requireRole(ctx, ...PATIENT_LEVEL_ROLES);
    const qb = this.db
      .repo(ctx, JointImage)
      .createQueryBuilder('ji')
      .innerJoin(Joint, 'joint', 'joint.id = ji.joint_id')
      .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id');
    applyJointFilter(qb, ctx, { joint: 'joint', patient: 'patient' }, filter);
    if (filter.modalities) {
      qb.innerJoin(Instance, 'instance', 'instance.id = ji.instance_id').innerJoin(Series, 'series', 'series.id = instance.series_id');
      whereIn(qb, 'series.modality', filter.modalities);
    }
    return qb;
  }

  async listStudies(ctx: RequestContext, filter: ImagingFilter, page: PageRequest): Promise<Page<Study>> {
    const result = await paginate(this.studies(ctx, filter), 'study', page);
    await this.audit.recordAccess(ctx, 'Study', result.nodes.length, filter);
    return result;
  }

  async listSeries(ctx: RequestContext, filter: ImagingFilter, page: PageRequest): Promise<Page<Series>> {
    const result = await paginate(this.series(ctx, filter), 'series', page);
    await this.audit.recordAccess(ctx, 'Series', result.nodes.length, filter);
    return result;
  }

  async listInstances(ctx: RequestContext, filter: ImagingFilter, page: PageRequest): Promise<Page<Instance>> {
    const result = await paginate(this.instances(ctx, filter), 'instance', page);
    await this.audit.recordAccess(ctx, 'Instance', result.nodes.length, filter);
    return result;
  }

  async listJointImages(ctx: RequestContext, filter: JointImageFilter, page: PageRequest): Promise<Page<JointImage>> {
    const result = await paginate(this.jointImages(ctx, filter), 'ji', page);
    await this.audit.recordAccess(ctx, 'JointImage', result.nodes.length, filter);
    return result;
  }

  /** NOT_FOUND outside the caller's sites; audited whether answered or refused. */
  async getInstance(ctx: RequestContext, id: string): Promise<Instance> {
    try {
      const qb = this.instances(ctx).andWhere('instance.id = :id', { id });
      const instance = foundOrThrow(isUuid(id) ? await qb.getOne() : null, 'Instance', id);
      await this.audit.recordSingleRead(ctx, 'Instance', id, 'OK');
      return instance;
    } catch (error) {
      throw await this.audit.refusedRead(ctx, 'Instance', id, error);
    }
  }

  /**
   * WADO-RS: the stored (de-identified) bytes of one instance named by its study, series and instance UIDs, for
   * callers who may see the patient. NOT_FOUND outside the caller's sites. The read is audited, and so is a refusal
   * (without the UIDs asked for: a caller may type an original, identifying UID).
   */
  async retrieveInstance(ctx: RequestContext, uids: { study: string; series: string; instance: string }): Promise<Buffer> {
    try {
      // A UID of the wrong syntax (a NUL, letters, over 64 characters) names nothing; PostgreSQL would refuse a NUL.
      if (![uids.study, uids.series, uids.instance].every((uid) => DICOM_UID.test(uid))) throw notFound('Instance', 'with a malformed UID');
      const instance = foundOrThrow(
        await this.instances(ctx)
          .andWhere('instance.sop_instance_uid = :instance AND series.series_instance_uid = :series AND study.study_instance_uid = :study', uids)
          .getOne(),
        'Instance',
        uids.instance,
      );
      await this.audit.recordSingleRead(ctx, 'Instance', instance.id, 'OK', { retrieve: true });
      return await this.objects.read(instance.sha256);
    } catch (error) {
      throw await this.audit.refusedRead(ctx, 'Instance', null, error, { retrieve: true });
    }
  }

  studiesByIds(ctx: RequestContext, ids: readonly string[]): Promise<Study[]> {
    return this.audited(ctx, 'Study', { ids }, this.studies(ctx).andWhere('study.id IN (:...ids)', { ids }));
  }

  studiesByPatientIds(ctx: RequestContext, patientIds: readonly string[]): Promise<Study[]> {
    const filter = { patientIds: [...patientIds] };
    return this.audited(ctx, 'Study', filter, this.studies(ctx, filter));
  }

  seriesByIds(ctx: RequestContext, ids: readonly string[]): Promise<Series[]> {
    return this.audited(ctx, 'Series', { ids }, this.series(ctx).andWhere('series.id IN (:...ids)', { ids }));
  }

  seriesByStudyIds(ctx: RequestContext, studyIds: readonly string[]): Promise<Series[]> {
    return this.audited(ctx, 'Series', { studyIds }, this.series(ctx).andWhere('series.study_id IN (:...studyIds)', { studyIds }));
  }

  instancesByIds(ctx: RequestContext, ids: readonly string[]): Promise<Instance[]> {
    return this.audited(ctx, 'Instance', { ids }, this.instances(ctx).andWhere('instance.id IN (:...ids)', { ids }));
  }

  instancesBySeriesIds(ctx: RequestContext, seriesIds: readonly string[]): Promise<Instance[]> {
    return this.audited(ctx, 'Instance', { seriesIds }, this.instances(ctx).andWhere('instance.series_id IN (:...seriesIds)', { seriesIds }));
  }

  jointImagesByJointIds(ctx: RequestContext, jointIds: readonly string[]): Promise<JointImage[]> {
    return this.audited(ctx, 'JointImage', { jointIds }, this.jointImages(ctx).andWhere('ji.joint_id IN (:...jointIds)', { jointIds }));
  }

  /** A nested field's rows (one batch of a DataLoader), audited like a list with its parents as the filter. */
  private async audited<T extends ObjectLiteral>(ctx: RequestContext, entityType: string, filter: object, qb: SelectQueryBuilder<T>): Promise<T[]> {
    const rows = await qb.getMany();
    await this.audit.recordAccess(ctx, entityType, rows.length, filter);
    return rows;
  }
}
