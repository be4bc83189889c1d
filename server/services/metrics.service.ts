import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { Db } from '../db/transaction';
import { MetricsGroupBy, Role, SuppressionReason, type Level, type Modality, type ReaderRole, type ReaderSlot, type Side, type Split } from '../domain';
import { GradingFeature } from '../entities';
import { badInput } from '../errors/app-error';
import { comparePaired, mcnemarTable, type MetricDifference, type PairedCase } from '../stats/compare';
import type { PairedTable } from '../stats/mcnemar';
import { computeGroup, scoreOf, type GroupMetrics } from '../stats/engine';
import { compareReaderAveraged, computeReaderAveraged, type ReaderCase, type ReaderPairedCase } from '../stats/reader-average';
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
import { assessableReferenceCells } from './graded-cells';
import { whereIn } from './scope';

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

/**
 * The model against one reader, a slot or a role in one group; a withheld comparison keeps its key (the reader,
 * slot or role, and the group) and has no numbers: no counts, no reader count, no differences.
 */
export interface Comparison extends Release {
  /** The reader compared with; null for a slot or a role. */
  readerId: string | null;
  readerCode: string | null;
  readerSlot: ReaderSlot | null;
  readerRole: ReaderRole | null;
  /** Distinct readers behind the comparison (null when withheld). */
  readers: number | null;
  key: MetricsGroupKey;
  pooled: boolean;
  cases: number | null;
  patients: number | null;
  differences: MetricDifference[];
  /**
   * The paired 2x2 table of correct calls (model x reader) over the cases, with its exact McNemar p; null when
   * withheld, and for a role (its comparison is with the reader average, not with one set of calls per case).
   */
  mcnemar: (PairedTable & { p: number }) | null;
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

/**
 * A released group: its metrics, the distinct joints among its cases (a case is a joint x modality x feature), and
 * the distinct readers behind its grades (0 for a model; averaged over for a role).
 */
export type ReleasedGroup = GroupHead & GroupMetrics & { suppressed: false; suppression: null; joints: number; readers: number };

/** A withheld group (disclosure control): its key and why, and no number at all, the reader count included. */
export type SuppressedGroup = GroupHead & { [K in keyof GroupMetrics]: null } & {
  suppressed: true;
  suppression: SuppressionReason;
  joints: null;
  readers: null;
};

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

/** One graded case of a metrics request, with the node-local ids it was read with (for aggregates computed here). */
export interface CaseRow {
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

const DIMENSION: Record<MetricsGroupBy, keyof MetricsGroupKey & ReferenceDimension> = {
  SITE: 'site',
  FEATURE: 'feature',
  MODALITY: 'modality',
  LEVEL: 'level',
  SIDE: 'side',
  SPLIT: 'split',
};

/** The cells a rater graded; for a slot or a role also each of its readers' cells (null for a model or one reader). */
interface RaterCoverage {
  cells: Set<string>;
  byReader: Map<string, Set<string>> | null;
}

/**
 * Whether a row is released; `shares`, for a slot's or a role's row, holds per reader with cases in it the number of
 * patients of those cases (unused for other raters).
 */
type ReleaseRule = (key: MetricsGroupKey, groupBy: MetricsGroupBy[] | null | undefined, shares?: ReadonlyMap<string, number>) => Release;

/** Per reader, the distinct patients of their rows. */
function patientsByReader(rows: ReadonlyArray<{ readerId?: string; patientId: string }>): Map<string, number> {
  const sets = new Map<string, Set<string>>();
  for (const r of rows) {
    const set = sets.get(r.readerId as string);
    if (set) set.add(r.patientId);
    else sets.set(r.readerId as string, new Set([r.patientId]));
  }
  return new Map([...sets].map(([id, set]) => [id, set.size]));
}

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
    const { modelVersionId, readerId, readerSlot, readerRole } = request.rater;
    if ([modelVersionId, readerId, readerSlot, readerRole].filter((r) => r !== null && r !== undefined).length !== 1) {
      throw badInput('Name exactly one rater: a modelVersionId, a readerId, a readerSlot or a readerRole', { field: 'rater' });
    }
    const disclosure = this.disclosure.disclosureFor(ctx);

