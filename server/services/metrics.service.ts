import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { Db } from '../db/transaction';
import { MetricsGroupBy, Role, type Level, type Modality, type ReaderRole, type ReaderSlot, type Side, type Split } from '../domain';
import { GradingFeature } from '../entities';
import { badInput } from '../errors/app-error';
import { comparePaired, type MetricDifference, type PairedCase } from '../stats/compare';
import { computeGroup, type GroupMetrics } from '../stats/engine';
import { compareReaderAveraged, computeReaderAveraged, type ReaderCase, type ReaderPairedCase } from '../stats/reader-average';
import { requireRole, type RequestContext } from './request-context';
import { restrictToScope, whereIn } from './scope';

/**
 * Exactly one of: a model version (its predictions); one reader; a slot pooled across sites (every reading of the
 * slot's readers as one rater: "reader 1 of every site"); every reader of a role, reader-averaged (MRMC).
 */
export interface Rater {
  modelVersionId?: string | null;
  readerId?: string | null;
  readerSlot?: ReaderSlot | null;
  readerRole?: ReaderRole | null;
}

export interface MetricsScope {
  siteIds?: string[] | null;
  splitVersionId?: string | null;
  splits?: Split[] | null;
  modalities?: Modality[] | null;
  features?: string[] | null;
  levels?: Level[] | null;
  sides?: Side[] | null;
}

export interface MetricsRequest {
  rater: Rater;
  scope?: MetricsScope | null;
  /** Positive when grade >= threshold (default 1). */
  threshold?: number | null;
  groupBy?: MetricsGroupBy[] | null;
  /** Confidence level (default 0.95). */
  level?: number | null;
  /** Patient-clustered intervals (default true). */
  clustered?: boolean | null;
  bootstrapReplicates?: number | null;
  seed?: number | null;
  /** Only reference grades the senior group confirmed (default true). */
  confirmedOnly?: boolean | null;
}

export interface CompareRequest extends Omit<MetricsRequest, 'rater'> {
  modelVersionId: string;
  /** Readers to compare with, each on their own; default every reader who graded cases in scope. */
  readerIds?: string[] | null;
  /** Instead: one comparison with the slot's readers pooled across sites. */
  readerSlot?: ReaderSlot | null;
  /** Instead: one comparison with the reader average of every reader of the role. */
  readerRole?: ReaderRole | null;
}

export interface Comparison {
  /** The reader compared with; null for a slot or a role. */
  readerId: string | null;
  readerCode: string | null;
  readerSlot: ReaderSlot | null;
  readerRole: ReaderRole | null;
  /** Distinct readers behind the comparison. */
  readers: number;
  key: MetricsGroupKey;
  pooled: boolean;
  cases: number;
  patients: number;
  differences: MetricDifference[];
}

export interface ComparisonResult {
  threshold: number;
  level: number;
  clustered: boolean;
  comparisons: Comparison[];
}

export interface MetricsGroupKey {
  site: string | null;
  feature: string | null;
  modality: Modality | null;
  level: Level | null;
  side: Side | null;
  split: Split | null;
}

export interface MetricsGroup extends GroupMetrics {
  key: MetricsGroupKey;
  pooled: boolean;
  /** Distinct readers behind the group's grades (0 for a model); averaged over for a role. */
  readers: number;
  /** Distinct joints among the cases (a case is a joint x modality x feature). */
  joints: number;
}

export interface MetricsResult {
  threshold: number;
  level: number;
  clustered: boolean;
  groups: MetricsGroup[];
}

interface CaseRow {
  patientId: string;
  jointId: string;
  site: string;
  feature: string;
  modality: Modality;
  level: Level;
  side: Side;
  split: Split | null;
  truth: number;
  grade: number;
  probabilities: number[] | null;
  /** The reader behind the grade (slot and role raters only). */
  readerId?: string;
  readerCode?: string;
}

const DIMENSION: Record<MetricsGroupBy, keyof MetricsGroupKey> = {
  SITE: 'site',
  FEATURE: 'feature',
  MODALITY: 'modality',
  LEVEL: 'level',
  SIDE: 'side',
  SPLIT: 'split',
};

