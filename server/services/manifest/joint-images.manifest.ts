import type { Db } from '../../db/transaction';
import { replaceUid } from '../../dicom/uid';
import { IngestRejectionCode } from '../../domain';
import { Instance, JointImage, Series, Study } from '../../entities';
import type { AuditService } from '../audit.service';
import { readCsv, wholeNumber } from '../csv';
import { notStored, type ManifestResult } from '../import-result';
import type { NodeKeyService } from '../node-key.service';
import type { RequestContext } from '../request-context';
import { lookupJoints } from './joint-lookup';

const COLUMNS = ['patient_id', 'level', 'side', 'sop_instance_uid', 'frame', 'x', 'y', 'width', 'height'] as const;

/**
 * The joint images manifest: for each joint (patient_id, level, side) the frame of a stored instance (its original
 * SOP Instance UID, hashed like at ingest) and the region of interest around the joint, in pixels.
 */
export class JointImagesManifest {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly keys: NodeKeyService,
  ) {}

  async import(ctx: RequestContext, siteId: string, csv: string): Promise<ManifestResult> {
    const { rows, rejected } = readCsv(csv, COLUMNS);
    const key = await this.keys.identifierKey();
    const lookups = await lookupJoints(this.db, ctx, siteId, key, rows);
    const instances = await this.db
      .repo(ctx, Instance)
      .createQueryBuilder('instance')
      .innerJoin(Series, 'series', 'series.id = instance.series_id')
      .innerJoin(Study, 'study', 'study.id = series.study_id')
      .select(['instance.id AS "id"', 'instance.sop_instance_uid AS "uid"', 'instance.rows AS "rows"', 'instance.columns AS "columns"'])
      .addSelect(['instance.number_of_frames AS "frames"', 'study.patient_id AS "patientId"', 'series.modality AS "modality"'])
      .where('instance.sop_instance_uid IN (:...uids)', { uids: ['', ...rows.map((r) => replaceUid(key, r.values.sop_instance_uid ?? ''))] })
      .getRawMany<{ id: string; uid: string; rows: number; columns: number; frames: number; patientId: string }>();
    const instanceByUid = new Map(instances.map((i) => [i.uid, i]));
    const parsed: Array<{ jointId: string; instanceId: string; frame: number; roiX: number; roiY: number; roiWidth: number; roiHeight: number }> = [];
    const seen = new Set<string>();
    for (const { line, values } of rows) {
      const reject = (code: IngestRejectionCode, reason: string) => rejected.push({ source: `line ${line}`, code, reason });
      const joint = lookups.get(line);
      if (!joint || 'code' in joint) {
        if (joint) reject(joint.code, joint.reason);
        continue;
      }
      const instance = instanceByUid.get(replaceUid(key, values.sop_instance_uid ?? ''));
      if (!instance || instance.patientId !== joint.patientId) {
        reject(IngestRejectionCode.UNKNOWN_INSTANCE, 'No stored instance of this patient has this SOP Instance UID; store the DICOM first');
        continue;
      }
      const [frame, roiX, roiY, roiWidth, roiHeight] = [
        wholeNumber(values.frame || '0'),
        wholeNumber(values.x),
        wholeNumber(values.y),
        wholeNumber(values.width),
        wholeNumber(values.height),
      ];
      if (frame === null || roiX === null || roiY === null || !roiWidth || !roiHeight) {
        reject(IngestRejectionCode.INVALID_VALUE, 'frame, x, y, width and height must be whole numbers (width and height above 0)');
        continue;
      }
      if (frame >= instance.frames || roiX + roiWidth > instance.columns || roiY + roiHeight > instance.rows) {
        reject(
          IngestRejectionCode.INVALID_VALUE,
          `The region or frame lies outside the ${instance.columns} x ${instance.rows} image with ${instance.frames} frame(s)`,
        );
        continue;
      }
      const identity = `${joint.jointId}:${instance.id}:${frame}`;
      if (seen.has(identity)) {
        reject(IngestRejectionCode.DUPLICATE_ROW, 'The same joint, instance and frame appear earlier in this manifest');
        continue;
      }
      seen.add(identity);
      parsed.push({ jointId: joint.jointId, instanceId: instance.id, frame, roiX, roiY, roiWidth, roiHeight });
    }
    if (rejected.length) return notStored(rows.length, rejected);
    return this.db.transaction(ctx, async (tx) => {
      const result = await this.db
        .manager(tx)
        .createQueryBuilder()
        .insert()
        .into(JointImage)
        .values(parsed)
        .orUpdate(['roi_x', 'roi_y', 'roi_width', 'roi_height'], ['joint_id', 'instance_id', 'frame'])
        .returning('(xmax = 0) AS inserted')
        .execute();
      const created = (result.raw as Array<{ inserted: boolean }>).filter((r) => r.inserted).length;
      await this.audit.record(tx, { action: 'importJointImagesManifest', entityType: 'JointImage', siteId, details: { rows: parsed.length, created } });
      return { stored: true, rows: rows.length, created, updated: parsed.length - created, rejected: [] };
    });
  }
}
