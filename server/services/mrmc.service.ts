import type { Db } from '../db/transaction';
import { ReaderRole, Role, SuppressionReason, type Modality } from '../domain';
import { GradingFeature, ModelVersion } from '../entities';
import { badInput } from '../errors/app-error';
import { rocCurve } from '../stats/auc';
import { scoreOf } from '../stats/engine';
import type { CovarianceMethod, FigureOfMerit } from '../stats/mrmc/covariance';
import { analyseMrmc, type MrmcAnalysis, type MrmcDifference, type MrmcTestMean, type VarianceComponents } from '../stats/mrmc/obuchowski-rockette';
import { readerAveragedRoc } from '../stats/mrmc/roc';
import { MrmcDesignError, modelVersusReaders, type MrmcCase, type MrmcDesignProblem, type MrmcRating } from '../stats/mrmc/study';
import type { RocPoints } from '../stats/disclosure';
import { cellKey, ReferencePopulation, type Disclosure, type DisclosureService, type Release } from './disclosure.service';
import type { MetricsScope } from './metrics.service';
import { requireRole, type RequestContext } from './request-context';
import { gradedCells } from './graded-cells';
import { restrictToScope, whereIn } from './scope';

export type { CovarianceMethod, FigureOfMerit };

export interface MrmcRequest {
  modelVersionId: string;
  /** The clinicians: every reader of this role (default READER). */
  readerRole?: ReaderRole | null;
  scope?: MetricsScope | null;
  /** Positive when the reference grade >= threshold (default 1); the model scores P(grade >= threshold). */
  threshold?: number | null;
  /** AUC (default), or the sensitivity or specificity of the binary call grade >= threshold. */
  figureOfMerit?: FigureOfMerit | null;
  /** Covariance of the readers' figures of merit (default JACKKNIFE, as MRMCaov; the only one for sensitivity and specificity). */
  covariance?: CovarianceMethod | null;
  /** A patient's joints form one case cluster (default true). */
  clustered?: boolean | null;
  level?: number | null;
  confirmedOnly?: boolean | null;
  /** Also one row per site (default true). */
  bySite?: boolean | null;
}

/** One OR-Hillis conclusion of the model against the reader average. */
export interface MrmcConclusionView {
  /** Model AUC minus reader-average AUC, with its interval, t (z for fixed readers), df and p-value; non-finite numbers are null. */
  difference: MrmcDifference;
  model: MrmcTestMean;
  readers: MrmcTestMean;
}

export interface MrmcReaderRow {
  readerCode: string;
  site: string | null;
  cases: number;
  /** The reader's figure of merit (AUC, sensitivity or specificity). */
  readerValue: number;
  /** The model's on this reader's cases. */
  modelValue: number;
  /** Model minus reader for this reader with fixed readers (case variability only). */
  difference: MrmcDifference;
}

export interface MrmcGroup extends Release {
  feature: string;
  modality: Modality;
  /** Null in the pooled row (every site in scope). */
  site: string | null;
  pooled: boolean;
  /** CROSSED: every reader read every case; SPLIT_PLOT: readers nested within sites. */
  design: 'CROSSED' | 'SPLIT_PLOT' | null;
  readers: number | null;
  sites: number | null;
  cases: number | null;
  patients: number | null;
  /** Why this row has no analysis (too few readers' cases, one class…), with the detail; null when analysed. */
  problem: MrmcDesignProblem | null;
  problemDetail: string | null;
  randomReaders: MrmcConclusionView | null;
  fixedReaders: MrmcConclusionView | null;
  fixedCases: MrmcConclusionView | null;
  varianceComponents: VarianceComponents | null;
  perReader: MrmcReaderRow[];
  readerRoc: RocPoints | null;
  modelRoc: RocPoints | null;
}

export interface MrmcResult {
  figureOfMerit: FigureOfMerit;
  threshold: number;
  level: number;
  clustered: boolean;
  covariance: CovarianceMethod;
  disclosure: Disclosure;
  groups: MrmcGroup[];
}

interface Row {
  patientId: string;
  jointId: string;
  site: string;
  feature: string;
  modality: Modality;
  truth: number;
  modelGrade: number;
  probabilities: number[] | null;
  readerGrade: number;
  readerId: string;
  readerCode: string;
  readerSite: string | null;
}

