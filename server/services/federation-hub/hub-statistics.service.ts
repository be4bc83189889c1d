import { In, IsNull, MoreThan, Not } from 'typeorm';
import type { Db } from '../../db/transaction';
import {
  ErrorCode,
  FederatedQueryKind,
  FederatedQueryStatus,
  HubSiteStatus,
  MetricsGroupBy,
  Role,
  Split,
  SuppressionReason,
  WEISHAUPT_FEATURES,
} from '../../domain';
import { FederationSiteTask, FederationTask } from '../../entities';
import { AppError, badInput } from '../../errors/app-error';
import { canonicalSha256 } from '../../federation/canonical-json';
import type { Estimate } from '../../stats/estimate';
import type { Disclosure } from '../disclosure.service';
import type { MetricsRequest } from '../metrics.service';
import { requireRole, type RequestContext } from '../request-context';
import type { FederatedQueryService, FederatedQueryView } from './federated-query.service';
import { EXACT_AT_GRID, type AucRowView, type MetricsRowView } from './hub-answer';
import { taskQueriesOf, type StartFederatedQuery } from './task-status';

/**
 * The node's statistics queries (`metrics`, `studyFlow`) answered at a hub, in the node's shape, from federated
 * queries. A synchronous GraphQL query maps onto the asynchronous tasks like this: the question becomes the federated
 * queries that answer it (BINARY_COUNTS with its Poisson bootstrap and a one-rater AUC, grouped as asked and, for the
 * node's overall pooled row, by SITE alone); a query with the same canonical task query, sites and minSites started
 * within `maxAgeSeconds` and not cancelled or INSUFFICIENT is reused rather than asked again (the sites' budgets and
 * differencing guards see one question, not one per page load); the call then waits up to `waitSeconds` for them to
 * settle. Still running: the answer has no groups and says RUNNING with the query ids, and the same call later reads
 * the same queries. Settled: the groups in the node's shape and `federation` with each site's status and provenance
 * (each query's signed export verifies with `facet verify`).
 */

/** How a hub runs the node's statistics queries (the `federation` argument). */
export interface HubRun {
  sites?: string[] | null;
  minSites?: number | null;
  deadlineSeconds?: number | null;
  /** How long this call waits for the answer (default 60 s, at most 300). */
  waitSeconds?: number | null;
  /** Reuse an identical query at most this old (default one day); 0: always ask anew. */
  maxAgeSeconds?: number | null;
  /** The model's score grid for the AUC (bins on [0, 1]; default 100). */
  scoreBins?: number | null;
}

export interface HubAnswerStatus {
  status: FederatedQueryStatus;
  queryIds: string[];
  sites: { site: string; status: HubSiteStatus; reason: string | null }[];
  grids: { lower: number; upper: number; bins: number }[];
  exactness: string;
  minGroupPatients: number;
}

/** The grades of the largest feature of the scheme: a reader's grid of whole grades covers every feature. */
const MAX_GRADES = Math.max(...WEISHAUPT_FEATURES.map((f) => f.grades.length));
const REPLICATES_DEFAULT = 2000;

const SUPPRESSION: Record<string, SuppressionReason> = {
  SMALL_GROUP: SuppressionReason.FEWER_THAN_MIN_PATIENTS,
  ALL_SITES_WITHHELD: SuppressionReason.ALL_SITES_WITHHELD,
  ROUND_TWO_INCOMPLETE: SuppressionReason.ROUND_TWO_INCOMPLETE,
};

export class HubStatisticsService {
  constructor(
    private readonly db: Db,
    private readonly queries: FederatedQueryService,
    private readonly isHub: boolean,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ) {}

  /** Whether the statistics queries of this deployment are answered by federation. */
  get active(): boolean {
    return this.isHub;
  }

  /** At a node: a model named by sha256 is a hub's way (a node names its own model versions by id). */
  checkNodeRater(rater: { modelSha256?: string | null }): void {
    if (rater.modelSha256) throw badInput('rater.modelSha256 names a model at a federation hub; at a node, name it by modelVersionId', { field: 'rater' });
  }

