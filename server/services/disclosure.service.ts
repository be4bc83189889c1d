import type { Db } from '../db/transaction';
import { Role, type Level, type Modality, type Side, type Split, type SuppressionReason } from '../domain';
import { averagedGridRocCurve, gridRocCurve, Population, releaseCheck, rocGrid, type Box, type RocPoints } from '../stats/disclosure';
import { requireActor, type RequestContext } from './request-context';
import { assessableReferenceCells, gradedCells } from './graded-cells';
import { restrictToScope } from './scope';

/** A node's release policy for roles without patient-level access (FACET_MIN_GROUP_PATIENTS, FACET_ROC_GRID_STEPS). */
export interface DisclosurePolicy {
  /** Smallest number of patients a released row, and the difference of two nested releasable rows, may hold. */
  minGroupPatients: number;
  /** ROC thresholds of model scores for those roles lie on the grid i / rocGridSteps. */
  rocGridSteps: number;
}

export const DEFAULT_DISCLOSURE_POLICY: DisclosurePolicy = { minGroupPatients: 5, rocGridSteps: 20 };

/** What an answer says about the control applied to it: `applied` is false for roles that see patient-level data anyway. */
export interface Disclosure extends DisclosurePolicy {
  applied: boolean;
}

/** A row withheld, or not, and why. */
export interface Release {
  suppressed: boolean;
  suppression: SuppressionReason | null;
}

/**
 * Roles that see only aggregates. ADMIN, COORDINATOR (own site) and READER can already read patient-level rows
 * (patients, grades, predictions), so small groups tell them nothing new.
 */
const AGGREGATE_ONLY_ROLES = new Set<Role>([Role.STATISTICIAN, Role.ENGINEER, Role.HUB]);

/** One case of the reference population: an eligible patient's assessable reference grade, with its dimensions. */
export interface ReferenceCell {
  patientId: string;
  jointId: string;
  siteId: string;
  site: string;
  split: Split | null;
  modality: Modality;
  feature: string;
  level: Level;
  side: Side;
  confirmed: boolean;
}

/** The scope dimensions of a reference population, in order; one coverage dimension per rater follows them. */
const REFERENCE_DIMENSIONS = ['site', 'split', 'modality', 'feature', 'level', 'side', 'confirmed'] as const;
export type ReferenceDimension = (typeof REFERENCE_DIMENSIONS)[number];

/** The key of a joint x modality x feature cell, to match a rater's cases with reference cells. */
export const cellKey = (c: { jointId: string; modality: string; feature: string }): string => `${c.jointId}|${c.modality}|${c.feature}`;

/** A query's scope as the reference population sees it (a MetricsScope, or an agreement scope). */
export interface ReferenceScope {
  siteIds?: readonly string[] | null;
  splitVersionId?: string | null;
  splits?: readonly Split[] | null;
  modalities?: readonly Modality[] | null;
  features?: readonly string[] | null;
  levels?: readonly Level[] | null;
  sides?: readonly Side[] | null;
}

/** The reference population of a query, ready for boxes: the cells with one coverage flag per rater. */
export class ReferencePopulation {
  readonly population: Population;
  private readonly siteCodes: Map<string, string>;

  constructor(
    cells: readonly ReferenceCell[],
    /** Per rater, the cell keys (cellKey) it graded: a case outside one is "not covered" on that dimension. */
    private readonly coverages: ReadonlyArray<ReadonlySet<string>>,
  ) {
    this.siteCodes = new Map(cells.map((c) => [c.siteId, c.site]));
    this.population = new Population(
      REFERENCE_DIMENSIONS.length + coverages.length,
      cells.map((c) => {
        const key = cellKey(c);
        return {
          patient: c.patientId,
          values: [c.site, c.split, c.modality, c.feature, c.level, c.side, String(c.confirmed), ...coverages.map((covered) => String(covered.has(key)))],
        };
      }),
    );
  }

  /**
   * The box of a row: the scope's filters, confirmed grades only when asked, graded by every rater, and the
   * grouped dimensions fixed to the row's values (`fixed` names only grouped dimensions; a value may be null, as
   * the split of a patient the split version does not assign).
   */
  box(scope: ReferenceScope, confirmedOnly: boolean, fixed: Partial<Record<ReferenceDimension, string | null>> = {}): Box {
    const values: Record<ReferenceDimension, ReadonlyArray<string | null> | null> = {
      // A site id without reference cells matches no case either way.
      site: scope.siteIds ? scope.siteIds.flatMap((id) => this.siteCodes.get(id) ?? []) : null,
      // Without a split version every split is null; with one and no filter, unassigned patients (null) are in.
      split: scope.splitVersionId && scope.splits ? scope.splits : null,
      modality: scope.modalities ?? null,
      feature: scope.features ?? null,
      level: scope.levels ?? null,
      side: scope.sides ?? null,
      confirmed: confirmedOnly ? ['true'] : null,
    };
    for (const [dimension, value] of Object.entries(fixed)) values[dimension as ReferenceDimension] = [value];
    return [...REFERENCE_DIMENSIONS.map((d) => (values[d] ? new Set(values[d]) : null)), ...this.coverages.map(() => new Set(['true']))];
  }
}

/**
 * Disclosure control of the statistics queries: whether it applies to the caller, the populations the rule
 * (stats/disclosure.ts) checks rows against, and the coarse ROC curve.
 */
export class DisclosureService {
  readonly policy: DisclosurePolicy;

