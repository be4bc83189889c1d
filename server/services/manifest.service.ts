import { parse } from 'csv-parse/sync';
import { In } from 'typeorm';
import type { Db } from '../db/transaction';
import { keyedHash, replaceUid } from '../dicom/uid';
import { ErrorCode, ExclusionReason, IngestRejectionCode, Level, Modality, Role, Sex, Side } from '../domain';
import { Instance, Joint, JointImage, Patient, Reader, Series, Site, Study } from '../entities';
import { AppError } from '../errors/app-error';
import type { AuditService } from './audit.service';
import { PATIENT_KEY_PURPOSE, type RejectedItem } from './ingest.service';
import type { NodeKeyService } from './node-key.service';
import { randomDateShift, type PatientService } from './patient.service';
import type { ReadingService, RecordReading } from './reading.service';
import { assertSiteInScope, requireRole, siteScope, type RequestContext } from './request-context';

/** The answer to a manifest upload: how many rows landed (all or none) and every rejected row. */
export interface ManifestResult {
  stored: boolean;
  rows: number;
  created: number;
  updated: number;
  rejected: RejectedItem[];
}

export const PATIENT_COLUMNS = ['site', 'patient_id', 'pseudonym', 'sex', 'age', 'eligible', 'exclusion_reasons'] as const;
const REQUIRED_PATIENT_COLUMNS = ['site', 'patient_id'];
export const JOINT_IMAGE_COLUMNS = ['patient_id', 'level', 'side', 'sop_instance_uid', 'frame', 'x', 'y', 'width', 'height'] as const;
export const READING_COLUMNS = ['reader', 'patient_id', 'level', 'side', 'modality', 'feature', 'grade'] as const;

interface CsvRow {
  line: number;
  values: Record<string, string>;
}

/** RFC 4180 CSV with a header row (UTF-8, optional BOM); each row keeps its line number for the answer. */
export function readCsv(text: string, required: readonly string[]): { rows: CsvRow[]; rejected: RejectedItem[] } {
  let records: Array<{ record: Record<string, string>; info: { lines: number } }>;
  try {
    records = parse(text, {
      columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()),
      bom: true,
      skip_empty_lines: true,
      trim: true,
      info: true,
    });
  } catch (error) {
    return { rows: [], rejected: [{ source: 'file', code: IngestRejectionCode.MALFORMED_CSV, reason: (error as Error).message }] };
  }
  const header = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/, 1)[0]
    .split(',')
    .map((h) => h.trim().toLowerCase().replace(/^"|"$/g, ''));
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length) {
    return {
      rows: [],
      rejected: [{ source: 'line 1', code: IngestRejectionCode.MALFORMED_CSV, reason: `The header lacks the column(s) ${missing.join(', ')}` }],
    };
  }
  return { rows: records.map((r) => ({ line: r.info.lines, values: r.record })), rejected: [] };
}

const SEX: Record<string, Sex> = {
  f: Sex.FEMALE,
  female: Sex.FEMALE,
  m: Sex.MALE,
  male: Sex.MALE,
  o: Sex.OTHER,
  other: Sex.OTHER,
  '': Sex.UNKNOWN,
  u: Sex.UNKNOWN,
  unknown: Sex.UNKNOWN,
};
const YES = new Set(['yes', 'y', 'true', '1']);
const NO = new Set(['no', 'n', 'false', '0']);

/**
 * Cohort manifests: CSV files that create or update patients (keyed by the hash of the hospital patient ID, which
 * is never stored). A manifest lands whole or not at all; the answer lists every rejected row with its line.
 */
