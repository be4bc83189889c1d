import { createHash } from 'node:crypto';
import type { SelectQueryBuilder } from 'typeorm';
import { foundOrThrow, type Db } from '../db/transaction';
import { ALL_SPLITS, ErrorCode, Role, Split, type PageRequest, type SplitAssignmentFilter } from '../domain';
import { Patient, Site, SplitAssignment, SplitVersion, type SplitRatios } from '../entities';
import { AppError, badInput, conflict } from '../errors/app-error';
import type { AuditService } from './audit.service';
import { paginate, type Page } from './pagination';
import { PATIENT_LEVEL_ROLES } from './patient.service';
import { requireActor, requireRole, type RequestContext } from './request-context';
import { eligiblePatient, restrictToScope, whereIn } from './scope';

export const DEFAULT_RATIOS: SplitRatios = { train: 0.7, validation: 0.15, test: 0.15 };

export interface CreateSplitVersion {
  name: string;
  seed: number;
  ratios?: SplitRatios | null;
}

export interface SplitCount {
  siteId: string;
  split: Split;
  patients: number;
}

/**
 * Largest-remainder apportionment: each split gets floor(n * ratio), the leftover patients go to the splits
 * with the largest fractional parts, so every count is within one patient of n * ratio.
 */
export function apportion(n: number, ratios: SplitRatios): Record<Split, number> {
  const shares: Array<[Split, number]> = [
    [Split.TRAIN, ratios.train * n],
    [Split.VALIDATION, ratios.validation * n],
    [Split.TEST, ratios.test * n],
  ];
  const counts = Object.fromEntries(shares.map(([s, x]) => [s, Math.floor(x)])) as Record<Split, number>;
  let left = n - shares.reduce((sum, [s]) => sum + counts[s], 0);
  const byRemainder = [...shares].sort((a, b) => b[1] - Math.floor(b[1]) - (a[1] - Math.floor(a[1])));
  for (const [s] of byRemainder) {
    if (left-- <= 0) break;
    counts[s] += 1;
  }
  return counts;
}

/**
 * A patient's place in the shuffle: sha256 of seed, site code and pseudonym. The order depends only on the
 * seed and the patients themselves (not on database ids or insertion order), so the same cohort and seed give
 * the same split on any node.
 */
export const shuffleKey = (seed: number | string, siteCode: string, pseudonym: string): string =>
  createHash('sha256').update(`${seed}\u0000${siteCode}\u0000${pseudonym}`).digest('hex');

