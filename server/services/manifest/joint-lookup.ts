import type { Db } from '../../db/transaction';
import { IngestRejectionCode, Level, Side } from '../../domain';
import { Joint, Patient } from '../../entities';
import type { CsvRow } from '../csv';
import { patientKeyOf } from '../patient-key';
import type { RequestContext } from '../request-context';

/** A manifest row's joint, or why the row names none. */
export type JointLookup = { jointId: string; patientId: string } | { code: IngestRejectionCode; reason: string };

/**
 * Each row's joint (its patient by the keyed hash of patient_id at the site, its level and side), by line: the
 * rows of the joint images and readings manifests name joints alike.
 */
export async function lookupJoints(db: Db, ctx: RequestContext, siteId: string, nodeKey: Buffer, rows: CsvRow[]): Promise<Map<number, JointLookup>> {
  const keys = rows.map((r) => patientKeyOf(nodeKey, r.values.patient_id ?? ''));
  const joints = await db
    .repo(ctx, Joint)
    .createQueryBuilder('joint')
    .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id')
    .select(['joint.id AS "jointId"', 'joint.level AS "level"', 'joint.side AS "side"', 'patient.id AS "patientId"', 'patient.patient_key AS "patientKey"'])
    .where('patient.site_id = :siteId', { siteId })
    .andWhere('patient.patient_key IN (:...keys)', { keys: ['', ...keys] })
    .getRawMany<{ jointId: string; level: Level; side: Side; patientId: string; patientKey: string }>();
  const byCell = new Map(joints.map((j) => [`${j.patientKey}:${j.level}:${j.side}`, j]));
  const known = new Set(joints.map((j) => j.patientKey));
  const result = new Map<number, JointLookup>();
  rows.forEach((row, i) => {
    const level = (row.values.level ?? '').toUpperCase().replace('/', '_');
    const side = (row.values.side ?? '').toUpperCase();
    if (!known.has(keys[i])) {
      result.set(row.line, {
        code: IngestRejectionCode.UNKNOWN_PATIENT,
        reason: 'No patient of this site has this patient_id; import the patients manifest first',
      });
    } else if (!(level in Level) || !(side in Side)) {
      result.set(row.line, {
        code: IngestRejectionCode.INVALID_VALUE,
        reason: `level must be L1_L2…L5_S1 (or L1/L2…) and side LEFT or RIGHT, got ${row.values.level} ${row.values.side}`,
      });
    } else {
      const joint = byCell.get(`${keys[i]}:${level}:${side}`) as { jointId: string; patientId: string };
      result.set(row.line, { jointId: joint.jointId, patientId: joint.patientId });
    }
  });
  return result;
}