const METHODS: readonly CovarianceMethod[] = ['DELONG', 'JACKKNIFE', 'UNBIASED'];
const FIGURES: readonly FigureOfMerit[] = ['AUC', 'SENSITIVITY', 'SPECIFICITY'];

/**
 * Multi-reader multi-case analysis of a model against the clinicians as a group (Obuchowski-Rockette with Hillis's
 * df; stats/mrmc): per feature and modality, pooled over the sites in scope and per site. The model enters as a fixed
 * "reader" (stats/mrmc/study.ts, modelVersusReaders); readers who share no cases (each site's own readers) make a
 * split-plot design. Aggregates only, under the disclosure rules of the metrics query.
 */
export class MrmcService {
  constructor(
    private readonly db: Db,
    private readonly disclosure: DisclosureService,
  ) {}

  async mrmc(ctx: RequestContext, request: MrmcRequest): Promise<MrmcResult> {
    requireRole(ctx, Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER);
    const threshold = request.threshold ?? 1;
    const level = request.level ?? 0.95;
    const clustered = request.clustered ?? true;
    const covariance = request.covariance ?? 'JACKKNIFE';
    const figureOfMerit = request.figureOfMerit ?? 'AUC';
    const confirmedOnly = request.confirmedOnly ?? true;
    const scope = request.scope ?? {};
    if (!Number.isInteger(threshold) || threshold < 1) throw badInput('threshold must be a whole grade of at least 1', { field: 'threshold' });
    if (!(level > 0.5 && level < 1)) throw badInput('level must be between 0.5 and 1', { field: 'level' });
    if (!METHODS.includes(covariance)) throw badInput(`covariance must be one of ${METHODS.join(', ')}`, { field: 'covariance' });
    if (!FIGURES.includes(figureOfMerit)) throw badInput(`figureOfMerit must be one of ${FIGURES.join(', ')}`, { field: 'figureOfMerit' });
    if (figureOfMerit !== 'AUC' && covariance !== 'JACKKNIFE') {
      throw badInput(`${covariance} covariances are defined for the AUC only; sensitivity and specificity use JACKKNIFE`, { field: 'covariance' });
    }
    if (covariance === 'UNBIASED' && clustered) {
      throw badInput('The unbiased covariance assumes independent cases: use DELONG or JACKKNIFE with clustered cases, or clustered: false', {
        field: 'covariance',
      });
    }
    if (scope.splits && !scope.splitVersionId) throw badInput('Filtering by split needs a splitVersionId', { field: 'scope.splits' });
    await this.db.getEntityOrThrow(ctx, ModelVersion, request.modelVersionId);
    const disclosure = this.disclosure.disclosureFor(ctx);

    const rows = await this.rows(ctx, request.modelVersionId, request.readerRole ?? ReaderRole.READER, scope, confirmedOnly);
    const grades = new Map((await this.db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f.grades.length]));
    const release = disclosure.applied ? await this.releaseRule(ctx, request.modelVersionId, rows, scope, confirmedOnly) : null;