/** Rows grouped by the requested dimensions, the pooled group (key '') first. */
function groupRows<R extends Pick<CaseRow, keyof MetricsGroupKey>>(
  rows: R[],
  groupBy: MetricsGroupBy[] | null | undefined,
): Array<{ id: string; key: MetricsGroupKey; rows: R[] }> {
  const dimensions = [...new Set(groupBy ?? [])].map((g) => DIMENSION[g]);
  const pooledKey: MetricsGroupKey = { site: null, feature: null, modality: null, level: null, side: null, split: null };
  const groups = new Map<string, { id: string; key: MetricsGroupKey; rows: R[] }>([['', { id: '', key: pooledKey, rows }]]);
  if (dimensions.length) {
    for (const row of rows) {
      const key = { ...pooledKey };
      for (const d of dimensions) (key as Record<string, unknown>)[d] = row[d];
      const id = dimensions.map((d) => String(key[d])).join('\u0000');
      const group = groups.get(id) ?? { id, key, rows: [] };
      group.rows.push(row);
      groups.set(id, group);
    }
  }
  return [...groups.values()].sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * Diagnostic accuracy of a rater (a model version's predictions or a reader's grades) against the reference
 * standard, grouped by any of site, feature, modality, level, side and split, plus the pooled row. Cases are
 * eligible patients' joint x modality x feature cells where both the rater and the reference graded (not
 * "not assessable"). Aggregates only: statisticians see every site, coordinators their own.
 */
export class MetricsService {
  constructor(private readonly db: Db) {}

