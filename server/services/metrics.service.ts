import type { Db } from '../db/transaction';
import { MetricsGroupBy, Role, type Level, type Modality, type Side, type Split } from '../domain';
import { GradingFeature } from '../entities';
import { badInput } from '../errors/app-error';
import { computeGroup, type GradedCase, type GroupMetrics } from '../stats/engine';
import { none } from '../stats/estimate';
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
}

export interface MetricsResult {
  threshold: number;
  level: number;
  clustered: boolean;
  groups: MetricsGroup[];
}

interface CaseRow {
  patientId: string;
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

const DIMENSION: Record<MetricsGroupBy, keyof MetricsGroupKey> = {
  SITE: 'site',
  FEATURE: 'feature',
  MODALITY: 'modality',
  LEVEL: 'level',
  SIDE: 'side',
  SPLIT: 'split',
};

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
    const threshold = request.threshold ?? 1;
    const level = request.level ?? 0.95;
    const clustered = request.clustered ?? true;
    const replicates = request.bootstrapReplicates ?? 2000;
    if (!Number.isInteger(threshold) || threshold < 1) throw badInput('threshold must be a whole grade of at least 1', { field: 'threshold' });
    if (!(level > 0.5 && level < 1)) throw badInput('level must be between 0.5 and 1', { field: 'level' });
    if (!Number.isInteger(replicates) || replicates < 200 || replicates > 20000) throw badInput('bootstrapReplicates must be 200 to 20000', { field: 'bootstrapReplicates' });
    if (!request.rater.modelVersionId === !request.rater.readerId) throw badInput('Name exactly one rater: a modelVersionId or a readerId', { field: 'rater' });

    const rows = await this.cases(ctx, request);
    if (rows.length === 0) return { threshold, level, clustered, groups: [] };
    const grades = new Map((await this.db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f.grades.length]));
    const dimensions = [...new Set(request.groupBy ?? [])].map((g) => DIMENSION[g]);
    const groups = new Map<string, { key: MetricsGroupKey; rows: CaseRow[] }>();
    const pooledKey: MetricsGroupKey = { site: null, feature: null, modality: null, level: null, side: null, split: null };
    groups.set('', { key: pooledKey, rows });
    if (dimensions.length) {
      for (const row of rows) {
        const key = { ...pooledKey };
        for (const d of dimensions) (key as Record<string, unknown>)[d] = row[d];
        const id = dimensions.map((d) => String(key[d])).join('\u0000');
        const group = groups.get(id) ?? { key, rows: [] };
        group.rows.push(row);
        groups.set(id, group);
      }
    }

    const patients = new Map<string, number>();
    const result: MetricsGroup[] = [];
    for (const [id, group] of [...groups.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      const features = new Set(group.rows.map((r) => r.feature));
      const k = Math.max(2, ...[...features].map((f) => grades.get(f) ?? 2));
      const cases: GradedCase[] = group.rows.map((r) => {
        if (!patients.has(r.patientId)) patients.set(r.patientId, patients.size);
        return { cluster: patients.get(r.patientId) as number, truth: r.truth, grade: r.grade, probabilities: r.probabilities ?? undefined };
      });
      const metrics = computeGroup(cases, { threshold, grades: k, level, clustered, bootstrap: { replicates, seed: request.seed ?? 1 } });
      if (features.size > 1) {
        // A k x k table over features with different scales has no meaning.
        const mixed = none('MIXED_FEATURES');
        metrics.multiclass = { confusion: [], macroF1: mixed, weightedF1: mixed, ovrMacroAuc: mixed, linearKappa: mixed, quadraticKappa: mixed };
      }
      result.push({ ...metrics, key: group.key, pooled: id === '' });
    }
    return { threshold, level, clustered, groups: result };
  }

  private async cases(ctx: RequestContext, request: MetricsRequest): Promise<CaseRow[]> {
    const scope = request.scope ?? {};
    const qb = this.db.dataSource
      .createQueryBuilder()
      .from('reference_grade', 'ref')
      .innerJoin('joint', 'joint', 'joint.id = ref.joint_id')
      .innerJoin('patient', 'patient', 'patient.id = joint.patient_id')
      .innerJoin('site', 'site', 'site.id = patient.site_id')
      .select([
        'patient.id AS "patientId"',
        'site.code AS "site"',
        'ref.feature AS "feature"',
        'ref.modality AS "modality"',
        'joint.level AS "level"',
        'joint.side AS "side"',
        'ref.grade AS "truth"',
      ])
      .where('NOT ref.not_assessable')
      .andWhere('cardinality(patient.exclusion_reasons) = 0');
    if (request.confirmedOnly ?? true) qb.andWhere('ref.confirmed_at IS NOT NULL');
    if (request.rater.modelVersionId) {
      qb.innerJoin('prediction', 'p', 'p.joint_id = ref.joint_id AND p.modality = ref.modality AND p.feature = ref.feature AND p.model_version_id = :mv', {
        mv: request.rater.modelVersionId,
      }).addSelect(['p.predicted_grade AS "grade"', 'p.probabilities AS "probabilities"']);
    } else {
      qb.innerJoin('reading', 'r', 'r.joint_id = ref.joint_id AND r.modality = ref.modality AND r.feature = ref.feature AND r.reader_id = :reader AND NOT r.not_assessable', {
        reader: request.rater.readerId,
      }).addSelect(['r.grade AS "grade"', 'NULL AS "probabilities"']);
    }
    if (scope.splitVersionId) {
      qb.leftJoin('split_assignment', 'sa', 'sa.patient_id = patient.id AND sa.split_version_id = :sv', { sv: scope.splitVersionId }).addSelect('sa.split AS "split"');
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
    return qb.getRawMany<CaseRow>();
  }
}