  /**
   * A statistics query a hub does not answer yet in the node's shape: refused, rather than answered from the hub's
   * own database, which holds no patient-level data and would give an empty answer that looks like one.
   */
  refuseAtHub(query: 'compare' | 'agreement'): never {
    throw new AppError(
      ErrorCode.HUB_HOLDS_NO_PATIENT_DATA,
      `${query} is not answered at a hub in the node's shape: ask an AUC query with two raters or an AGREEMENT query (startFederatedQuery)`,
      { query },
    );
  }

  /** Starts the query or reuses an identical one (same kind, canonical task query, sites and minSites, recent enough). */
  private async startOrReuse(ctx: RequestContext, input: StartFederatedQuery, run: HubRun): Promise<string> {
    const maxAge = run.maxAgeSeconds ?? 86_400;
    if (!Number.isInteger(maxAge) || maxAge < 0) throw badInput('federation.maxAgeSeconds must be a whole number >= 0');
    if (maxAge > 0) {
      const { query } = taskQueriesOf(input);
      const candidates = await this.db.repo(ctx, FederationTask).find({
        where: {
          kind: input.kind,
          querySha256: canonicalSha256(query),
          parentTaskId: IsNull(),
          status: Not(In([FederatedQueryStatus.CANCELLED, FederatedQueryStatus.INSUFFICIENT])),
          createdAt: MoreThan(new Date(Date.now() - maxAge * 1000)),
        },
        order: { createdAt: 'DESC' },
        take: 20,
      });
      for (const task of candidates) {
        if (input.minSites && task.minSites !== input.minSites) continue;
        const sites = (await this.db.repo(ctx, FederationSiteTask).find({ where: { taskId: task.id }, select: { site: true } })).map((s) => s.site).sort();
        if (!input.sites?.length || sites.join() === [...new Set(input.sites)].sort().join()) {
          // The bootstrap is a part of the task: reuse only a query that has the same one.
          if (input.bootstrap) {
            const parts = await this.db.repo(ctx, FederationTask).findBy({ parentTaskId: task.id, kind: FederatedQueryKind.BOOTSTRAP_SUMS });
            const wanted = taskQueriesOf(input).bootstrap;
            if (!parts.some((p) => p.querySha256 === canonicalSha256(wanted as never))) continue;
          }
          return task.id;
        }
      }
    }
    return (await this.queries.startQuery(ctx, input)).id;
  }

  /** Waits up to `waitSeconds` for every query to settle; the views as they are then. */
  private async settle(ctx: RequestContext, ids: string[], run: HubRun): Promise<FederatedQueryView[]> {
    const wait = run.waitSeconds ?? 60;
    if (!Number.isInteger(wait) || wait < 0 || wait > 300) throw badInput('federation.waitSeconds must be from 0 to 300');
    const end = Date.now() + wait * 1000;
    for (;;) {
      const views = await Promise.all(ids.map((id) => this.queries.getQuery(ctx, id)));
      if (views.every((v) => v.status !== FederatedQueryStatus.RUNNING) || Date.now() >= end) return views;
      await this.sleep(Math.min(250, Math.max(0, end - Date.now())));
    }
  }

  private statusOf(views: FederatedQueryView[], grids: HubAnswerStatus['grids']): HubAnswerStatus {
    const order = [FederatedQueryStatus.COMPLETE, FederatedQueryStatus.PARTIAL, FederatedQueryStatus.INSUFFICIENT, FederatedQueryStatus.CANCELLED];
    const status = views.some((v) => v.status === FederatedQueryStatus.RUNNING)
      ? FederatedQueryStatus.RUNNING
      : order[Math.max(...views.map((v) => order.indexOf(v.status)))];
    // A site is answered when it answered every query; refused when it refused one; missing otherwise.
    const sites = new Map<string, { site: string; status: HubSiteStatus; reason: string | null }>();
    for (const view of views) {
      for (const s of [...view.sites, ...view.rounds.flatMap((r) => r.sites)]) {
        const current = sites.get(s.site);
        const mine = s.state === 'SUCCEEDED' ? HubSiteStatus.ANSWERED : s.state === 'REFUSED' ? HubSiteStatus.REFUSED : HubSiteStatus.MISSING;
        const rank = { ANSWERED: 0, MISSING: 1, REFUSED: 2 };
        if (!current || rank[mine] > rank[current.status])
          sites.set(s.site, { site: s.site, status: mine, reason: mine === HubSiteStatus.ANSWERED ? null : s.reason });
      }
    }
    return {
      status,
      queryIds: views.map((v) => v.id),
      sites: [...sites.values()].sort((a, b) => (a.site < b.site ? -1 : 1)),
      grids,
      exactness: EXACT_AT_GRID,
      minGroupPatients: this.queries.minGroupPatients,
    };
  }