export class ManifestService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly keys: NodeKeyService,
    private readonly patients: PatientService,
    private readonly readings: ReadingService,
  ) {}

  async importPatients(ctx: RequestContext, csv: string): Promise<ManifestResult> {
    requireRole(ctx, Role.COORDINATOR);
    const { rows, rejected } = readCsv(csv, REQUIRED_PATIENT_COLUMNS);
    const key = await this.keys.identifierKey();
    const scope = siteScope(ctx);
    const sites = new Map((await this.db.repo(ctx, Site).find()).map((s) => [s.code, s]));
    const seen = new Set<string>();
    const parsed: Array<{ line: number; site: Site; patientKey: string; pseudonym: string | null; sex: Sex; age: number | null; reasons: ExclusionReason[] }> =
      [];
    for (const { line, values } of rows) {
      const source = `line ${line}`;
      const reject = (code: IngestRejectionCode, reason: string) => rejected.push({ source, code, reason });
      const site = sites.get(values.site ?? '');
      if (!site) {
        reject(IngestRejectionCode.UNKNOWN_SITE, `No site with code ${JSON.stringify(values.site ?? '')}`);
        continue;
      }
      if (scope && !scope.includes(site.id)) {
        reject(IngestRejectionCode.SITE_OUT_OF_SCOPE, `Site ${site.code} is outside your token’s scope`);
        continue;
      }
      const patientId = values.patient_id ?? '';
      if (!patientId) {
        reject(IngestRejectionCode.INVALID_VALUE, 'patient_id is empty');
        continue;
      }
      const sexText = (values.sex ?? '').toLowerCase();
      const sex = Object.hasOwn(SEX, sexText) ? SEX[sexText] : undefined;
      if (!sex) {
        reject(IngestRejectionCode.INVALID_VALUE, `sex must be F, M, O or empty, got ${JSON.stringify(values.sex)}`);
        continue;
      }
      const age = values.age ? Number(values.age) : null;
      if (age !== null && !(Number.isInteger(age) && age >= 0 && age <= 120)) {
        reject(IngestRejectionCode.INVALID_VALUE, `age must be a whole number of years from 0 to 120, got ${JSON.stringify(values.age)}`);
        continue;
      }
      const reasons = (values.exclusion_reasons ?? '')
        .split(/[;|]/)
        .map((r) => r.trim().toUpperCase())
        .filter(Boolean);
      const unknown = reasons.filter((r) => !(r in ExclusionReason));
      if (unknown.length) {
        reject(IngestRejectionCode.INVALID_VALUE, `Unknown exclusion reason(s) ${unknown.join(', ')}; use ${Object.values(ExclusionReason).join(', ')}`);
        continue;
      }
      const eligible = (values.eligible ?? '').toLowerCase();
      if (eligible && !YES.has(eligible) && !NO.has(eligible)) {
        reject(IngestRejectionCode.INVALID_VALUE, `eligible must be yes or no, got ${JSON.stringify(values.eligible)}`);
        continue;
      }
      if ((YES.has(eligible) && reasons.length) || (NO.has(eligible) && !reasons.length)) {
        reject(IngestRejectionCode.INVALID_VALUE, 'eligible must be no exactly when exclusion_reasons are given');
        continue;
      }
      const pseudonym = values.pseudonym || null;
      if (pseudonym && !/^[A-Za-z0-9_-]{1,64}$/.test(pseudonym)) {
        reject(IngestRejectionCode.INVALID_VALUE, 'pseudonym may hold letters, digits, - and _ only (at most 64)');
        continue;
      }
      if (pseudonym && pseudonym.toLowerCase() === patientId.toLowerCase()) {
        // The pseudonym is written into every stored object as Patient's Name and ID: it must not be the hospital ID.
        reject(IngestRejectionCode.INVALID_VALUE, 'pseudonym must not be the patient_id');
        continue;
      }
      const patientKey = keyedHash(key, PATIENT_KEY_PURPOSE, patientId);
      if (seen.has(`${site.id}:${patientKey}`)) {
        reject(IngestRejectionCode.DUPLICATE_ROW, 'The same patient_id appears earlier in this manifest');
        continue;
      }
      seen.add(`${site.id}:${patientKey}`);
      parsed.push({ line, site, patientKey, pseudonym, sex, age, reasons: reasons as ExclusionReason[] });
    }
    if (rejected.length) return { stored: false, rows: rows.length, created: 0, updated: 0, rejected };

    return this.db
      .transaction(ctx, async (tx) => {
        const repo = this.db.repo(tx, Patient);
        const existing = parsed.length ? await repo.findBy({ patientKey: In(parsed.map((p) => p.patientKey)) }) : [];
        const bySiteKey = new Map(existing.map((p) => [`${p.siteId}:${p.patientKey}`, p]));
        let created = 0;
        const conflicts: RejectedItem[] = [];
        for (const row of parsed) {
          const current = bySiteKey.get(`${row.site.id}:${row.patientKey}`);
          const pseudonym = row.pseudonym ?? current?.pseudonym ?? `${row.site.code}-${row.patientKey.slice(0, 10).toUpperCase()}`;
          const taken = await repo.findOneBy({ siteId: row.site.id, pseudonym });
          if (taken && taken.id !== current?.id) {
            conflicts.push({
              source: `line ${row.line}`,
              code: IngestRejectionCode.CONFLICT,
              reason: `Pseudonym ${pseudonym} belongs to another patient of ${row.site.code}`,
            });
            continue;
          }
          if (current) {
            Object.assign(current, { pseudonym, sex: row.sex, ageAtFirstImaging: row.age, exclusionReasons: row.reasons });
            await repo.save(current);
          } else {
            const patient = await repo.save(
              repo.create({
                siteId: row.site.id,
                pseudonym,
                patientKey: row.patientKey,
                sex: row.sex,
                ageAtFirstImaging: row.age,
                exclusionReasons: row.reasons,
                dateShiftDays: randomDateShift(),
              }),
            );
            await this.patients.insertJoints(tx, patient.id);
            created++;
          }
        }
        if (conflicts.length) throw new ManifestRejected(conflicts);
        await this.audit.record(tx, {
          action: 'importPatientsManifest',
          entityType: 'Patient',
          details: { rows: parsed.length, created, updated: parsed.length - created },
        });
        return { stored: true, rows: rows.length, created, updated: parsed.length - created, rejected: [] };
      })
      .catch((error: unknown) => {
        if (error instanceof ManifestRejected) return { stored: false, rows: rows.length, created: 0, updated: 0, rejected: error.rejected };
        throw error;
      });
  }

  /**
   * Joint images manifest: for each joint (patient_id, level, side) the frame of a stored instance (its original
   * SOP Instance UID, hashed like at ingest) and the region of interest around the joint, in pixels.
   */
  async importJointImages(ctx: RequestContext, siteId: string, csv: string): Promise<ManifestResult> {
    requireRole(ctx, Role.COORDINATOR);
    assertSiteInScope(ctx, siteId);
    const { rows, rejected } = readCsv(csv, JOINT_IMAGE_COLUMNS);
    const key = await this.keys.identifierKey();
    const lookups = await this.lookupJoints(ctx, siteId, key, rows);
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
        count(values.frame || '0'),
        count(values.x),
        count(values.y),
        count(values.width),
        count(values.height),
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
    if (rejected.length) return { stored: false, rows: rows.length, created: 0, updated: 0, rejected };
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

  /**
   * Readings manifest: grades read elsewhere, recorded as each named reader's reading through the same rules
   * as the recordReading mutation (one grade per reader and cell, two readers per cell, the grading scale,
   * agreement becoming the reference grade). All rows or none.
   */
  async importReadings(ctx: RequestContext, siteId: string, csv: string): Promise<ManifestResult> {
    requireRole(ctx, Role.COORDINATOR);
    assertSiteInScope(ctx, siteId);
    const { rows, rejected } = readCsv(csv, READING_COLUMNS);
    const key = await this.keys.identifierKey();
    const lookups = await this.lookupJoints(ctx, siteId, key, rows);
    const readers = new Map((await this.db.repo(ctx, Reader).find()).map((r) => [r.code, r]));
    const parsed: Array<{ line: number; reader: Reader; input: RecordReading }> = [];
    const seen = new Set<string>();
    for (const { line, values } of rows) {
      const reject = (code: IngestRejectionCode, reason: string) => rejected.push({ source: `line ${line}`, code, reason });
      const reader = readers.get(values.reader ?? '');
      if (!reader || (reader.siteId !== null && reader.siteId !== siteId)) {
        reject(IngestRejectionCode.UNKNOWN_READER, `No reader ${JSON.stringify(values.reader ?? '')} reads for this site`);
        continue;
      }
      const joint = lookups.get(line);
      if (!joint || 'code' in joint) {
        if (joint) reject(joint.code, joint.reason);
        continue;
      }
      const modality = (values.modality ?? '').toUpperCase();
      if (!(modality in Modality)) {
        reject(IngestRejectionCode.INVALID_VALUE, `modality must be XR, CT or MR, got ${JSON.stringify(values.modality)}`);
        continue;
      }
      const gradeText = (values.grade ?? '').toUpperCase();
      const notAssessable = gradeText === 'NA';
      if (!notAssessable && count(gradeText) === null) {
        reject(IngestRejectionCode.INVALID_VALUE, `grade must be a whole number or NA, got ${JSON.stringify(values.grade)}`);
        continue;
      }
      const input: RecordReading = {
        jointId: joint.jointId,
        modality: modality as Modality,
        feature: (values.feature ?? '').toUpperCase(),
        ...(notAssessable ? { notAssessable: true } : { grade: count(gradeText) }),
      };
      const identity = `${reader.id}:${input.jointId}:${input.modality}:${input.feature}`;
      if (seen.has(identity)) {
        reject(IngestRejectionCode.DUPLICATE_ROW, 'The same reader grades the same joint-feature earlier in this manifest');
        continue;
      }
      seen.add(identity);
      parsed.push({ line, reader, input });
    }
    if (rejected.length) return { stored: false, rows: rows.length, created: 0, updated: 0, rejected };
    return this.db
      .transaction(ctx, async (tx) => {
        for (const row of parsed) {
          const asReader: RequestContext = {
            requestId: tx.requestId,
            clientRequestId: tx.clientRequestId,
            manager: tx.manager,
            actor: {
              tokenId: tx.actor?.tokenId ?? null,
              name: `manifest as ${row.reader.code}`,
              role: Role.READER,
              siteId,
              readerId: row.reader.id,
              readerRole: row.reader.role,
            },
          };
          try {
            await this.readings.recordReading(asReader, row.input);
          } catch (error) {
            if (!(error instanceof AppError)) throw error;
            const code = error.code === ErrorCode.BAD_USER_INPUT ? IngestRejectionCode.INVALID_VALUE : IngestRejectionCode.RULE_VIOLATION;
            throw new ManifestRejected([{ source: `line ${row.line}`, code, reason: error.message }]);
          }
        }
        await this.audit.record(tx, { action: 'importReadingsManifest', entityType: 'Reading', siteId, details: { rows: parsed.length } });
        return { stored: true, rows: rows.length, created: parsed.length, updated: 0, rejected: [] };
      })
      .catch((error: unknown) => {
        if (error instanceof ManifestRejected) return { stored: false, rows: rows.length, created: 0, updated: 0, rejected: error.rejected };
        throw error;
      });
  }

  /** Each row's joint (patient by keyed hash of patient_id at the site, level, side), or why not. */
  private async lookupJoints(
    ctx: RequestContext,
    siteId: string,
    key: Buffer,
    rows: CsvRow[],
  ): Promise<Map<number, { jointId: string; patientId: string } | { code: IngestRejectionCode; reason: string }>> {
    const keys = rows.map((r) => keyedHash(key, PATIENT_KEY_PURPOSE, r.values.patient_id ?? ''));
    const joints = await this.db
      .repo(ctx, Joint)
      .createQueryBuilder('joint')
      .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id')
      .select(['joint.id AS "jointId"', 'joint.level AS "level"', 'joint.side AS "side"', 'patient.id AS "patientId"', 'patient.patient_key AS "patientKey"'])
      .where('patient.site_id = :siteId', { siteId })
      .andWhere('patient.patient_key IN (:...keys)', { keys: ['', ...keys] })
      .getRawMany<{ jointId: string; level: Level; side: Side; patientId: string; patientKey: string }>();
    const byCell = new Map(joints.map((j) => [`${j.patientKey}:${j.level}:${j.side}`, j]));
    const known = new Set(joints.map((j) => j.patientKey));
    const result = new Map<number, { jointId: string; patientId: string } | { code: IngestRejectionCode; reason: string }>();
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
}

/** Thrown inside the manifest transaction to roll it back and answer with the rejected rows. */
class ManifestRejected extends Error {
  constructor(readonly rejected: RejectedItem[]) {
    super('manifest rejected');
  }
}

/** Parses a non-negative integer cell, or null. */
const count = (text: string | undefined): number | null => (text !== undefined && /^\d+$/.test(text) ? Number(text) : null);
