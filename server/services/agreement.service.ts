import type { Db } from '../db/transaction';
import { ExclusionReason, ReaderSlot, Role, Split, type Modality } from '../domain';
import { GradingFeature } from '../entities';
import { contingency, kappa, percentAgreement } from '../stats/agreement';
import { none, some, type Maybe } from '../stats/estimate';
import { ReferencePopulation, siteCodesOf, type Disclosure, type DisclosureService, type Release } from './disclosure.service';
import { requireRole, type RequestContext } from './request-context';
import { gradedCells } from './graded-cells';
import { eligiblePatient, restrictToScope, whereIn } from './scope';

export interface AgreementScope {
  siteIds?: string[] | null;
  modalities?: Modality[] | null;
  features?: string[] | null;
}

export interface KappaSet {
  cases: number;
  unweighted: Maybe;
  linear: Maybe;
  quadratic: Maybe;
}

/** A reader against the reference standard; withheld (disclosure control) it has no numbers. */
export type ReaderVsReference = { readerId: string; readerCode: string; slot: ReaderSlot | null } & (
  (KappaSet & { suppressed: false; suppression: null }) | ({ [K in keyof KappaSet]: null } & Release & { suppressed: true })
);

/** Agreement of one feature x modality (x site). Withheld, the reader-vs-reader block and the adjudication rate are null. */
export interface AgreementGroup extends Release {
  feature: string;
  modality: Modality;
  /** Null unless grouped by site. */
  site: string | null;
  /** Reader 1 vs reader 2 on cells both graded: rows the FIRST slot's grade, columns the SECOND's (orientPair). */
  readers: (KappaSet & { percentAgreement: Maybe }) | null;
  /** Share of cells with two readings that needed adjudication. */
  adjudicationRate: Maybe | null;
  /** Each reader against the reference standard. */
  readerVsReference: ReaderVsReference[];
  disclosure: Disclosure;
}

/** STARD counts of one site or the total; withheld (disclosure control), every count is null and the lists empty. */
export interface StudyFlowRow extends Release {
  /** Null for the total row. */
  site: string | null;
  enrolled: number | null;
  excluded: number | null;
  excludedByReason: Array<{ reason: ExclusionReason; patients: number }>;
  eligible: number | null;
  bySplit: Array<{ split: Split; patients: number }>;
  joints: number | null;
  referenceCells: number | null;
  assessable: number | null;
  notAssessable: number | null;
  /** Assessable and confirmed: what metrics analyse. */
  analysed: number | null;
  disclosure: Disclosure;
}

/** Where a reader's grade goes in the reader-vs-reader table: FIRST rows, SECOND columns, readers without a slot last. */
const SLOT_RANK: Record<ReaderSlot, number> = { [ReaderSlot.FIRST]: 0, [ReaderSlot.SECOND]: 1 };

/**
 * The two readings of a cell as (row, column) of the reader-vs-reader table: the FIRST slot's reading first.
 * One site's kappa is the same either way (kappa is symmetric in its two raters), but a table pooled over sites
 * mixes the cells of many pairs: oriented by reader id, as before, "row" meant reader 1 at one site and reader 2
 * at the next, so the pooled marginals and kappa moved with random ids. Readers without a slot come after those
 * with one, then by code (stable, chosen by people), never by id.
 */
export function orientPair<R extends { slot: ReaderSlot | null; readerCode: string }>(a: R, b: R): [R, R] {
  const rank = (r: R) => (r.slot ? SLOT_RANK[r.slot] : 2);
  const order = rank(a) - rank(b) || (a.readerCode < b.readerCode ? -1 : a.readerCode > b.readerCode ? 1 : 0);
  return order <= 0 ? [a, b] : [b, a];
}

function kappas(pairs: Array<[number, number]>, k: number): KappaSet {
  const table = contingency(
    pairs.map((p) => p[0]),
    pairs.map((p) => p[1]),
    k,
  );
  return { cases: pairs.length, unweighted: kappa(table, 'unweighted'), linear: kappa(table, 'linear'), quadratic: kappa(table, 'quadratic') };
}

/** Inter-reader agreement and the STARD study flow: aggregates, so statisticians see every site, coordinators their own. */
export class AgreementService {
  constructor(
    private readonly db: Db,
    private readonly disclosure: DisclosureService,
  ) {}

