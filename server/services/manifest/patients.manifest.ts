import { In } from 'typeorm';
import type { Db } from '../../db/transaction';
import { ExclusionReason, IngestRejectionCode, Sex } from '../../domain';
import { Patient, Site } from '../../entities';
import type { AuditService } from '../audit.service';
import { readCsv, siteOfRow } from '../csv';
import { notStored, notStoredWhenRejected, RowsRejected, type ManifestResult, type RejectedItem } from '../import-result';
import type { NodeKeyService } from '../node-key.service';
import { patientKeyOf } from '../patient-key';
import { randomDateShift, type PatientService } from '../patient.service';
import { siteScope, type RequestContext } from '../request-context';

/** Required; the other columns (pseudonym, sex, age, eligible, exclusion_reasons) may be left out or empty. */
const REQUIRED_COLUMNS = ['site', 'patient_id'];

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
 * The patients manifest: creates or updates patients (keyed by the hash of the hospital patient ID, which is never
 * stored) at the sites in the caller's scope; a new patient gets their ten joints.
 */
export class PatientsManifest {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly keys: NodeKeyService,
    private readonly patients: PatientService,
  ) {}

  async import(ctx: RequestContext, csv: string): Promise<ManifestResult> {
    const { rows, rejected } = readCsv(csv, REQUIRED_COLUMNS);
    const key = await this.keys.identifierKey();
    const scope = siteScope(ctx);
    const sites = new Map((await this.db.repo(ctx, Site).find()).map((s) => [s.code, s]));
    const seen = new Set<string>();
    const parsed: Array<{ line: number; site: Site; patientKey: string; pseudonym: string | null; sex: Sex; age: number | null; reasons: ExclusionReason[] }> =
      [];
    for (const { line, values } of rows) {
      const source = `line ${line}`;
      const reject = (code: IngestRejectionCode, reason: string) => rejected.push({ source, code, reason });
      const site = siteOfRow(sites, scope, values.site);
      if ('reason' in site) {
        reject(site.code, site.reason);
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
      const patientKey = patientKeyOf(key, patientId);
      if (seen.has(`${site.id}:${patientKey}`)) {
        reject(IngestRejectionCode.DUPLICATE_ROW, 'The same patient_id appears earlier in this manifest');
        continue;
      }
      seen.add(`${site.id}:${patientKey}`);
      parsed.push({ line, site, patientKey, pseudonym, sex, age, reasons: reasons as ExclusionReason[] });
    }
    if (rejected.length) return notStored(rows.length, rejected);

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
        if (conflicts.length) throw new RowsRejected(conflicts);
        await this.audit.record(tx, {
          action: 'importPatientsManifest',
          entityType: 'Patient',
          details: { rows: parsed.length, created, updated: parsed.length - created },
        });
        return { stored: true, rows: rows.length, created, updated: parsed.length - created, rejected: [] };
      })
      .catch(notStoredWhenRejected(rows.length));
  }
}