/** Seeded, patient-level, site-stratified splits; a frozen split version never changes. */
export class SplitService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
  ) {}

  listSplitVersions(ctx: RequestContext, page: PageRequest): Promise<Page<SplitVersion>> {
    requireActor(ctx);
    return paginate(this.db.repo(ctx, SplitVersion).createQueryBuilder('sv'), 'sv', page);
  }

  async getSplitVersion(ctx: RequestContext, id: string): Promise<SplitVersion> {
    requireActor(ctx);
    const version = await this.db.getEntityOrThrow(ctx, SplitVersion, id);
    return version;
  }

  async createSplitVersion(ctx: RequestContext, input: CreateSplitVersion): Promise<SplitVersion> {
    requireRole(ctx, Role.STATISTICIAN);
    const ratios = input.ratios ?? DEFAULT_RATIOS;
    const values = [ratios.train, ratios.validation, ratios.test];
    if (values.some((r) => !(r >= 0 && r <= 1)) || Math.abs(values.reduce((a, b) => a + b, 0) - 1) > 1e-9) {
      throw badInput('Ratios must be between 0 and 1 and sum to 1', { field: 'ratios' });
    }
    if (!Number.isSafeInteger(input.seed)) throw badInput('The seed must be an integer', { field: 'seed' });
    return this.db.transaction(ctx, async (tx) => {
      const versions = this.db.repo(tx, SplitVersion);
      if (await versions.existsBy({ name: input.name })) throw conflict(`A split version named ${input.name} exists`, { field: 'name' });
      const version = await versions.save(versions.create({ name: input.name, seed: String(input.seed), ratios, stratification: 'SITE', frozenAt: null }));
      const eligible = await this.db
        .repo(tx, Patient)
        .createQueryBuilder('patient')
        .innerJoin(Site, 'site', 'site.id = patient.site_id')
        .select(['patient.id AS "patientId"', 'patient.pseudonym AS "pseudonym"', 'site.id AS "siteId"', 'site.code AS "siteCode"'])
        .where(eligiblePatient('patient'))
        .getRawMany<{ patientId: string; pseudonym: string; siteId: string; siteCode: string }>();
      const bySite = new Map<string, typeof eligible>();
      for (const p of eligible) {
        const site = bySite.get(p.siteId);
        if (site) site.push(p);
        else bySite.set(p.siteId, [p]);
      }
      const assignments: Array<Pick<SplitAssignment, 'splitVersionId' | 'patientId' | 'split'>> = [];
      for (const patients of bySite.values()) {
        const ordered = patients
          .map((p) => ({ ...p, key: shuffleKey(input.seed, p.siteCode, p.pseudonym) }))
          .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        const counts = apportion(ordered.length, ratios);
        let next = 0;
        for (const split of ALL_SPLITS) {
          for (const p of ordered.slice(next, next + counts[split])) assignments.push({ splitVersionId: version.id, patientId: p.patientId, split });
          next += counts[split];
        }
      }
      for (let i = 0; i < assignments.length; i += 1000) await this.db.repo(tx, SplitAssignment).insert(assignments.slice(i, i + 1000));
      await this.audit.record(tx, {
        action: 'createSplitVersion',
        entityType: 'SplitVersion',
        entityId: version.id,
        details: { seed: input.seed, ratios, patients: assignments.length, sites: bySite.size },
      });
      return version;
    });
  }

  private async lockUnfrozen(ctx: RequestContext, id: string): Promise<SplitVersion> {
    const version = foundOrThrow(await this.db.repo(ctx, SplitVersion).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } }), 'SplitVersion', id);
    if (version.frozenAt) throw new AppError(ErrorCode.SPLIT_FROZEN, `Split version ${version.name} is frozen and cannot change`, { id });
    return version;
  }

  async freezeSplitVersion(ctx: RequestContext, id: string): Promise<SplitVersion> {
    requireRole(ctx, Role.STATISTICIAN);
    return this.db.transaction(ctx, async (tx) => {
      const version = await this.lockUnfrozen(tx, id);
      version.frozenAt = new Date();
      const saved = await this.db.repo(tx, SplitVersion).save(version);
      await this.audit.record(tx, { action: 'freezeSplitVersion', entityType: 'SplitVersion', entityId: id });
      return saved;
    });
  }

  /** Moves one patient before the split is frozen (a manual correction); SPLIT_FROZEN afterwards. */
  async reassignPatient(ctx: RequestContext, input: { splitVersionId: string; patientId: string; split: Split }): Promise<SplitAssignment> {
    requireRole(ctx, Role.STATISTICIAN);
    return this.db.transaction(ctx, async (tx) => {
      await this.lockUnfrozen(tx, input.splitVersionId);
      const repo = this.db.repo(tx, SplitAssignment);
      const assignment = foundOrThrow(
        await repo.findOneBy({ splitVersionId: input.splitVersionId, patientId: input.patientId }),
        'SplitAssignment',
        `${input.splitVersionId}/${input.patientId}`,
      );
      const before = assignment.split;
      assignment.split = input.split;
      const saved = await repo.save(assignment);
      await this.audit.record(tx, {
        action: 'reassignPatientSplit',
        entityType: 'SplitAssignment',
        entityId: assignment.id,
        details: { splitVersionId: input.splitVersionId, before, after: input.split },
      });
      return saved;
    });
  }

  async deleteSplitVersion(ctx: RequestContext, id: string): Promise<boolean> {
    requireRole(ctx, Role.STATISTICIAN);
    return this.db.transaction(ctx, async (tx) => {
      await this.lockUnfrozen(tx, id);
      await this.db.repo(tx, SplitVersion).delete({ id });
      await this.audit.record(tx, { action: 'deleteSplitVersion', entityType: 'SplitVersion', entityId: id });
      return true;
    });
  }

  private assignments(ctx: RequestContext, filter: Partial<SplitAssignmentFilter>): SelectQueryBuilder<SplitAssignment> {
    const qb = this.db.repo(ctx, SplitAssignment).createQueryBuilder('sa').innerJoin(Patient, 'patient', 'patient.id = sa.patient_id');
    restrictToScope(qb, ctx, 'patient.site_id');
    whereIn(qb, 'sa.split_version_id', filter.splitVersionId ? [filter.splitVersionId] : undefined);
    whereIn(qb, 'patient.site_id', filter.siteIds);
    whereIn(qb, 'sa.split', filter.splits);
    return qb;
  }

  async listAssignments(ctx: RequestContext, filter: SplitAssignmentFilter, page: PageRequest): Promise<Page<SplitAssignment>> {
    requireRole(ctx, ...PATIENT_LEVEL_ROLES);
    const result = await paginate(this.assignments(ctx, filter), 'sa', page);
    await this.audit.recordAccess(ctx, 'SplitAssignment', result.nodes.length, filter);
    return result;
  }

  /** Patients per site and split: an aggregate, so statisticians see it too (narrowed to the caller's sites). */
  async countAssignments(ctx: RequestContext, splitVersionId: string): Promise<SplitCount[]> {
    requireActor(ctx);
    const rows = await this.assignments(ctx, { splitVersionId })
      .select(['patient.site_id AS "siteId"', 'sa.split AS "split"', 'COUNT(*)::int AS "patients"'])
      .groupBy('patient.site_id')
      .addGroupBy('sa.split')
      .orderBy('patient.site_id')
      .addOrderBy('sa.split')
      .getRawMany<SplitCount>();
    return rows;
  }
}