    const byFeatureModality = new Map<string, Row[]>();
    for (const row of rows) {
      const id = `${row.feature}\u0000${row.modality}`;
      const list = byFeatureModality.get(id);
      if (list) list.push(row);
      else byFeatureModality.set(id, [row]);
    }
    const groups: MrmcGroup[] = [];
    for (const id of [...byFeatureModality.keys()].sort()) {
      const featureRows = byFeatureModality.get(id)!;
      const { feature, modality } = featureRows[0]!;
      const k = grades.get(feature) ?? 2;
      const sites = request.bySite === false ? [] : [...new Set(featureRows.map((r) => r.site))].sort();
      for (const site of [null, ...sites]) {
        const of = site === null ? featureRows : featureRows.filter((r) => r.site === site);
        const head = { feature, modality, site, pooled: site === null };
        const withheld = release?.(feature, modality, site, of);
        if (withheld?.suppressed) {
          groups.push({ ...head, ...EMPTY, ...withheld });
          continue;
        }
        groups.push({ ...head, ...this.analyse(of, { figureOfMerit, threshold, level, clustered, covariance, k, coarse: disclosure.applied }) });
      }
    }
    return { figureOfMerit, threshold, level, clustered, covariance, disclosure, groups };
  }

  private analyse(
    rows: Row[],
    o: { figureOfMerit: FigureOfMerit; threshold: number; level: number; clustered: boolean; covariance: CovarianceMethod; k: number; coarse: boolean },
  ): Omit<MrmcGroup, 'feature' | 'modality' | 'site' | 'pooled'> {
    const { cases, model, modelScores, ratings, grades, blocks } = completeCases(rows, o.threshold, o.clustered, o.figureOfMerit !== 'AUC');
    const readerCodes = new Map(rows.map((r) => [r.readerId, r]));
    const base = {
      suppressed: false,
      suppression: null,
      readers: new Set(ratings.map((r) => r.reader)).size,
      sites: new Set(rows.map((r) => r.site)).size,
      cases: cases.length,
      patients: new Set(cases.map((c) => c.patient)).size,
      design: blocks > 1 ? ('SPLIT_PLOT' as const) : ('CROSSED' as const),
    };
    let analysis: MrmcAnalysis;
    try {
      const study = modelVersusReaders(cases, model, ratings);
      analysis = analyseMrmc(study, { method: o.covariance, clustered: o.clustered, level: o.level, figure: o.figureOfMerit });
    } catch (e) {
      if (!(e instanceof MrmcDesignError)) throw e;
      return { ...EMPTY, ...base, problem: e.problem, problemDetail: e.message };
    }
    const view = (c: MrmcAnalysis['randomReaders']): MrmcConclusionView | null =>
      c && { difference: finite(c.differences[0]!), model: finite(c.means[0]!), readers: finite(c.means[1]!) };
    const caseIndex = new Map(cases.map((c, i) => [c.id, i]));
    // Each reader's ratings with their grades (the ratings are 0/1 calls for sensitivity and specificity).
    const perReaderCases = analysis.readers.map((reader) => ratings.flatMap((r, i) => (r.reader === reader ? [{ caseId: r.caseId, grade: grades[i]! }] : [])));
    const perReader: MrmcReaderRow[] = analysis.readers.map((reader, j) => {
      const row = readerCodes.get(reader)!;
      return {
        readerCode: row.readerCode,
        site: row.readerSite,
        cases: perReaderCases[j]!.length,
        readerValue: analysis.auc[1]![j]!,
        modelValue: analysis.auc[0]![j]!,
        difference: finite(analysis.fixedReaders.readerDifferences[j]!),
      };
    });
    const graded = perReaderCases.map((rs) => rs.map((r) => ({ grade: r.grade, positive: cases[caseIndex.get(r.caseId)!]!.truth })));
    let readerRoc = readerAveragedRoc(graded, o.k);
    const modelCases = cases.map((c) => ({ score: modelScores.get(c.id)!, positive: c.truth, cluster: c.patientIndex }));
    let modelRoc: RocPoints = rocCurve(
      modelCases.filter((c) => c.positive).map((c) => c.score),
      modelCases.filter((c) => !c.positive).map((c) => c.score),
    );
    if (o.coarse) {
      const clusterOf = new Map(cases.map((c) => [c.id, c.patientIndex]));
      const scored = perReaderCases.map((rs) =>
        rs.map((r) => ({ score: r.grade, positive: cases[caseIndex.get(r.caseId)!]!.truth, cluster: clusterOf.get(r.caseId)! })),
      );
      readerRoc = this.disclosure.readerAveragedRoc(scored, readerRoc, o.k);
      modelRoc = this.disclosure.roc(modelCases, { probabilities: rows.every((r) => r.probabilities !== null), grades: o.k });
    }
    return {
      ...base,
      problem: null,
      problemDetail: null,
      randomReaders: view(analysis.randomReaders),
      fixedReaders: view(analysis.fixedReaders),
      fixedCases: view(analysis.fixedCases),
      varianceComponents: analysis.varianceComponents,
      perReader,
      readerRoc,
      modelRoc,
    };
  }

  /** Every reading of the role's readers with the model's prediction and the reference grade of the same cell. */
  private async rows(ctx: RequestContext, modelVersionId: string, role: ReaderRole, scope: MetricsScope, confirmedOnly: boolean): Promise<Row[]> {
    const qb = gradedCells(this.db, ctx, 'reference_grade', 'ref')
      .innerJoin('prediction', 'p', 'p.joint_id = ref.joint_id AND p.modality = ref.modality AND p.feature = ref.feature AND p.model_version_id = :mv', {
        mv: modelVersionId,
      })
      .innerJoin('reading', 'r', 'r.joint_id = ref.joint_id AND r.modality = ref.modality AND r.feature = ref.feature AND NOT r.not_assessable')
      .innerJoin('reader', 'rd', 'rd.id = r.reader_id AND rd.role = :role', { role })
      .leftJoin('site', 'rs', 'rs.id = rd.site_id')
      .select([
        'patient.id AS "patientId"',
        'joint.id AS "jointId"',
        'site.code AS "site"',
        'ref.feature AS "feature"',
        'ref.modality AS "modality"',
        'ref.grade AS "truth"',
        'p.predicted_grade AS "modelGrade"',
        'p.probabilities AS "probabilities"',
        'r.grade AS "readerGrade"',
        'rd.id AS "readerId"',
        'rd.code AS "readerCode"',
        'rs.code AS "readerSite"',
      ])
      .andWhere('NOT ref.not_assessable');
    if (confirmedOnly) qb.andWhere('ref.confirmed_at IS NOT NULL');
    if (scope.splitVersionId) {
      qb.innerJoin('split_assignment', 'sa', 'sa.patient_id = patient.id AND sa.split_version_id = :sv', { sv: scope.splitVersionId });
      whereIn(qb, 'sa.split', scope.splits);
    }
    whereIn(qb, 'patient.site_id', scope.siteIds);
    whereIn(qb, 'ref.modality', scope.modalities);
    whereIn(qb, 'ref.feature', scope.features);
    whereIn(qb, 'joint.level', scope.levels);
    whereIn(qb, 'joint.side', scope.sides);
    // A fixed order: readers, then cells, so the analysis does not move with the database's row order.
    qb.orderBy('rd.code').addOrderBy('patient.id').addOrderBy('joint.id');
    return qb.getRawMany<Row>();
  }

  /**
   * The metrics query's rule for a reader-averaged row: the row's box (scope, feature, modality, and site in a site
   * row) over the reference population with the model's and the role's coverage must hold enough patients and differ
   * from every wider box by enough; and every reader in it, whose own AUC the row shows, must hold enough patients.
   */
  private async releaseRule(ctx: RequestContext, modelVersionId: string, rows: Row[], scope: MetricsScope, confirmedOnly: boolean) {
    const references = await this.disclosure.referenceCells(ctx, scope.splitVersionId ?? null);
    const modelCells = await this.modelCoverage(ctx, modelVersionId);
    const readerIds = new Set(rows.map((r) => r.readerId));
    const readerCells = new Set<string>();
    for (const [readerId, cells] of await this.disclosure.readerCoverage(ctx)) if (readerIds.has(readerId)) for (const c of cells) readerCells.add(c);
    const population = new ReferencePopulation(references, [modelCells, readerCells]);
    const min = this.disclosure.policy.minGroupPatients;
    return (feature: string, modality: Modality, site: string | null, of: Row[]): Release => {
      const fixed = site === null ? { feature, modality } : { feature, modality, site };
      const whole = this.disclosure.check(population.population, population.box(scope, confirmedOnly, fixed));
      if (whole.suppressed) return whole;
      const patients = new Map<string, Set<string>>();
      for (const r of of) (patients.get(r.readerId) ?? patients.set(r.readerId, new Set()).get(r.readerId)!).add(r.patientId);
      if ([...patients.values()].some((p) => p.size < min)) return { suppressed: true, suppression: SuppressionReason.READER_SHARE_WITHHELD };
      return whole;
    };
  }

  private async modelCoverage(ctx: RequestContext, modelVersionId: string): Promise<Set<string>> {
    const qb = this.db
      .manager(ctx)
      .createQueryBuilder()
      .from('prediction', 'p')
      .innerJoin('joint', 'joint', 'joint.id = p.joint_id')
      .innerJoin('patient', 'patient', 'patient.id = joint.patient_id')
      .select(['p.joint_id AS "jointId"', 'p.modality AS "modality"', 'p.feature AS "feature"'])
      .where('p.model_version_id = :mv', { mv: modelVersionId });
    restrictToScope(qb, ctx, 'patient.site_id');
    return new Set((await qb.getRawMany<{ jointId: string; modality: string; feature: string }>()).map(cellKey));
  }
}

