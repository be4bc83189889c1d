import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { GradeFilter, JointFilter, PatientFilter } from '../domain';
import { siteScope, type RequestContext } from './request-context';

/**
 * Query-builder clauses shared by every patient-level query. The site scope of the caller is applied here,
 * in one place, so no query path (root, nested, loader) can skip it.
 */

let parameterCounter = 0;
/** Parameter names must be unique within one query builder; several clauses may apply to one query. */
const param = (base: string): string => `${base}_${(parameterCounter = (parameterCounter + 1) % 1_000_000)}`;

export function restrictToScope<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, ctx: RequestContext, siteColumn: string): SelectQueryBuilder<T> {
  const scope = siteScope(ctx);
  if (scope === null) return qb;
  if (scope.length === 0) return qb.andWhere('1 = 0');
  const p = param('scope');
  return qb.andWhere(`${siteColumn} IN (:...${p})`, { [p]: scope });
}

function whereIn<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, column: string, values: readonly unknown[] | null | undefined): void {
  if (!values) return;
  if (values.length === 0) {
    qb.andWhere('1 = 0');
    return;
  }
  const p = param('v');
  qb.andWhere(`${column} IN (:...${p})`, { [p]: values });
}

/**
 * Eligible for the study: a patient without exclusion reasons, as SQL over the patient row `patient`. The one
 * definition the statistics (graded-cells.ts), the study flow, splits and the patient filter share.
 */
export const eligiblePatient = (patient: string): string => `cardinality(${patient}.exclusion_reasons) = 0`;

/** `patient` is the alias of the patient row the query reaches. */
export function applyPatientFilter<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  ctx: RequestContext,
  patient: string,
  filter: PatientFilter = {},
): SelectQueryBuilder<T> {
  restrictToScope(qb, ctx, `${patient}.site_id`);
  whereIn(qb, `${patient}.site_id`, filter.siteIds);
  if (filter.eligible === true) qb.andWhere(eligiblePatient(patient));
  if (filter.eligible === false) qb.andWhere(`NOT (${eligiblePatient(patient)})`);
  if (filter.split) {
    const v = param('splitVersion');
    const s = param('split');
    qb.andWhere(`EXISTS (SELECT 1 FROM split_assignment sa WHERE sa.patient_id = ${patient}.id AND sa.split_version_id = :${v} AND sa.split = :${s})`, {
      [v]: filter.split.splitVersionId,
      [s]: filter.split.split,
    });
  }
  return qb;
}

export function applyJointFilter<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  ctx: RequestContext,
  aliases: { joint: string; patient: string },
  filter: JointFilter = {},
): SelectQueryBuilder<T> {
  applyPatientFilter(qb, ctx, aliases.patient, filter);
  whereIn(qb, `${aliases.patient}.id`, filter.patientIds);
  whereIn(qb, `${aliases.joint}.level`, filter.levels);
  whereIn(qb, `${aliases.joint}.side`, filter.sides);
  return qb;
}

/** For readings, adjudications and reference grades: `cell` has joint_id, modality and feature. */
export function applyGradeFilter<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  ctx: RequestContext,
  aliases: { cell: string; joint: string; patient: string },
  filter: GradeFilter = {},
): SelectQueryBuilder<T> {
  applyJointFilter(qb, ctx, aliases, filter);
  whereIn(qb, `${aliases.cell}.modality`, filter.modalities);
  whereIn(qb, `${aliases.cell}.feature`, filter.features);
  return qb;
}

export { whereIn };