  async agreement(ctx: RequestContext, scope: AgreementScope, bySite: boolean): Promise<AgreementGroup[]> {
    requireRole(ctx, Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER);
    const disclosure = this.disclosure.disclosureFor(ctx);
    const grades = new Map((await this.db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f.grades.length]));
    // The same population as metrics (graded-cells.ts): eligible patients in the caller's sites.
    const qb = gradedCells(this.db, ctx, 'reading', 'r')
      .innerJoin('reader', 'rd', 'rd.id = r.reader_id')
      .leftJoin('reference_grade', 'ref', 'ref.joint_id = r.joint_id AND ref.modality = r.modality AND ref.feature = r.feature')
      .leftJoin('adjudication', 'adj', 'adj.joint_id = r.joint_id AND adj.modality = r.modality AND adj.feature = r.feature')
      .select([
        'r.joint_id AS "jointId"',
        'r.modality AS "modality"',
        'r.feature AS "feature"',
        'site.code AS "site"',
        'r.grade AS "grade"',
        'r.not_assessable AS "notAssessable"',
        'rd.id AS "readerId"',
        'rd.code AS "readerCode"',
        'rd.slot AS "slot"',
        'ref.grade AS "reference"',
        '(adj.id IS NOT NULL) AS "adjudicated"',
        '(ref.confirmed_at IS NOT NULL) AS "confirmed"',
      ]);
    whereIn(qb, 'patient.site_id', scope.siteIds);
    whereIn(qb, 'r.modality', scope.modalities);
    whereIn(qb, 'r.feature', scope.features);
    const rows = await qb.getRawMany<{
      jointId: string;
      modality: Modality;
      feature: string;
      site: string;
      grade: number | null;
      notAssessable: boolean;
      readerId: string;
      readerCode: string;
      slot: ReaderSlot | null;
      reference: number | null;
      adjudicated: boolean;
      confirmed: boolean;
    }>();
    const groups = new Map<string, typeof rows>();
    for (const row of rows) {
      const id = [row.feature, row.modality, bySite ? row.site : ''].join('\u0000');
      const group = groups.get(id);
      if (group) group.push(row);
      else groups.set(id, [row]);
    }
    const release = disclosure.applied && groups.size ? await this.releaseRule(ctx, scope) : null;
    const result: AgreementGroup[] = [];
    for (const [id, group] of [...groups.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      const [feature, modality, site] = id.split('\u0000');
      const fixed = { feature, modality, ...(bySite ? { site } : {}) };
      const k = grades.get(feature) ?? 2;
      const cells = new Map<string, typeof rows>();
      for (const row of group) {
        const cell = cells.get(row.jointId);
        if (cell) cell.push(row);
        else cells.set(row.jointId, [row]);
      }
      const pairs: Array<[number, number]> = [];
      let doubleRead = 0;
      let adjudicated = 0;
      for (const readings of cells.values()) {
        if (readings.length !== 2) continue;
        doubleRead++;
        if (readings[0].adjudicated) adjudicated++;
        const [a, b] = orientPair(readings[0], readings[1]);
        if (a.grade !== null && b.grade !== null) pairs.push([a.grade, b.grade]);
      }
      const readers = kappas(pairs, k);
      const table = contingency(
        pairs.map((p) => p[0]),
        pairs.map((p) => p[1]),
        k,
      );
      const byReader = new Map<string, typeof rows>();
      for (const row of group) {
        // Against the reference standard means the confirmed one, as in metrics.
        if (row.grade === null || row.reference === null || !row.confirmed) continue;
        const readings = byReader.get(row.readerId);
        if (readings) readings.push(row);
        else byReader.set(row.readerId, [row]);
      }
      const pairsRelease = release?.readers(fixed) ?? { suppressed: false, suppression: null };
      result.push({
        feature,
        modality: modality as Modality,
        site: bySite ? site : null,
        ...pairsRelease,
        readers: pairsRelease.suppressed ? null : { ...readers, percentAgreement: percentAgreement(table) },
        adjudicationRate: pairsRelease.suppressed ? null : doubleRead ? some(adjudicated / doubleRead) : none('NO_CASES'),
        readerVsReference: [...byReader.values()]
          .map((readings): ReaderVsReference => {
            // A withheld entry keeps its key, the reader and their slot, like a withheld row its group.
            const reader = { readerId: readings[0].readerId, readerCode: readings[0].readerCode, slot: readings[0].slot };
            const withheld = release?.readerVsReference(reader.readerId, fixed);
            if (withheld?.suppressed) return { ...reader, cases: null, unweighted: null, linear: null, quadratic: null, ...withheld, suppressed: true };
            return {
              ...reader,
              ...kappas(
                readings.map((r) => [r.grade as number, r.reference as number]),
                k,
              ),
              suppressed: false,
              suppression: null,
            };
          })
          .sort((a, b) => a.readerCode.localeCompare(b.readerCode)),
        disclosure,
      });
    }
    return result;
  }

  /**
   * The disclosure rule of an agreement query. Reader vs reader: a box of the double-read cells (site, modality,
   * feature). A reader vs the reference: a box of the reference population with the reader's coverage, the same
   * box a metrics query of that reader with this scope and confirmed grades would have.
   */
  private async releaseRule(ctx: RequestContext, scope: AgreementScope) {
    const pairs = await this.disclosure.doubleReadPopulation(ctx);
    const references = await this.disclosure.referenceCells(ctx, null);
    const coverage = await this.disclosure.readerCoverage(ctx);
    const populations = new Map<string, ReferencePopulation>();
    const sites = siteCodesOf(scope.siteIds, pairs.siteCodes);
    return {
      readers: (fixed: { feature: string; modality: string; site?: string }): Release =>
        this.disclosure.check(pairs.population, [
          fixed.site !== undefined ? new Set([fixed.site]) : sites,
          new Set([fixed.modality]),
          new Set([fixed.feature]),
        ]),
      readerVsReference: (readerId: string, fixed: { feature: string; modality: string; site?: string }): Release => {
        let population = populations.get(readerId);
        if (!population) populations.set(readerId, (population = new ReferencePopulation(references, [coverage.get(readerId) ?? new Set()])));
        return this.disclosure.check(population.population, population.box({ siteIds: scope.siteIds }, true, fixed));
      },
    };
  }