  constructor(
    private readonly db: Db,
    policy: Partial<DisclosurePolicy> = {},
  ) {
    this.policy = {
      minGroupPatients: policy.minGroupPatients ?? DEFAULT_DISCLOSURE_POLICY.minGroupPatients,
      rocGridSteps: policy.rocGridSteps ?? DEFAULT_DISCLOSURE_POLICY.rocGridSteps,
    };
    if (!Number.isInteger(this.policy.minGroupPatients) || this.policy.minGroupPatients < 1)
      throw new RangeError('minGroupPatients must be a whole number >= 1');
    if (!Number.isInteger(this.policy.rocGridSteps) || this.policy.rocGridSteps < 1) throw new RangeError('rocGridSteps must be a whole number >= 1');
  }

  disclosureFor(ctx: RequestContext): Disclosure {
    return { applied: AGGREGATE_ONLY_ROLES.has(requireActor(ctx).role), ...this.policy };
  }

  /** Why the row `box` of `population` is withheld, or null to release it. */
  check(population: Population, box: Box): Release {
    const suppression = releaseCheck(population, box, this.policy.minGroupPatients);
    return { suppressed: suppression !== null, suppression };
  }

  /** The ROC curve of a released row for a role without patient-level access: grid thresholds, steps of enough patients. */
  roc(cases: ReadonlyArray<{ score: number; positive: boolean; cluster: number }>, scores: { probabilities: boolean; grades: number }): RocPoints {
    const grid = scores.probabilities
      ? rocGrid({ probabilities: true, steps: this.policy.rocGridSteps })
      : rocGrid({ probabilities: false, grades: scores.grades });
    return gridRocCurve(cases, grid, this.policy.minGroupPatients);
  }

  /**
   * The reader-averaged ROC curve of a role's released row for a role without patient-level access: `averaged`
   * (at every grade) thinned to the grades where each averaged reader's own coarse curve has a point.
   */
  readerAveragedRoc(
    readers: ReadonlyArray<ReadonlyArray<{ score: number; positive: boolean; cluster: number }>>,
    averaged: RocPoints,
    grades: number,
  ): RocPoints {
    return averagedGridRocCurve(readers, averaged, rocGrid({ probabilities: false, grades }), this.policy.minGroupPatients);
  }

  /**
   * Every case a metrics query of the caller could reach, whatever its scope: eligible patients' assessable
   * reference grades, confirmed or not, in the caller's sites, with the split of `splitVersionId` (or null).
   */
  async referenceCells(ctx: RequestContext, splitVersionId: string | null): Promise<ReferenceCell[]> {
    return assessableReferenceCells(this.db, ctx, splitVersionId)
      .addSelect(['site.id AS "siteId"', '(ref.confirmed_at IS NOT NULL) AS "confirmed"'])
      .getRawMany<ReferenceCell>();
  }

  /**
   * Per reader, the cells they graded (not "not assessable") among the graded cells: eligible patients in the
   * caller's sites, the only cells a coverage is matched against (reference cells).
   */
  async readerCoverage(ctx: RequestContext): Promise<Map<string, Set<string>>> {
    const qb = gradedCells(this.db, ctx, 'reading', 'r')
      .select(['r.reader_id AS "readerId"', 'r.joint_id AS "jointId"', 'r.modality AS "modality"', 'r.feature AS "feature"'])
      .andWhere('NOT r.not_assessable');
    const coverage = new Map<string, Set<string>>();
    for (const row of await qb.getRawMany<{ readerId: string; jointId: string; modality: string; feature: string }>()) {
      const cells = coverage.get(row.readerId);
      if (cells) cells.add(cellKey(row));
      else coverage.set(row.readerId, new Set([cellKey(row)]));
    }
    return coverage;
  }

  /**
   * The population of reader-vs-reader agreement: eligible patients' cells read twice, on the dimensions an
   * agreement query can filter or group by (site, modality, feature).
   */
  async doubleReadPopulation(ctx: RequestContext): Promise<{ population: Population; siteCodes: Map<string, string> }> {
    const qb = gradedCells(this.db, ctx, 'reading', 'r')
      .select(['patient.id AS "patientId"', 'site.id AS "siteId"', 'site.code AS "site"', 'r.modality AS "modality"', 'r.feature AS "feature"'])
      .groupBy('r.joint_id')
      .addGroupBy('r.modality')
      .addGroupBy('r.feature')
      .addGroupBy('patient.id')
      .addGroupBy('site.id')
      .having('count(*) = 2');
    const rows = await qb.getRawMany<{ patientId: string; siteId: string; site: string; modality: string; feature: string }>();
    return {
      population: new Population(
        3,
        rows.map((r) => ({ patient: r.patientId, values: [r.site, r.modality, r.feature] })),
      ),
      siteCodes: new Map(rows.map((r) => [r.siteId, r.site])),
    };
  }

  /** The population of the study flow: enrolled patients (eligible or not) in the caller's sites, by site. */
  async enrolledPopulation(ctx: RequestContext): Promise<{ population: Population; siteCodes: Map<string, string> }> {
    const qb = this.db
      .manager(ctx)
      .createQueryBuilder()
      .from('patient', 'patient')
      .innerJoin('site', 'site', 'site.id = patient.site_id')
      .select(['patient.id AS "patientId"', 'site.id AS "siteId"', 'site.code AS "site"']);
    restrictToScope(qb, ctx, 'patient.site_id');
    const rows = await qb.getRawMany<{ patientId: string; siteId: string; site: string }>();
    return {
      population: new Population(
        1,
        rows.map((r) => ({ patient: r.patientId, values: [r.site] })),
      ),
      siteCodes: new Map(rows.map((r) => [r.siteId, r.site])),
    };
  }
}

/** A scope's site ids as the codes a population holds (a site without cases matches none either way). */
export function siteCodesOf(siteIds: readonly string[] | null | undefined, siteCodes: ReadonlyMap<string, string>): Set<string | null> | null {
  return siteIds ? new Set(siteIds.flatMap((id) => siteCodes.get(id) ?? [])) : null;
}