  async metrics(ctx: RequestContext, request: MetricsRequest): Promise<MetricsResult> {
    requireRole(ctx, Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER);
    const { threshold, level, clustered, replicates } = this.options(request);
    if (request.groupBy?.includes(MetricsGroupBy.SPLIT) && !request.scope?.splitVersionId) {
      throw badInput('Grouping by split needs scope.splitVersionId', { field: 'groupBy' });
    }
    const { modelVersionId, readerId, readerSlot, readerRole } = request.rater;
    if ([modelVersionId, readerId, readerSlot, readerRole].filter((r) => r !== null && r !== undefined).length !== 1) {
      throw badInput('Name exactly one rater: a modelVersionId, a readerId, a readerSlot or a readerRole', { field: 'rater' });
    }

    const rows = await this.cases(ctx, request);
    if (rows.length === 0) return { threshold, level, clustered, groups: [] };
    const grades = new Map((await this.db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f.grades.length]));
    const patients = new Map<string, number>();
    const cells = new Map<string, number>();
    const result: MetricsGroup[] = [];
    for (const { id, ...group } of groupRows(rows, request.groupBy)) {
      const features = new Set(group.rows.map((r) => r.feature));
      const k = Math.max(2, ...[...features].map((f) => grades.get(f) ?? 2));
      const cases: ReaderCase[] = group.rows.map((r) => {
        if (!patients.has(r.patientId)) patients.set(r.patientId, patients.size);
        const cell = `${r.jointId}:${r.modality}:${r.feature}`;
        if (!cells.has(cell)) cells.set(cell, cells.size);
        return {
          cluster: patients.get(r.patientId) as number,
          cell: cells.get(cell) as number,
          truth: r.truth,
          grade: r.grade,
          probabilities: r.probabilities?.map(Number),
        };
      });
      // A k x k table over features with different scales has no meaning: MIXED_FEATURES.
      const options = { threshold, grades: k, level, clustered, bootstrap: { replicates, seed: request.seed ?? 1 }, multiclass: features.size === 1 };
      const readers = new Set(group.rows.flatMap((r) => (r.readerId ? [r.readerId] : [])));
      const metrics = readerRole ? computeReaderAveraged(byReader(group.rows, cases), options) : computeGroup(cases, options);
      result.push({ ...metrics, key: group.key, pooled: id === '', joints: new Set(group.rows.map((r) => r.jointId)).size, readers: readers.size });
    }
    return { threshold, level, clustered, groups: result };
  }

  /**
   * Model minus reader on exactly the cases both graded, per group: differences with paired intervals and p-values
   * (stats/compare.ts). The readers are each reader on their own (all who graded cases in scope, or the ones named),
   * one slot pooled across sites as one rater, or every reader of a role as their average (stats/reader-average.ts).
   */
  async compare(ctx: RequestContext, request: CompareRequest): Promise<ComparisonResult> {
    requireRole(ctx, Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER);
    const { threshold, level, clustered, replicates } = this.options(request);
    if ([request.readerIds, request.readerSlot, request.readerRole].filter((r) => r !== null && r !== undefined).length > 1) {
      throw badInput('Name readerIds, a readerSlot or a readerRole, not more than one', { field: 'readerIds' });
    }
    const qb = this.baseCases(ctx, request.scope ?? {}, request.confirmedOnly ?? true)
      .innerJoin('prediction', 'p', 'p.joint_id = ref.joint_id AND p.modality = ref.modality AND p.feature = ref.feature AND p.model_version_id = :mv', {
        mv: request.modelVersionId,
      })
      .innerJoin('reading', 'r', 'r.joint_id = ref.joint_id AND r.modality = ref.modality AND r.feature = ref.feature AND NOT r.not_assessable')
      .innerJoin('reader', 'rd', 'rd.id = r.reader_id')
      .addSelect([
        'p.predicted_grade AS "grade"',
        'p.probabilities AS "probabilities"',
        'r.grade AS "readerGrade"',
        'rd.id AS "readerId"',
        'rd.code AS "readerCode"',
        'rd.slot AS "readerSlot"',
      ]);
    whereIn(qb, 'rd.id', request.readerIds);
    if (request.readerSlot || request.readerRole) {
      if (request.readerSlot) qb.andWhere('rd.slot = :slot', { slot: request.readerSlot });
      if (request.readerRole) qb.andWhere('rd.role = :role', { role: request.readerRole });
      orderCases(qb);
    }
    const rows = await qb.getRawMany<CaseRow & { readerGrade: number; readerId: string; readerCode: string; readerSlot: ReaderSlot | null }>();
    const bootstrap = { replicates, seed: request.seed ?? 1 };
    const patients = new Map<string, number>();
    const cells = new Map<string, number>();
    const paired = (r: (typeof rows)[number]): ReaderPairedCase => {
      if (!patients.has(r.patientId)) patients.set(r.patientId, patients.size);
      const cell = `${r.jointId}:${r.modality}:${r.feature}`;
      if (!cells.has(cell)) cells.set(cell, cells.size);
      return {
        cluster: patients.get(r.patientId) as number,
        cell: cells.get(cell) as number,
        truth: r.truth,
        modelGrade: r.grade,
        modelProbabilities: r.probabilities?.map(Number),
        readerGrade: r.readerGrade,
      };
    };
    const comparisons: Comparison[] = [];
    if (request.readerSlot || request.readerRole) {
      for (const { id, key, rows: groupRowsOfReaders } of groupRows(rows, request.groupBy)) {
        const cases = groupRowsOfReaders.map(paired);
        comparisons.push({
          readerId: null,
          readerCode: null,
          readerSlot: request.readerSlot ?? null,
          readerRole: request.readerRole ?? null,
          readers: new Set(groupRowsOfReaders.map((r) => r.readerId)).size,
          key,
          pooled: id === '',
          cases: cases.length,
          patients: new Set(cases.map((c) => c.cluster)).size,
          differences: request.readerRole
            ? compareReaderAveraged(byReader(groupRowsOfReaders, cases), { threshold, level, clustered, bootstrap })
            : comparePaired(cases, { threshold, level, clustered, bootstrap }),
        });
      }
      return { threshold, level, clustered, comparisons };
    }
    const byReaderId = new Map<string, typeof rows>();
    for (const row of rows) {
      const readerRows = byReaderId.get(row.readerId);
      if (readerRows) readerRows.push(row);
      else byReaderId.set(row.readerId, [row]);
    }
    for (const [readerId, readerRows] of [...byReaderId.entries()].sort((a, b) => a[1][0].readerCode.localeCompare(b[1][0].readerCode))) {
      for (const { id, key, rows: groupRowsOfReader } of groupRows(readerRows, request.groupBy)) {
        const patientsOfGroup = new Map<string, number>();
        const cases: PairedCase[] = groupRowsOfReader.map((r) => {
          if (!patientsOfGroup.has(r.patientId)) patientsOfGroup.set(r.patientId, patientsOfGroup.size);
          return {
            cluster: patientsOfGroup.get(r.patientId) as number,
            truth: r.truth,
            modelGrade: r.grade,
            modelProbabilities: r.probabilities?.map(Number),
            readerGrade: r.readerGrade,
          };
        });
        comparisons.push({
          readerId,
          readerCode: readerRows[0].readerCode,
          readerSlot: readerRows[0].readerSlot,
          readerRole: null,
          readers: 1,
          key,
          pooled: id === '',
          cases: cases.length,
          patients: patientsOfGroup.size,
          differences: comparePaired(cases, { threshold, level, clustered, bootstrap }),
        });
      }
    }
    return { threshold, level, clustered, comparisons };
  }

  private options(request: { threshold?: number | null; level?: number | null; clustered?: boolean | null; bootstrapReplicates?: number | null }): {
    threshold: number;
    level: number;
    clustered: boolean;
    replicates: number;
  } {
    const threshold = request.threshold ?? 1;
    const level = request.level ?? 0.95;
    const clustered = request.clustered ?? true;
    const replicates = request.bootstrapReplicates ?? 2000;
    if (!Number.isInteger(threshold) || threshold < 1) throw badInput('threshold must be a whole grade of at least 1', { field: 'threshold' });
    if (!(level > 0.5 && level < 1)) throw badInput('level must be between 0.5 and 1', { field: 'level' });
    if (!Number.isInteger(replicates) || replicates < 200 || replicates > 20000)
      throw badInput('bootstrapReplicates must be 200 to 20000', { field: 'bootstrapReplicates' });
    return { threshold, level, clustered, replicates };
  }

  /** Reference grades of eligible patients in scope, with their keys; raters are joined by the caller. */
  private baseCases(ctx: RequestContext, scope: MetricsScope, confirmedOnly: boolean) {
    const qb = this.db.dataSource
      .createQueryBuilder()
      .from('reference_grade', 'ref')
      .innerJoin('joint', 'joint', 'joint.id = ref.joint_id')
      .innerJoin('patient', 'patient', 'patient.id = joint.patient_id')
      .innerJoin('site', 'site', 'site.id = patient.site_id')
      .select([
        'patient.id AS "patientId"',
        'joint.id AS "jointId"',
        'site.code AS "site"',
        'ref.feature AS "feature"',
        'ref.modality AS "modality"',
        'joint.level AS "level"',
        'joint.side AS "side"',
        'ref.grade AS "truth"',
      ])
      .where('NOT ref.not_assessable')
      .andWhere('cardinality(patient.exclusion_reasons) = 0');
    if (confirmedOnly) qb.andWhere('ref.confirmed_at IS NOT NULL');
    if (scope.splitVersionId) {
      qb.leftJoin('split_assignment', 'sa', 'sa.patient_id = patient.id AND sa.split_version_id = :sv', { sv: scope.splitVersionId }).addSelect(
        'sa.split AS "split"',
      );
      whereIn(qb, 'sa.split', scope.splits);
    } else {
      if (scope.splits) throw badInput('Filtering by split needs a splitVersionId', { field: 'scope.splits' });
      qb.addSelect('NULL AS "split"');
    }
    restrictToScope(qb, ctx, 'patient.site_id');
    whereIn(qb, 'patient.site_id', scope.siteIds);
    whereIn(qb, 'ref.modality', scope.modalities);
    whereIn(qb, 'ref.feature', scope.features);
    whereIn(qb, 'joint.level', scope.levels);
    whereIn(qb, 'joint.side', scope.sides);
    return qb;
  }

  private async cases(ctx: RequestContext, request: MetricsRequest): Promise<CaseRow[]> {
    const qb = this.baseCases(ctx, request.scope ?? {}, request.confirmedOnly ?? true);
    const { readerSlot, readerRole } = request.rater;
    if (readerSlot || readerRole) {
      // Every reading of the slot's (or the role's) readers, each with its reader.
      qb.innerJoin('reading', 'r', 'r.joint_id = ref.joint_id AND r.modality = ref.modality AND r.feature = ref.feature AND NOT r.not_assessable')
        .innerJoin('reader', 'rd', 'rd.id = r.reader_id')
        .addSelect(['r.grade AS "grade"', 'NULL AS "probabilities"', 'rd.id AS "readerId"', 'rd.code AS "readerCode"']);
      if (readerSlot) qb.andWhere('rd.slot = :slot', { slot: readerSlot });
      if (readerRole) qb.andWhere('rd.role = :role', { role: readerRole });
      return orderCases(qb).getRawMany<CaseRow>();
    }
    if (request.rater.modelVersionId) {
      qb.innerJoin('prediction', 'p', 'p.joint_id = ref.joint_id AND p.modality = ref.modality AND p.feature = ref.feature AND p.model_version_id = :mv', {
        mv: request.rater.modelVersionId,
      }).addSelect(['p.predicted_grade AS "grade"', 'p.probabilities AS "probabilities"']);
    } else {
      qb.innerJoin(
        'reading',
        'r',
        'r.joint_id = ref.joint_id AND r.modality = ref.modality AND r.feature = ref.feature AND r.reader_id = :reader AND NOT r.not_assessable',
        {
          reader: request.rater.readerId,
        },
      ).addSelect(['r.grade AS "grade"', 'NULL AS "probabilities"', 'r.reader_id AS "readerId"']);
    }
    return qb.getRawMany<CaseRow>();
  }
}

/**
 * A fixed row order for the pooled and averaged raters: readers by code, then cells. Clusters are numbered in row
 * order and the bootstrap draws by number, so without it the intervals would move with the database's row order.
 */
function orderCases<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>): SelectQueryBuilder<T> {
  return qb.orderBy('rd.code').addOrderBy('patient.id').addOrderBy('joint.id').addOrderBy('ref.modality').addOrderBy('ref.feature');
}

/** The cases of each reader, readers in code order (rows and cases in the same order). */
function byReader<C>(rows: ReadonlyArray<{ readerId?: string; readerCode?: string }>, cases: readonly C[]): C[][] {
  const groups = new Map<string, { code: string; cases: C[] }>();
  rows.forEach((row, i) => {
    const id = row.readerId as string;
    const group = groups.get(id) ?? { code: row.readerCode as string, cases: [] };
    group.cases.push(cases[i]);
    groups.set(id, group);
  });
  return [...groups.values()].sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0)).map((g) => g.cases);
}