  /** STARD flow per site and in total: enrolled, excluded by reason, eligible, per split, cells assessable and analysed. */
  async studyFlow(ctx: RequestContext, scope: { siteIds?: string[] | null; splitVersionId?: string | null }): Promise<StudyFlowRow[]> {
    requireRole(ctx, Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER);
    const disclosure = this.disclosure.disclosureFor(ctx);
    // Each row is a group of enrolled patients: a site, or every site in scope (the total).
    let release: (site: string | null) => Release = () => ({ suppressed: false, suppression: null });
    if (disclosure.applied) {
      const enrolled = await this.disclosure.enrolledPopulation(ctx);
      const sites = siteCodesOf(scope.siteIds, enrolled.siteCodes);
      release = (site) => this.disclosure.check(enrolled.population, [site === null ? sites : new Set([site])]);
    }
    const patients = this.db
      .manager(ctx)
      .createQueryBuilder()
      .from('patient', 'patient')
      .innerJoin('site', 'site', 'site.id = patient.site_id')
      .select(['patient.id AS "id"', 'site.code AS "site"', 'patient.exclusion_reasons::text[] AS "reasons"']);
    restrictToScope(patients, ctx, 'patient.site_id');
    whereIn(patients, 'patient.site_id', scope.siteIds);
    if (scope.splitVersionId) {
      patients
        .leftJoin('split_assignment', 'sa', 'sa.patient_id = patient.id AND sa.split_version_id = :sv', { sv: scope.splitVersionId })
        .addSelect('sa.split AS "split"');
    } else {
      patients.addSelect('NULL AS "split"');
    }
    const patientRows = await patients.getRawMany<{ id: string; site: string; reasons: ExclusionReason[]; split: Split | null }>();
    const cells = this.db
      .manager(ctx)
      .createQueryBuilder()
      .from('joint', 'joint')
      .innerJoin('patient', 'patient', 'patient.id = joint.patient_id')
      .innerJoin('site', 'site', 'site.id = patient.site_id')
      .leftJoin('reference_grade', 'ref', 'ref.joint_id = joint.id')
      .select([
        'site.code AS "site"',
        'count(DISTINCT joint.id)::int AS "joints"',
        'count(ref.id)::int AS "referenceCells"',
        'count(ref.id) FILTER (WHERE NOT ref.not_assessable)::int AS "assessable"',
        'count(ref.id) FILTER (WHERE ref.not_assessable)::int AS "notAssessable"',
        'count(ref.id) FILTER (WHERE NOT ref.not_assessable AND ref.confirmed_at IS NOT NULL)::int AS "analysed"',
      ])
      .where(eligiblePatient('patient'))
      .groupBy('site.code');
    restrictToScope(cells, ctx, 'patient.site_id');
    whereIn(cells, 'patient.site_id', scope.siteIds);
    const cellRows = new Map(
      (await cells.getRawMany<{ site: string; joints: number; referenceCells: number; assessable: number; notAssessable: number; analysed: number }>()).map(
        (r) => [r.site, r],
      ),
    );
    const sites = [...new Set(patientRows.map((p) => p.site))].sort();
    const row = (site: string | null): StudyFlowRow => {
      const withheld = release(site);
      if (withheld.suppressed) {
        return {
          site,
          enrolled: null,
          excluded: null,
          excludedByReason: [],
          eligible: null,
          bySplit: [],
          joints: null,
          referenceCells: null,
          assessable: null,
          notAssessable: null,
          analysed: null,
          ...withheld,
          disclosure,
        };
      }
      const ps = patientRows.filter((p) => site === null || p.site === site);
      const eligible = ps.filter((p) => p.reasons.length === 0);
      const c = [...cellRows.entries()].filter(([s]) => site === null || s === site).map(([, r]) => r);
      const sum = (key: 'joints' | 'referenceCells' | 'assessable' | 'notAssessable' | 'analysed') => c.reduce((total, r) => total + r[key], 0);
      return {
        site,
        enrolled: ps.length,
        excluded: ps.length - eligible.length,
        excludedByReason: Object.values(ExclusionReason).map((reason) => ({ reason, patients: ps.filter((p) => p.reasons.includes(reason)).length })),
        eligible: eligible.length,
        bySplit: scope.splitVersionId ? Object.values(Split).map((split) => ({ split, patients: eligible.filter((p) => p.split === split).length })) : [],
        joints: sum('joints'),
        referenceCells: sum('referenceCells'),
        assessable: sum('assessable'),
        notAssessable: sum('notAssessable'),
        analysed: sum('analysed'),
        suppressed: false,
        suppression: null,
        disclosure,
      };
    };
    return [...sites.map(row), row(null)];
  }
}
