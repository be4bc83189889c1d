import type { Db } from '../db/transaction';
import { MetricsGroupBy, Role, type Level, type Modality, type Side, type Split, type SuppressionReason } from '../domain';
import { GradingFeature } from '../entities';
import { badInput } from '../errors/app-error';
import { comparePaired, type MetricDifference, type PairedCase } from '../stats/compare';
import { computeGroup, scoreOf, type GradedCase, type GroupMetrics } from '../stats/engine';
import {
  cellKey,
  ReferencePopulation,
  type Disclosure,
  type DisclosureService,
  type ReferenceCell,
  type ReferenceDimension,
  type Release,
} from './disclosure.service';
import { requireRole, type RequestContext } from './request-context';
import { restrictToScope, whereIn } from './scope';

export interface Rater {
  modelVersionId?: string | null;
  readerId?: string | null;
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
  /** Readers to compare with; default every reader who graded cases in scope. */
  readerIds?: string[] | null;
}

/** One reader against the model in one group; a withheld comparison has no numbers (no counts, no differences). */
export interface Comparison extends Release {
  readerId: string;
  readerCode: string;
  key: MetricsGroupKey;
  pooled: boolean;
  cases: number | null;
  patients: number | null;
  differences: MetricDifference[];
}

export interface ComparisonResult {
  threshold: number;
  level: number;
  clustered: boolean;
  disclosure: Disclosure;
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

interface GroupHead {
  key: MetricsGroupKey;
  pooled: boolean;
}

/** A released group: its metrics, and the distinct joints among its cases (a case is a joint x modality x feature). */
export type ReleasedGroup = GroupHead & GroupMetrics & { suppressed: false; suppression: null; joints: number };

/** A withheld group (disclosure control): its key and why, and no number at all. */
export type SuppressedGroup = GroupHead & { [K in keyof GroupMetrics]: null } & { suppressed: true; suppression: SuppressionReason; joints: null };

export type MetricsGroup = ReleasedGroup | SuppressedGroup;

export interface MetricsResult {
  threshold: number;
  level: number;
  clustered: boolean;
  disclosure: Disclosure;
  groups: MetricsGroup[];
}

const WITHHELD_METRICS: { [K in keyof GroupMetrics]: null } = {
  cases: null,
  clusters: null,
  confusion: null,
  prevalence: null,
  accuracy: null,
  sensitivity: null,
  specificity: null,
  precision: null,
  npv: null,
  f1: null,
  youden: null,
  auc: null,
  roc: null,
  multiclass: null,
};

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
}