    const rows = await this.cases(ctx, request);
    if (rows.length === 0) return { threshold, level, clustered, disclosure, groups: [] };
    const grades = new Map((await this.db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f.grades.length]));
    let release: ReleaseRule | null = null;
    if (disclosure.applied) {
      const coverage = await this.coverage(ctx, request.rater, request.scope);
      release = await this.releaseRule(ctx, request, [coverage.cells], { shares: coverage.byReader && { with: [], byReader: coverage.byReader } });
    }
    const patients = new Map<string, number>();
    const cells = new Map<string, number>();
    const result: MetricsGroup[] = [];
    for (const { id, ...group } of groupRows(rows, request.groupBy)) {
      const readers = new Set(group.rows.flatMap((r) => (r.readerId ? [r.readerId] : [])));
      // The pooled row (id '') is the scope itself; a group fixes the grouped dimensions.
      const withheld = release?.(group.key, id === '' ? null : request.groupBy, readerSlot || readerRole ? patientsByReader(group.rows) : undefined);
      if (withheld?.suppressed) {
        result.push({
          key: group.key,
          pooled: id === '',
          ...WITHHELD_METRICS,
          joints: null,
          readers: null,
          suppressed: true,
          suppression: withheld.suppression as SuppressionReason,
        });
        continue;
      }
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
      const perReader = readerRole ? byReader(group.rows, cases) : null;
      const metrics = perReader ? computeReaderAveraged(perReader, options) : computeGroup(cases, options);
      // For roles without patient-level access the curve has grid thresholds only (the AUC stays the exact one); a
      // role's averaged curve keeps the grade thresholds where every averaged reader's own curve may have a point.
      const scored = (of: readonly ReaderCase[]) => of.map((c) => ({ score: scoreOf(c, threshold), positive: c.truth >= threshold, cluster: c.cluster }));
      let roc = metrics.roc;
      if (disclosure.applied) {
        roc = perReader
          ? this.disclosure.readerAveragedRoc(perReader.map(scored), metrics.roc, k)
          : this.disclosure.roc(scored(cases), { probabilities: cases.every((c) => !!c.probabilities), grades: k });
      }
      result.push({
        ...metrics,
        roc,
        key: group.key,
        pooled: id === '',
        joints: new Set(group.rows.map((r) => r.jointId)).size,
        readers: readers.size,
        suppressed: false,
        suppression: null,
      });
    }
    return { threshold, level, clustered, disclosure, groups: result };
  }

  /**
   * The cases `metrics` analyses for this request, as rows: a federated aggregate (services/federation-node) counts
   * exactly these, so what the hub pools and what `metrics` answers on the node cannot drift apart.
   */
  async gradedCases(ctx: RequestContext, request: MetricsRequest): Promise<CaseRow[]> {
    requireRole(ctx, Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER);
    return this.cases(ctx, request);
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
    const references = disclosure.applied && rows.length ? await this.disclosure.referenceCells(ctx, request.scope?.splitVersionId ?? null) : [];
    const modelCoverage =
      disclosure.applied && rows.length ? (await this.coverage(ctx, { modelVersionId: request.modelVersionId }, request.scope)).cells : null;
    if (request.readerSlot || request.readerRole) {
      // The model's values are its values on the readers' cases, the readers' on the model's: both coverages bound
      // a row, and its readers' shares are checked against their own comparisons (releaseRule).
      let release: ReleaseRule | null = null;
      if (modelCoverage) {
        const readers = await this.coverage(ctx, { readerSlot: request.readerSlot, readerRole: request.readerRole }, request.scope);
        release = await this.releaseRule(ctx, request, [modelCoverage, readers.cells], {
          references,
          shares: { with: [modelCoverage], byReader: readers.byReader ?? new Map() },
        });
      }
      for (const { id, key, rows: groupRowsOfReaders } of groupRows(rows, request.groupBy)) {
        const readers = new Set(groupRowsOfReaders.map((r) => r.readerId));
        const head = {
          readerId: null,
          readerCode: null,
          readerSlot: request.readerSlot ?? null,
          readerRole: request.readerRole ?? null,
          key,
          pooled: id === '',
        };
        const withheld = release?.(key, id === '' ? null : request.groupBy, patientsByReader(groupRowsOfReaders));
        if (withheld?.suppressed) {
          comparisons.push({ ...head, readers: null, cases: null, patients: null, differences: [], mcnemar: null, ...withheld });
          continue;
        }
        const cases = groupRowsOfReaders.map(paired);
        comparisons.push({
          ...head,
          readers: readers.size,
          cases: cases.length,
          patients: new Set(cases.map((c) => c.cluster)).size,
          differences: request.readerRole
            ? compareReaderAveraged(byReader(groupRowsOfReaders, cases), { threshold, level, clustered, bootstrap })
            : comparePaired(cases, { threshold, level, clustered, bootstrap }),
          mcnemar: request.readerRole ? null : mcnemarTable(cases, threshold),
          suppressed: false,
          suppression: null,
        });
      }
      return { threshold, level, clustered, disclosure, comparisons };
    }
    const byReaderId = new Map<string, typeof rows>();
    for (const row of rows) {
      const readerRows = byReaderId.get(row.readerId);
      if (readerRows) readerRows.push(row);
      else byReaderId.set(row.readerId, [row]);
    }
    for (const [readerId, readerRows] of [...byReaderId.entries()].sort((a, b) => a[1][0].readerCode.localeCompare(b[1][0].readerCode))) {
      // The model's values here are its values on the reader's cases, the reader's on the model's: both raters' coverage bound the rows.
      const release = modelCoverage
        ? await this.releaseRule(ctx, request, [modelCoverage, (await this.coverage(ctx, { readerId }, request.scope)).cells], { references })
        : null;
      const reader = { readerId, readerCode: readerRows[0].readerCode, readerSlot: readerRows[0].readerSlot, readerRole: null };
      for (const { id, key, rows: groupRowsOfReader } of groupRows(readerRows, request.groupBy)) {
        const withheld = release?.(key, id === '' ? null : request.groupBy);
        if (withheld?.suppressed) {
          comparisons.push({ ...reader, readers: null, key, pooled: id === '', cases: null, patients: null, differences: [], mcnemar: null, ...withheld });
          continue;
        }
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
          ...reader,
          readers: 1,
          key,
          pooled: id === '',
          cases: cases.length,
          patients: patientsOfGroup.size,
          differences: comparePaired(cases, { threshold, level, clustered, bootstrap }),
          mcnemar: mcnemarTable(cases, threshold),
          suppressed: false,
          suppression: null,
        });
      }
    }
    return { threshold, level, clustered, disclosure, comparisons };
  }

  /**
   * The cells a rater graded anywhere the caller could query (the same rater selection as the statistics,
   * without the scope's filters), for the coverage dimensions of the disclosure rule; for a slot or a role also
   * each of its readers' cells.
   */
  private async coverage(ctx: RequestContext, rater: Rater, scope: MetricsScope | null | undefined): Promise<RaterCoverage> {
    const rows = await this.cases(ctx, { rater, scope: { splitVersionId: scope?.splitVersionId ?? null }, confirmedOnly: false });
    const cells = new Set(rows.map(cellKey));
    if (!rater.readerSlot && !rater.readerRole) return { cells, byReader: null };
    const byReader = new Map<string, Set<string>>();
    for (const row of rows) {
      const of = byReader.get(row.readerId as string);
      if (of) of.add(cellKey(row));
      else byReader.set(row.readerId as string, new Set([cellKey(row)]));
    }
    return { cells, byReader };
  }

  /**
   * The disclosure rule of one query: each row is the box of the query's scope with its grouped dimensions
   * fixed, over the reference population with one coverage dimension per rater (stats/disclosure.ts).
   *
   * A slot's or a role's row is built from its readers' shares (a slot's confusion table is the sum of theirs, a
   * role's estimates the mean of theirs), and each reader's own rows are released on their own terms. So after the
   * rule over the union of its readers' cells (`coverages`), such a row also needs every reader with cases in it
   * to hold at least the minimum of its patients: else it and a row without that reader (a narrower slot, the
   * other readers) would differ by that reader's few patients (READER_SHARE_WITHHELD). A row with one reader's
   * cases only is that reader's own row, so it is checked as that row is, in the reader's population (`shares`:
   * the other raters' coverages, then the reader's): only there are the reader's wider rows boxes.
   */
  private async releaseRule(
    ctx: RequestContext,
    request: Pick<MetricsRequest, 'scope' | 'confirmedOnly'>,
    coverages: ReadonlyArray<ReadonlySet<string>>,
    options: {
      references?: ReferenceCell[];
      shares?: { with: ReadonlyArray<ReadonlySet<string>>; byReader: ReadonlyMap<string, ReadonlySet<string>> } | null;
    } = {},
  ): Promise<ReleaseRule> {
    const scope = request.scope ?? {};
    const confirmedOnly = request.confirmedOnly ?? true;
    const references = options.references ?? (await this.disclosure.referenceCells(ctx, scope.splitVersionId ?? null));
    const population = new ReferencePopulation(references, coverages);
    const readerPopulations = new Map<string, ReferencePopulation>();
    const withheldShare: Release = { suppressed: true, suppression: SuppressionReason.READER_SHARE_WITHHELD };
    return (key, groupBy, shares) => {
      const fixed = Object.fromEntries([...new Set(groupBy ?? [])].map((g) => [DIMENSION[g], key[DIMENSION[g]]]));
      const whole = this.disclosure.check(population.population, population.box(scope, confirmedOnly, fixed));
      if (whole.suppressed || !shares || !options.shares) return whole;
      if (shares.size === 1) {
        const [readerId] = shares.keys();
        let own = readerPopulations.get(readerId);
        if (!own) {
          own = new ReferencePopulation(references, [...options.shares.with, options.shares.byReader.get(readerId) ?? new Set()]);
          readerPopulations.set(readerId, own);
        }
        return this.disclosure.check(own.population, own.box(scope, confirmedOnly, fixed)).suppressed ? withheldShare : whole;
      }
      return [...shares.values()].some((patients) => patients < this.disclosure.policy.minGroupPatients) ? withheldShare : whole;
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
    if (!scope.splitVersionId && scope.splits) throw badInput('Filtering by split needs a splitVersionId', { field: 'scope.splits' });
    const qb = assessableReferenceCells(this.db, ctx, scope.splitVersionId).addSelect('ref.grade AS "truth"');
    if (confirmedOnly) qb.andWhere('ref.confirmed_at IS NOT NULL');
    if (scope.splitVersionId) whereIn(qb, 'sa.split', scope.splits);
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