  private disclosure(): Disclosure {
    return { applied: true, minGroupPatients: this.queries.minGroupPatients, rocGridSteps: 0 };
  }

  /** The node's `metrics` at the hub: a model (by sha256) or a reader slot against the reference, in the node's shape. */
  async metrics(ctx: RequestContext, input: MetricsRequest & { rater: MetricsRequest['rater'] & { modelSha256?: string | null } }, run: HubRun = {}) {
    requireRole(ctx, Role.STATISTICIAN);
    const rater = input.rater as {
      modelSha256?: string | null;
      readerSlot?: string | null;
      modelVersionId?: string | null;
      readerId?: string | null;
      readerRole?: string | null;
    };
    if (rater.modelVersionId || rater.readerId || rater.readerRole)
      throw badInput('At a hub a rater is a model by its sha256 (rater.modelSha256) or a reader slot: ids and roles are local to each node');
    const scope = input.scope ?? {};
    if (scope.siteIds?.length || scope.splitVersionId)
      throw badInput('At a hub the sites are chosen with federation.sites (registry codes); splits by name, in each node\u2019s frozen split version');
    const level = input.level ?? 0.95;
    if (level !== 0.95) throw badInput('At a hub the confidence level is 0.95 (the pooled rows are computed once, for every reader of the answer)');
    const groupBy = [...new Set(input.groupBy ?? [])];
    const bins = run.scoreBins ?? 100;
    const model = rater.modelSha256 ?? null;
    const grid = model ? { lower: 0, upper: 1, bins } : { lower: -0.5, upper: MAX_GRADES - 0.5, bins: MAX_GRADES };
    const common: StartFederatedQuery = {
      kind: FederatedQueryKind.BINARY_COUNTS,
      scope: { ...scope, confirmedOnly: input.confirmedOnly ?? true } as StartFederatedQuery['scope'],
      threshold: input.threshold ?? 1,
      sites: run.sites,
      minSites: run.minSites,
      deadlineSeconds: run.deadlineSeconds ?? 600,
    };
    const raterInput = model ? { modelSha256: model } : { readerSlot: rater.readerSlot ?? null };
    const seed = `facet-metrics-seed-${input.seed ?? 1}`;
    const grouped = groupBy.filter((g) => g !== MetricsGroupBy.SITE);
    const groupings = grouped.length > 0 ? [grouped, []] : [[]];
    const ids: string[] = [];
    for (const g of groupings) {
      ids.push(
        await this.startOrReuse(
          ctx,
          { ...common, rater: raterInput, groupBy: g, bootstrap: { seed, replicates: input.bootstrapReplicates ?? REPLICATES_DEFAULT } },
          run,
        ),
      );
      ids.push(await this.startOrReuse(ctx, { ...common, kind: FederatedQueryKind.AUC, raters: [raterInput], grids: [grid], groupBy: g }, run));
    }
    const views = await this.settle(ctx, ids, run);
    const federation = this.statusOf(views, [grid]);
    const result = {
      threshold: input.threshold ?? 1,
      level,
      clustered: input.clustered ?? true,
      disclosure: this.disclosure(),
      federation,
      groups: [] as unknown[],
    };
    if (federation.status === FederatedQueryStatus.RUNNING) return result;
    const [countsBy, aucBy, countsAll, aucAll] = views;
    const bySite = groupBy.includes(MetricsGroupBy.SITE);
    const pick = (rows: readonly (MetricsRowView | AucRowView)[]) => rows.filter((r) => (bySite ? !r.pooled : r.pooled));
    const clustered = input.clustered ?? true;
    // The node's groups: the site rows when it groups by SITE, else the hub's pooled rows of each key; then its last
    // row, pooled over everything, which is the pooled row of the query grouped by SITE alone.
    const groups =
      grouped.length > 0 || bySite ? pick(countsBy.answer.metrics).map((row) => this.group(row as MetricsRowView, aucBy.answer.auc, clustered, false)) : [];
    const overall = (countsAll ?? countsBy).answer.metrics.find((r) => r.pooled);
    if (overall) groups.push(this.group(overall, (aucAll ?? aucBy).answer.auc, clustered, true));
    return { ...result, groups };
  }

