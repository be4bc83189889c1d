import { createHash } from 'node:crypto';
import { In } from 'typeorm';
import type { Db } from '../db/transaction';
import { IMPORTED_REFERENCE_SOURCES, IngestRejectionCode, Level, Modality, ReaderRole, ReferenceSource, Role, Side, type PageRequest } from '../domain';
import { GradingFeature, Joint, Patient, ReferenceGrade, ReferenceImport, Site } from '../entities';
import { notFound } from '../errors/app-error';
import type { AuditService } from './audit.service';
import { readCsv, siteOfRow, type CsvRow } from './csv';
import { RowsRejected, type ManifestResult, type RejectedItem } from './import-result';
import { paginate, type Page } from './pagination';
import type { ReaderService } from './reader.service';
import { requireActor, requireRole, siteScope, type RequestContext } from './request-context';
import { restrictToScope } from './scope';

/** `patient` is the study pseudonym (as in the predictions file): the panel graded de-identified images. */
export const REFERENCE_COLUMNS = ['site', 'patient', 'level', 'side', 'modality', 'feature', 'grade', 'source'] as const;

export interface ReferenceImportResult extends ManifestResult {
  /** The import the file became, or the earlier import of the same file; null when rejected. */
  import: ReferenceImport | null;
}

/** The grades of an import one senior confirmed at one site. */
export interface ReferenceConfirmation {
  siteId: string;
  confirmedById: string;
  /** The last confirmation of that senior at that site. */
  confirmedAt: Date;
  grades: number;
}

/** The grades of an import in the caller's scope, and how many of them the senior group confirmed. */
export interface ReferenceImportProgress {
  grades: number;
  confirmedGrades: number;
}

interface ParsedRow {
  line: number;
  siteId: string;
  jointId: string;
  modality: Modality;
  feature: string;
  grade: number | null;
  notAssessable: boolean;
  source: ReferenceSource;
}

const cellKey = (c: { jointId: string; modality: string; feature: string }) => `${c.jointId}:${c.modality}:${c.feature}`;

/**
 * Reference standards established outside the reading workflow (a consensus panel, an external read), imported as
 * one CSV file: all rows or none, every rejected row with its reason. The grades land unconfirmed, pointing to the
 * import (file sha256, who, when); each site's senior then confirms their site's grades in one call, with their
 * own token, after they have seen them. The file never overrides a confirmed grade or another file's.
 */