const DIMENSION: Record<MetricsGroupBy, keyof MetricsGroupKey & ReferenceDimension> = {
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
  constructor(
    private readonly db: Db,
    private readonly disclosure: DisclosureService,
  ) {}

  async metrics(ctx: RequestContext, request: MetricsRequest): Promise<MetricsResult> {
    requireRole(ctx, Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER);
    const { threshold, level, clustered, replicates } = this.options(request);
    if (request.groupBy?.includes(MetricsGroupBy.SPLIT) && !request.scope?.splitVersionId) {
      throw badInput('Grouping by split needs scope.splitVersionId', { field: 'groupBy' });
    }
    if (!request.rater.modelVersionId === !request.rater.readerId) throw badInput('Name exactly one rater: a modelVersionId or a readerId', { field: 'rater' });
    const disclosure = this.disclosure.disclosureFor(ctx);

    const rows = await this.cases(ctx, request);
    if (rows.length === 0) return { threshold, level, clustered, disclosure, groups: [] };
    const grades = new Map((await this.db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f.grades.length]));
    const release = disclosure.applied ? await this.releaseRule(ctx, request, [await this.coverage(ctx, request.rater, request.scope)]) : null;
    const patients = new Map<string, number>();
    const result: MetricsGroup[] = [];
    for (const { id, ...group } of groupRows(rows, request.groupBy)) {
      // The pooled row (id '') is the scope itself; a group fixes the grouped dimensions.
      const withheld = release?.(group.key, id === '' ? null : request.groupBy);
      if (withheld?.suppressed) {
        result.push({
          key: group.key,
          pooled: id === '',
          ...WITHHELD_METRICS,
          joints: null,
          suppressed: true,
          suppression: withheld.suppression as SuppressionReason,
        });
        continue;
      }
      const features = new Set(group.rows.map((r) => r.feature));
      const k = Math.max(2, ...[...features].map((f) => grades.get(f) ?? 2));
      const cases: GradedCase[] = group.rows.map((r) => {
        if (!patients.has(r.patientId)) patients.set(r.patientId, patients.size);
        return { cluster: patients.get(r.patientId) as number, truth: r.truth, grade: r.grade, probabilities: r.probabilities?.map(Number) };
      });
      // A k x k table over features with different scales has no meaning: MIXED_FEATURES.
      const metrics = computeGroup(cases, {
        threshold,
        grades: k,
        level,
        clustered,
        bootstrap: { replicates, seed: request.seed ?? 1 },
        multiclass: features.size === 1,
      });
      // For roles without patient-level access the curve has grid thresholds only (the AUC stays the exact one).
      const roc = disclosure.applied
        ? this.disclosure.roc(
            cases.map((c) => ({ score: scoreOf(c, threshold), positive: c.truth >= threshold, cluster: c.cluster })),
            { probabilities: cases.every((c) => !!c.probabilities), grades: k },
          )
        : metrics.roc;
      result.push({
        ...metrics,
        roc,
        key: group.key,
        pooled: id === '',
        joints: new Set(group.rows.map((r) => r.jointId)).size,
        suppressed: false,
        suppression: null,
      });
    }
    return { threshold, level, clustered, disclosure, groups: result };
  }

  /**
   * Model minus reader on exactly the cases both graded, per reader (all readers who graded cases in scope, or
   * the ones named) and per group: differences with paired intervals and p-values (stats/compare.ts).
   */
  async compare(ctx: RequestContext, request: CompareRequest): Promise<ComparisonResult> {
    requireRole(ctx, Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER);
    const { threshold, level, clustered, replicates } = this.options(request);
    const disclosure = this.disclosure.disclosureFor(ctx);
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
      ]);
    whereIn(qb, 'rd.id', request.readerIds);
    const rows = await qb.getRawMany<CaseRow & { readerGrade: number; readerId: string; readerCode: string }>();
    const byReader = new Map<string, typeof rows>();
    for (const row of rows) {
      const readerRows = byReader.get(row.readerId);
      if (readerRows) readerRows.push(row);
      else byReader.set(row.readerId, [row]);
    }
    const comparisons: Comparison[] = [];
    const references = disclosure.applied && byReader.size ? await this.disclosure.referenceCells(ctx, request.scope?.splitVersionId ?? null) : [];
    const modelCoverage = disclosure.applied && byReader.size ? await this.coverage(ctx, { modelVersionId: request.modelVersionId }, request.scope) : null;
    for (const [readerId, readerRows] of [...byReader.entries()].sort((a, b) => a[1][0].readerCode.localeCompare(b[1][0].readerCode))) {
      // The model's values here are its values on the reader's cases, the reader's on the model's: both raters' coverage bound the rows.
      const release = modelCoverage
        ? await this.releaseRule(ctx, request, [modelCoverage, await this.coverage(ctx, { readerId }, request.scope)], references)
        : null;
      for (const { id, key, rows: groupRowsOfReader } of groupRows(readerRows, request.groupBy)) {
        const withheld = release?.(key, id === '' ? null : request.groupBy);
        if (withheld?.suppressed) {
          comparisons.push({
            readerId,
            readerCode: readerRows[0].readerCode,
            key,
            pooled: id === '',
            cases: null,
            patients: null,
            differences: [],
            ...withheld,
          });
          continue;
        }
        const patients = new Map<string, number>();
        const cases: PairedCase[] = groupRowsOfReader.map((r) => {
          if (!patients.has(r.patientId)) patients.set(r.patientId, patients.size);
          return {
            cluster: patients.get(r.patientId) as number,
            truth: r.truth,
            modelGrade: r.grade,
            modelProbabilities: r.probabilities?.map(Number),
            readerGrade: r.readerGrade,
          };
        });
        comparisons.push({
          readerId,
          readerCode: readerRows[0].readerCode,
          key,
          pooled: id === '',
          cases: cases.length,
          patients: patients.size,
          differences: comparePaired(cases, { threshold, level, clustered, bootstrap: { replicates, seed: request.seed ?? 1 } }),
          suppressed: false,
          suppression: null,
        });
      }
    }
    return { threshold, level, clustered, disclosure, comparisons };
  }

  /**
   * The cells a rater graded anywhere the caller could query (the same rater selection as the statistics,
   * without the scope's filters), for the coverage dimensions of the disclosure rule.
   */
  private async coverage(ctx: RequestContext, rater: Rater, scope: MetricsScope | null | undefined): Promise<Set<string>> {
    const rows = await this.cases(ctx, { rater, scope: { splitVersionId: scope?.splitVersionId ?? null }, confirmedOnly: false });
    return new Set(rows.map(cellKey));
  }

  /**
   * The disclosure rule of one query: each row is the box of the query's scope with its grouped dimensions
   * fixed, over the reference population with one coverage dimension per rater (stats/disclosure.ts).
   */
  private async releaseRule(
    ctx: RequestContext,
    request: Pick<MetricsRequest, 'scope' | 'confirmedOnly'>,
    coverages: ReadonlyArray<ReadonlySet<string>>,
    references?: ReferenceCell[],
  ): Promise<(key: MetricsGroupKey, groupBy: MetricsGroupBy[] | null | undefined) => Release> {
    const scope = request.scope ?? {};
    const population = new ReferencePopulation(references ?? (await this.disclosure.referenceCells(ctx, scope.splitVersionId ?? null)), coverages);
    return (key, groupBy) => {
      const fixed = Object.fromEntries([...new Set(groupBy ?? [])].map((g) => [DIMENSION[g], key[DIMENSION[g]]]));
      return this.disclosure.check(population.population, population.box(scope, request.confirmedOnly ?? true, fixed));
    };
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
      ).addSelect(['r.grade AS "grade"', 'NULL AS "probabilities"']);
    }
    return qb.getRawMany<CaseRow>();
  }
}