/**
 * Numbers GraphQL can carry: Hillis's df is infinite when MS(T:R) is 0 (every reader differs from the model by the
 * same amount; the t reference is then the normal, which null df means), and a fixed-reader variance estimate can be
 * negative in small samples (no standard error then, as MRMCaov's NaN).
 */
function finite<T extends MrmcTestMean | MrmcDifference>(x: T): T {
  const out = { ...x } as Record<string, unknown>;
  for (const [k, v] of Object.entries(out)) if (typeof v === 'number' && !Number.isFinite(v)) out[k] = null;
  return out as T;
}

const EMPTY = {
  design: null,
  readers: null,
  sites: null,
  cases: null,
  patients: null,
  problem: null,
  problemDetail: null,
  randomReaders: null,
  fixedReaders: null,
  fixedCases: null,
  varianceComponents: null,
  perReader: [],
  readerRoc: null,
  modelRoc: null,
};

/**
 * The MRMC cases of one row. Readers who share cases form one block (a site's own readers, or every reader of a
 * centrally read study); a block keeps the cells every one of its readers graded (a reader's "not assessable"
 * drops the cell for the block), so that each reader reads every case of their block, as the OR analysis needs.
 */
function completeCases(rows: readonly Row[], threshold: number, clustered: boolean, binary: boolean) {
  // Union-find over readers through the cells they share.
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let root = x;
    while (parent.get(root) !== root) root = parent.get(root)!;
    parent.set(x, root);
    return root;
  };
  const firstReader = new Map<string, string>();
  for (const r of rows) {
    if (!parent.has(r.readerId)) parent.set(r.readerId, r.readerId);
    const cell = r.jointId;
    const other = firstReader.get(cell);
    if (other === undefined) firstReader.set(cell, r.readerId);
    else parent.set(find(r.readerId), find(other));
  }
  const blockReaders = new Map<string, Set<string>>();
  for (const reader of parent.keys()) {
    const root = find(reader);
    (blockReaders.get(root) ?? blockReaders.set(root, new Set()).get(root)!).add(reader);
  }
  // A block is named by its patients' sites (one site, or several for readers who read across sites).
  const blockSites = new Map<string, Set<string>>();
  for (const r of rows) {
    const root = find(r.readerId);
    (blockSites.get(root) ?? blockSites.set(root, new Set()).get(root)!).add(r.site);
  }
  const blockName = new Map([...blockSites].map(([root, set]) => [root, [...set].sort().join('+')]));
  const readersOfCell = new Map<string, Set<string>>();
  for (const r of rows) (readersOfCell.get(r.jointId) ?? readersOfCell.set(r.jointId, new Set()).get(r.jointId)!).add(r.readerId);

  const cases: Array<MrmcCase & { patient: string; patientIndex: number }> = [];
  // The analysed ratings (scores and grades for the AUC; 0/1 calls at the threshold for sensitivity and specificity)
  // and, for the ROC curves, the model's scores and the readers' grades.
  const model = new Map<string, number>();
  const modelScores = new Map<string, number>();
  const ratings: MrmcRating[] = [];
  const grades: number[] = [];
  const patientIndex = new Map<string, number>();
  for (const r of rows) {
    const block = find(r.readerId);
    if (readersOfCell.get(r.jointId)!.size !== blockReaders.get(block)!.size) continue;
    if (!model.has(r.jointId)) {
      if (!patientIndex.has(r.patientId)) patientIndex.set(r.patientId, patientIndex.size);
      cases.push({
        id: r.jointId,
        truth: r.truth >= threshold,
        cluster: clustered ? r.patientId : r.jointId,
        block: blockName.get(block)!,
        patient: r.patientId,
        patientIndex: patientIndex.get(r.patientId)!,
      });
      const score = scoreOf({ cluster: 0, truth: r.truth, grade: r.modelGrade, probabilities: r.probabilities?.map(Number) }, threshold);
      modelScores.set(r.jointId, score);
      // The model's binary call is its argmax grade at the threshold, as in the metrics query.
      model.set(r.jointId, binary ? Number(r.modelGrade >= threshold) : score);
    }
    ratings.push({ test: 'READERS', reader: r.readerId, caseId: r.jointId, rating: binary ? Number(r.readerGrade >= threshold) : r.readerGrade });
    grades.push(r.readerGrade);
  }
  return { cases, model, modelScores, ratings, grades, blocks: new Set(cases.map((c) => c.block)).size };
}