export class ReferenceImportService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly readers: ReaderService,
  ) {}

  async importReferenceStandard(ctx: RequestContext, csv: string): Promise<ReferenceImportResult> {
    const actor = requireRole(ctx, Role.COORDINATOR);
    const { rows, rejected } = readCsv(csv, REFERENCE_COLUMNS);
    const answer = (result: Partial<ReferenceImportResult>): ReferenceImportResult => ({
      stored: false,
      rows: rows.length,
      created: 0,
      updated: 0,
      rejected: [],
      import: null,
      ...result,
    });
    if (rejected.length) return answer({ rejected });
    const parsed = await this.parseRows(ctx, rows, rejected);
    if (rejected.length) return answer({ rejected });

    const sha256 = createHash('sha256').update(csv, 'utf8').digest('hex');
    const earlier = await this.db.repo(ctx, ReferenceImport).findOneBy({ sha256 });
    // The same bytes again (a retried upload): nothing to do, and the answer names what the first upload became.
    if (earlier) return answer({ stored: true, import: earlier });

    return this.db
      .transaction(ctx, async (tx) => {
        const existing = await this.lockExisting(tx, parsed);
        const conflicts: RejectedItem[] = [];
        const replaced: Array<{ row: ParsedRow; before: ReferenceGrade }> = [];
        const created: ParsedRow[] = [];
        for (const row of parsed) {
          const before = existing.get(cellKey(row));
          if (!before) created.push(row);
          else if (before.confirmedAt || before.importId) {
            const what = `${before.source}, ${before.notAssessable ? 'not assessable' : `grade ${before.grade}`}`;
            conflicts.push({
              source: `line ${row.line}`,
              code: IngestRejectionCode.CONFLICT,
              reason: before.confirmedAt
                ? `This cell's reference grade (${what}) is confirmed and locked`
                : `This cell's reference grade (${what}) came from reference import ${before.importId}`,
            });
          } else replaced.push({ row, before });
        }
        if (conflicts.length) throw new RowsRejected(conflicts);

        const sources = [...new Set(parsed.map((r) => r.source))].sort();
        const repo = this.db.repo(tx, ReferenceImport);
        const saved = await repo.save(
          repo.create({
            sha256,
            rows: rows.length,
            created: created.length,
            replaced: replaced.length,
            sources,
            importedByTokenId: actor.tokenId,
            importedBy: actor.name,
          }),
        );
        const manager = this.db.manager(tx);
        // One statement each however long the file (12,000 rows would pass Postgres's 65,535 bind parameters as
        // a multi-row VALUES).
        if (created.length) {
          await manager.query(
            `INSERT INTO reference_grade (joint_id, modality, feature, grade, not_assessable, source, import_id)
             SELECT v.joint_id, v.modality::modality, v.feature, v.grade, v.not_assessable, v.source::reference_source, $1
             FROM unnest($2::uuid[], $3::text[], $4::text[], $5::smallint[], $6::boolean[], $7::text[]) AS v(joint_id, modality, feature, grade, not_assessable, source)`,
            [saved.id, ...columnsOf(created)],
          );
        }
        if (replaced.length) {
          await manager.query(
            `UPDATE reference_grade r SET grade = v.grade, not_assessable = v.not_assessable, source = v.source::reference_source, import_id = $1, updated_at = now()
             FROM unnest($2::uuid[], $3::smallint[], $4::boolean[], $5::text[]) AS v(id, grade, not_assessable, source) WHERE r.id = v.id`,
            [
              saved.id,
              replaced.map((r) => r.before.id),
              replaced.map((r) => r.row.grade),
              replaced.map((r) => r.row.notAssessable),
              replaced.map((r) => r.row.source),
            ],
          );
        }
        for (const siteId of [...new Set(parsed.map((r) => r.siteId))].sort()) {
          const ofSite = <T extends { siteId: string }>(list: T[]) => list.filter((r) => r.siteId === siteId);
          await this.audit.record(tx, {
            action: 'importReferenceStandard',
            entityType: 'ReferenceImport',
            entityId: saved.id,
            siteId,
            details: {
              sha256,
              created: ofSite(created).length,
              // What the file replaced, so the readers' own reference can be told apart later.
              replaced: replaced
                .filter((r) => r.row.siteId === siteId)
                .map(({ before }) => ({ id: before.id, source: before.source, grade: before.grade, notAssessable: before.notAssessable })),
            },
          });
        }
        return answer({ stored: true, created: created.length, updated: replaced.length, import: saved });
      })
      .catch((error: unknown) => {
        if (error instanceof RowsRejected) return answer({ rejected: error.rejected });
        throw error;
      });
  }

  /** Each row checked against the sites, patients, grading scheme and sources; the bad ones go to `rejected`. */
  private async parseRows(ctx: RequestContext, rows: CsvRow[], rejected: RejectedItem[]): Promise<ParsedRow[]> {
    const scope = siteScope(ctx);
    const sites = new Map((await this.db.repo(ctx, Site).find()).map((s) => [s.code, s]));
    const features = new Map((await this.db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f.grades.map((g) => g.grade)]));
    const named = [...new Set(rows.map((r) => sites.get(r.values.site ?? '')?.id).filter((id): id is string => !!id))];
    const joints = named.length
      ? await this.db
          .repo(ctx, Joint)
          .createQueryBuilder('joint')
          .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id')
          .select(['joint.id AS "id"', 'joint.level AS "level"', 'joint.side AS "side"', 'patient.pseudonym AS "pseudonym"', 'patient.site_id AS "siteId"'])
          .where('patient.site_id IN (:...named)', { named })
          .getRawMany<{ id: string; level: Level; side: Side; pseudonym: string; siteId: string }>()
      : [];
    const jointOf = new Map(joints.map((j) => [`${j.siteId}:${j.pseudonym}:${j.level}:${j.side}`, j.id]));
    const patientsOf = new Set(joints.map((j) => `${j.siteId}:${j.pseudonym}`));
    const parsed: ParsedRow[] = [];
    const seen = new Set<string>();
    for (const { line, values } of rows) {
      const reject = (code: IngestRejectionCode, reason: string) => rejected.push({ source: `line ${line}`, code, reason });
      const site = siteOfRow(sites, scope, values.site);
      if ('reason' in site) {
        reject(site.code, site.reason);
        continue;
      }
      const patient = values.patient ?? '';
      if (!patientsOf.has(`${site.id}:${patient}`)) {
        reject(
          IngestRejectionCode.UNKNOWN_PATIENT,
          `No patient of ${site.code} has the pseudonym ${JSON.stringify(patient)} (the file names patients by pseudonym, not hospital ID)`,
        );
        continue;
      }
      const level = (values.level ?? '').toUpperCase().replace('/', '_');
      const side = (values.side ?? '').toUpperCase();
      const modality = (values.modality ?? '').toUpperCase();
      const feature = (values.feature ?? '').toUpperCase();
      const jointId = jointOf.get(`${site.id}:${patient}:${level}:${side}`);
      if (!jointId) {
        reject(IngestRejectionCode.INVALID_VALUE, `level must be L1_L2…L5_S1 (or L1/L2…) and side LEFT or RIGHT, got ${values.level} ${values.side}`);
        continue;
      }
      if (!(modality in Modality)) {
        reject(IngestRejectionCode.INVALID_VALUE, `modality must be XR, CT or MR, got ${JSON.stringify(values.modality)}`);
        continue;
      }
      const scale = features.get(feature);
      if (!scale) {
        reject(
          IngestRejectionCode.INVALID_VALUE,
          `feature must be a code of the grading scheme (${[...features.keys()].join(', ')}), got ${JSON.stringify(values.feature)}`,
        );
        continue;
      }
      const gradeText = (values.grade ?? '').toUpperCase();
      const notAssessable = gradeText === 'NA';
      if (!notAssessable && !/^\d+$/.test(gradeText)) {
        reject(IngestRejectionCode.INVALID_VALUE, `grade must be a whole number or NA (not assessable), got ${JSON.stringify(values.grade)}`);
        continue;
      }
      const grade = notAssessable ? null : Number(gradeText);
      if (grade !== null && !scale.includes(grade)) {
        reject(IngestRejectionCode.GRADE_OUT_OF_SCALE, `Grade ${grade} is outside the ${feature} scale (${scale.join(', ')}); NA means not assessable`);
        continue;
      }
      const source = (values.source ?? '').toUpperCase() as ReferenceSource;
      if (!IMPORTED_REFERENCE_SOURCES.includes(source)) {
        reject(
          IngestRejectionCode.UNKNOWN_SOURCE,
          `source must be ${IMPORTED_REFERENCE_SOURCES.join(' or ')}, got ${JSON.stringify(values.source)}` +
            (source in ReferenceSource ? ' (AGREEMENT and ADJUDICATION come from the reading workflow, never from a file)' : ''),
        );
        continue;
      }
      const key = cellKey({ jointId, modality, feature });
      if (seen.has(key)) {
        reject(IngestRejectionCode.DUPLICATE_ROW, 'The same patient, joint, modality and feature appear earlier in this file');
        continue;
      }
      seen.add(key);
      parsed.push({ line, siteId: site.id, jointId, modality: modality as Modality, feature, grade, notAssessable, source });
    }
    return parsed;
  }

  /** The reference grades the file's cells already have, locked until the import commits (a confirm must wait). */
  private async lockExisting(ctx: RequestContext, rows: ParsedRow[]): Promise<Map<string, ReferenceGrade>> {
    const jointIds = [...new Set(rows.map((r) => r.jointId))];
    const existing = await this.db
      .repo(ctx, ReferenceGrade)
      .createQueryBuilder('ref')
      .where('ref.joint_id = ANY(:jointIds)', { jointIds })
      .orderBy('ref.id')
      .setLock('pessimistic_write')
      .getMany();
    return new Map(existing.map((r) => [cellKey(r), r]));
  }

  /**
   * The acting senior confirms the import's unconfirmed grades at their site, all at once, and so locks them.
   * Grades confirmed before (one by one) keep their confirmation; a second call confirms nothing new.
   */
  async confirmReferenceImport(ctx: RequestContext, id: string): Promise<ReferenceImport> {
    const senior = await this.readers.requireActingReader(ctx, ReaderRole.SENIOR);
    return this.db.transaction(ctx, async (tx) => {
      const found = await this.db.getEntityOrThrow(tx, ReferenceImport, id);
      const qb = this.db
        .repo(tx, ReferenceGrade)
        .createQueryBuilder('ref')
        .innerJoin(Joint, 'joint', 'joint.id = ref.joint_id')
        .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id')
        .select(['ref.id AS "id"', 'ref.confirmed_at AS "confirmedAt"', 'patient.site_id AS "siteId"'])
        .where('ref.import_id = :id', { id })
        .orderBy('ref.id')
        .setLock('pessimistic_write', undefined, ['ref']);
      restrictToScope(qb, tx, 'patient.site_id');
      const grades = await qb.getRawMany<{ id: string; confirmedAt: Date | null; siteId: string }>();
      if (grades.length === 0) throw notFound('ReferenceImport', id);
      const pending = grades.filter((g) => !g.confirmedAt);
      if (pending.length === 0) return found;
      const confirmedAt = new Date();
      await this.db
        .manager(tx)
        .query(`UPDATE reference_grade SET confirmed_by_id = $1, confirmed_at = $2, updated_at = now() WHERE id = ANY($3::uuid[])`, [
          senior.id,
          confirmedAt,
          pending.map((g) => g.id),
        ]);
      for (const siteId of [...new Set(pending.map((g) => g.siteId))].sort()) {
        await this.audit.record(tx, {
          action: 'confirmReferenceImport',
          entityType: 'ReferenceImport',
          entityId: id,
          siteId,
          details: { grades: pending.filter((g) => g.siteId === siteId).length },
        });
      }
      return found;
    });
  }

  async listReferenceImports(ctx: RequestContext, page: PageRequest): Promise<Page<ReferenceImport>> {
    requireActor(ctx);
    return paginate(this.db.repo(ctx, ReferenceImport).createQueryBuilder('imp'), 'imp', page);
  }

  async getReferenceImport(ctx: RequestContext, id: string): Promise<ReferenceImport> {
    requireActor(ctx);
    const found = await this.db.getEntityOrThrow(ctx, ReferenceImport, id);
    return found;
  }

  referenceImportsByIds(ctx: RequestContext, ids: readonly string[]): Promise<ReferenceImport[]> {
    return this.db.repo(ctx, ReferenceImport).findBy({ id: In([...ids]) });
  }

  /** Grades of the import at the caller's sites, and how many are confirmed. */
  async importProgress(ctx: RequestContext, id: string): Promise<ReferenceImportProgress> {
    const qb = this.gradesOf(ctx, id).select(['count(*)::int AS "grades"', 'count(ref.confirmed_at)::int AS "confirmedGrades"']);
    return (await qb.getRawOne<ReferenceImportProgress>()) ?? { grades: 0, confirmedGrades: 0 };
  }

  /** Who confirmed the import's grades at the caller's sites: one entry per site and senior. */
  async confirmations(ctx: RequestContext, id: string): Promise<ReferenceConfirmation[]> {
    return this.gradesOf(ctx, id)
      .select(['patient.site_id AS "siteId"', 'ref.confirmed_by_id AS "confirmedById"', 'max(ref.confirmed_at) AS "confirmedAt"', 'count(*)::int AS "grades"'])
      .andWhere('ref.confirmed_at IS NOT NULL')
      .groupBy('patient.site_id')
      .addGroupBy('ref.confirmed_by_id')
      .orderBy('"confirmedAt"')
      .getRawMany<ReferenceConfirmation>();
  }

  private gradesOf(ctx: RequestContext, id: string) {
    requireActor(ctx);
    const qb = this.db
      .repo(ctx, ReferenceGrade)
      .createQueryBuilder('ref')
      .innerJoin(Joint, 'joint', 'joint.id = ref.joint_id')
      .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id')
      .where('ref.import_id = :id', { id });
    return restrictToScope(qb, ctx, 'patient.site_id');
  }
}

/** The unnest() columns of new reference grades, in the INSERT's order. */
function columnsOf(rows: ParsedRow[]): unknown[] {
  return [
    rows.map((r) => r.jointId),
    rows.map((r) => r.modality),
    rows.map((r) => r.feature),
    rows.map((r) => r.grade),
    rows.map((r) => r.notAssessable),
    rows.map((r) => r.source),
  ];
}
