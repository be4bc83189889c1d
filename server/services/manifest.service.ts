import { parse } from 'csv-parse/sync';
import { In } from 'typeorm';
import type { Db } from '../db/transaction';
import { keyedHash } from '../dicom/uid';
import { ExclusionReason, IngestRejectionCode, Role, Sex } from '../domain';
import { Patient, Site } from '../entities';
import type { AuditService } from './audit.service';
import { PATIENT_KEY_PURPOSE, type RejectedItem } from './ingest.service';
import type { NodeKeyService } from './node-key.service';
import { randomDateShift, type PatientService } from './patient.service';
import { requireRole, siteScope, type RequestContext } from './request-context';

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

interface CsvRow {
  line: number;
  values: Record<string, string>;
}

/** RFC 4180 CSV with a header row (UTF-8, optional BOM); each row keeps its line number for the answer. */
export function readCsv(text: string, required: readonly string[]): { rows: CsvRow[]; rejected: RejectedItem[] } {
  let records: Array<{ record: Record<string, string>; info: { lines: number } }>;
  try {
    records = parse(text, { columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()), bom: true, skip_empty_lines: true, trim: true, info: true });
  } catch (error) {
    return { rows: [], rejected: [{ source: 'file', code: IngestRejectionCode.MALFORMED_CSV, reason: (error as Error).message }] };
  }
  const header = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0].split(',').map((h) => h.trim().toLowerCase().replace(/^"|"$/g, ''));
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length) {
    return { rows: [], rejected: [{ source: 'line 1', code: IngestRejectionCode.MALFORMED_CSV, reason: `The header lacks the column(s) ${missing.join(', ')}` }] };
  }
  return { rows: records.map((r) => ({ line: r.info.lines, values: r.record })), rejected: [] };
}

const SEX: Record<string, Sex> = { f: Sex.FEMALE, female: Sex.FEMALE, m: Sex.MALE, male: Sex.MALE, o: Sex.OTHER, other: Sex.OTHER, '': Sex.UNKNOWN, u: Sex.UNKNOWN, unknown: Sex.UNKNOWN };
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
  ) {}

  async importPatients(ctx: RequestContext, csv: string): Promise<ManifestResult> {
    requireRole(ctx, Role.COORDINATOR);
    const { rows, rejected } = readCsv(csv, REQUIRED_PATIENT_COLUMNS);
    const key = await this.keys.identifierKey();
    const scope = siteScope(ctx);
    const sites = new Map((await this.db.repo(ctx, Site).find()).map((s) => [s.code, s]));
    const seen = new Set<string>();
    const parsed: Array<{ line: number; site: Site; patientKey: string; pseudonym: string | null; sex: Sex; age: number | null; reasons: ExclusionReason[] }> = [];
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
      const sex = SEX[(values.sex ?? '').toLowerCase()];
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
      const patientKey = keyedHash(key, PATIENT_KEY_PURPOSE, patientId);
      if (seen.has(`${site.id}:${patientKey}`)) {
        reject(IngestRejectionCode.DUPLICATE_ROW, 'The same patient_id appears earlier in this manifest');
        continue;
      }
      seen.add(`${site.id}:${patientKey}`);
      parsed.push({ line, site, patientKey, pseudonym, sex, age, reasons: reasons as ExclusionReason[] });
    }
    if (rejected.length) return { stored: false, rows: rows.length, created: 0, updated: 0, rejected };

    return this.db.transaction(ctx, async (tx) => {
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
          conflicts.push({ source: `line ${row.line}`, code: IngestRejectionCode.CONFLICT, reason: `Pseudonym ${pseudonym} belongs to another patient of ${row.site.code}` });
          continue;
        }
        if (current) {
          Object.assign(current, { pseudonym, sex: row.sex, ageAtFirstImaging: row.age, exclusionReasons: row.reasons });
          await repo.save(current);
        } else {
          const patient = await repo.save(
            repo.create({ siteId: row.site.id, pseudonym, patientKey: row.patientKey, sex: row.sex, ageAtFirstImaging: row.age, exclusionReasons: row.reasons, dateShiftDays: randomDateShift() }),
          );
          await this.patients.insertJoints(tx, patient.id);
          created++;
        }
      }
      if (conflicts.length) throw new ManifestRejected(conflicts);
      await this.audit.record(tx, { action: 'importPatientsManifest', entityType: 'Patient', details: { rows: parsed.length, created, updated: parsed.length - created } });
      return { stored: true, rows: rows.length, created, updated: parsed.length - created, rejected: [] };
    }).catch((error: unknown) => {
      if (error instanceof ManifestRejected) return { stored: false, rows: rows.length, created: 0, updated: 0, rejected: error.rejected };
      throw error;
    });
  }

}

/** Thrown inside the manifest transaction to roll it back and answer with the rejected rows. */
class ManifestRejected extends Error {
  constructor(readonly rejected: RejectedItem[]) {
    super('manifest rejected');
  }
}
