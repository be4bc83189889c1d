import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { Db } from '../db/transaction';
import type { RequestContext } from './request-context';
import { eligiblePatient, restrictToScope } from './scope';

/**
 * The population every statistic counts, as one query base: cells of `table` (reference grades or readings, as
 * `alias`) joined to their joint, patient and site (as `joint`, `patient`, `site`), of eligible patients in the
 * caller's sites. Metrics, agreement and disclosure control add their columns and filters to it (with andWhere:
 * a where() would drop the eligibility and scope conditions), so they cannot disagree on who is in.
 */
export function gradedCells(db: Db, ctx: RequestContext, table: 'reference_grade' | 'reading', alias: string): SelectQueryBuilder<ObjectLiteral> {
  const qb = db
    .manager(ctx)
    .createQueryBuilder()
    .from(table, alias)
    .innerJoin('joint', 'joint', `joint.id = ${alias}.joint_id`)
    .innerJoin('patient', 'patient', 'patient.id = joint.patient_id')
    .innerJoin('site', 'site', 'site.id = patient.site_id')
    .where(eligiblePatient('patient'));
  return restrictToScope(qb, ctx, 'patient.site_id');
}

/**
 * The assessable reference grades (as `ref`) among the graded cells, with the keys a case is grouped and matched
 * by, and the split of `splitVersionId` (joined as `sa`; null without a split version) as "split".
 */
export function assessableReferenceCells(db: Db, ctx: RequestContext, splitVersionId: string | null | undefined): SelectQueryBuilder<ObjectLiteral> {
  const qb = gradedCells(db, ctx, 'reference_grade', 'ref')
    .select([
      'patient.id AS "patientId"',
      'joint.id AS "jointId"',
      'site.code AS "site"',
      'ref.modality AS "modality"',
      'ref.feature AS "feature"',
      'joint.level AS "level"',
      'joint.side AS "side"',
    ])
    .andWhere('NOT ref.not_assessable');
  if (splitVersionId) {
    qb.leftJoin('split_assignment', 'sa', 'sa.patient_id = patient.id AND sa.split_version_id = :sv', { sv: splitVersionId }).addSelect('sa.split AS "split"');
  } else {
    qb.addSelect('NULL AS "split"');
  }
  return qb;
}