  /**
   * The node's `studyFlow` at the hub: a row per site as it released it and the total (site null) pooled over them;
   * with scope.splits, each row's eligible patients per split. Every row carries the answer's `federation` status.
   */
  async studyFlow(ctx: RequestContext, scope: { splits?: Split[] | null; siteIds?: string[] | null; splitVersionId?: string | null }, run: HubRun = {}) {
    requireRole(ctx, Role.STATISTICIAN);
    if (scope.siteIds?.length || scope.splitVersionId)
      throw badInput('At a hub the sites are chosen with federation.sites (registry codes); splits by name, in each node\u2019s frozen split version');
    const id = await this.startOrReuse(
      ctx,
      {
        kind: FederatedQueryKind.STUDY_FLOW,
        scope: { splits: scope.splits ?? null },
        sites: run.sites,
        minSites: run.minSites,
        deadlineSeconds: run.deadlineSeconds ?? 600,
      },
      run,
    );
    const views = await this.settle(ctx, [id], run);
    const federation = this.statusOf(views, []);
    if (federation.status === FederatedQueryStatus.RUNNING) return [];
    const rows = views[0].answer.studyFlow;
    const main = rows.filter((r) => r.split === null);
    return main.map((row) => ({
      site: row.pooled ? null : row.site,
      suppressed: row.suppressed,
      suppression: row.suppressed ? (SUPPRESSION[row.suppression ?? ''] ?? SuppressionReason.FEWER_THAN_MIN_PATIENTS) : null,
      enrolled: row.enrolled,
      excluded: row.excluded,
      // The nodes release the number excluded, not the reasons (a reason of one patient would be a disclosure).
      excludedByReason: [],
      eligible: row.eligible,
      bySplit: rows
        .filter((r) => r.split !== null && r.pooled === row.pooled && r.site === row.site && !r.suppressed)
        .map((r) => ({ split: r.split as Split, patients: r.eligible as number })),
      joints: row.joints,
      referenceCells: row.assessable === null || row.notAssessable === null ? null : row.assessable + row.notAssessable,
      assessable: row.assessable,
      notAssessable: row.notAssessable,
      analysed: row.analysed,
      disclosure: this.disclosure(),
      federation,
    }));
  }

  /** One row in the node's MetricsGroup shape (with the AUC of the row of the same key). */
  private group(row: MetricsRowView, aucRows: readonly AucRowView[], clustered: boolean, overall: boolean) {
    const same = (a: AucRowView) =>
      a.pooled === row.pooled &&
      a.site === row.site &&
      a.feature === row.feature &&
      a.modality === row.modality &&
      a.level === row.level &&
      a.side === row.side &&
      a.split === row.split;
    const auc = aucRows.find(same);
    const estimate = (name: 'prevalence' | 'accuracy' | 'sensitivity' | 'specificity' | 'precision' | 'npv'): Estimate | null =>
      clustered ? row[name] : (row.wilson?.[name] ?? null);
    const withheld = row.suppressed;
    const rater = auc && !auc.suppressed ? auc.raters[0] : null;
    const c = row.confusion;
    return {
      pooled: overall,
      site: overall ? null : row.site,
      feature: row.feature,
      modality: row.modality,
      level: row.level,
      side: row.side,
      split: row.split,
      suppressed: withheld,
      suppression: withheld ? (SUPPRESSION[row.suppression ?? ''] ?? SuppressionReason.FEWER_THAN_MIN_PATIENTS) : null,
      cases: c ? c.tp + c.fp + c.tn + c.fn : null,
      joints: null,
      readers: null,
      patients: row.patients,
      confusion: c,
      prevalence: estimate('prevalence'),
      accuracy: estimate('accuracy'),
      sensitivity: estimate('sensitivity'),
      specificity: estimate('specificity'),
      precision: estimate('precision'),
      npv: estimate('npv'),
      f1: row.f1,
      youden: row.youden,
      auc: withheld ? null : rater ? (clustered ? rater.clustered : rater.auc) : null,
      // No ROC list at a hub: points at single scores could pin single cases, and the grid's steps are not held to the minimum.
      roc: null,
      multiclass: null,
    };
  }
}
