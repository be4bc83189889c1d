import { agreementOf, type AgreementOfRow, type AgreementValues } from './agreement-rounds';
import { bootstrapIntervals, type BootstrapSums } from './bootstrap-rounds';
import type { JsonValue } from './canonical-json';
import { canonicalJson } from './canonical-json';
import { histogramLength, sumsLength, type AucQuery } from './compute-auc';
import { aucAnswerRows, placementTablesOf, type AucContribution, type AucRow } from './pool-auc';
import {
  AggregateError,
  parseReleasedAggregate,
  poolContributions,
  SITE_DIMENSION,
  withDeclaredWithheld,
  type AnswerRow,
  type Contribution,
  type ReleasedAggregate,
  type ReleasedKind,
} from './pool';
import { FederationTaskKind, secureDeclarationOf, type ResultPayload } from './protocol';
import type { PooledTotal } from './secure-sum-transport';
import { aggregateVocabulary } from './release-policy';

/**
 * The one function from a federated query's stored signed results to its answer rows, for every kind: the hub runs
 * it on every read and export, `facet verify` on an exported answer. A query is one part (STUDY_FLOW, BINARY_COUNTS,
 * AGREEMENT) or several the hub chains (AUC: score histograms, then placement sums against the pooled histograms;
 * BINARY_COUNTS with a bootstrap: the Poisson replicate sums beside the counts). Pooled totals come from the parts'
 * results through pool.ts and pool-auc.ts, so how the totals are obtained (plain sums today, secure sums) is theirs.
 *
 * Disclosure at the hub: a pooled row with fewer than `minGroupPatients` patients is withheld (`SMALL_GROUP`) as a
 * site's own group would be; a row with no released group is `ALL_SITES_WITHHELD`.
 */

export interface AnswerPart {
  /** The hub task's kind (FederatedQueryKind): AUC, PLACEMENT_SUMS, BOOTSTRAP_SUMS… */
  kind: string;
  /** The task's query as the sites received it. */
  query: JsonValue;
  /** The sites the part was addressed to. */
  sites: readonly string[];
  results: readonly { site: string; state: string; payload: Pick<ResultPayload, 'aggregate'> }[];
  /** The part's pooled rows summed by a secure round (docs/federation.md 6.1): its sites released none of them. */
  totals?: readonly PooledTotal[];
}

export interface AnswerOptions {
  minGroupPatients: number;
  level?: number;
}

/** A BINARY_COUNTS row with its Poisson cluster bootstrap intervals (null: none, or sites that differ from the counts'). */
export type MetricsAnswerRow = AnswerRow & { bootstrap?: Record<string, JsonValue> | null };
/** An AGREEMENT row: summed k x k table and paired correct calls, and kappa, percent agreement and McNemar from them. */
export type AgreementAnswerRow = AnswerRow & { agreement: (AgreementOfRow & Record<string, JsonValue>) | null };
export type FederatedAnswerRow = MetricsAnswerRow | AgreementAnswerRow | (AucRow & Record<string, JsonValue>);

export type AnswerRowsOutcome = { ok: true; rows: FederatedAnswerRow[] } | { ok: false; problem: string };

const RELEASED: Record<string, ReleasedKind> = {
  STUDY_FLOW: FederationTaskKind.STUDY_FLOW,
  BINARY_COUNTS: FederationTaskKind.BINARY_COUNTS,
  AUC: FederationTaskKind.SCORE_HISTOGRAM,
  PLACEMENT_SUMS: FederationTaskKind.PLACEMENT_SUMS,
  BOOTSTRAP_SUMS: FederationTaskKind.BOOTSTRAP_SUMS,
  AGREEMENT: FederationTaskKind.AGREEMENT_TABLE,
};

const keyId = (key: Record<string, string>): string => canonicalJson(key);

function contributionsOf(part: AnswerPart, lengths?: readonly number[]): Contribution[] {
  const kind = RELEASED[part.kind];
  if (!kind) throw new AggregateError(`${part.kind} is not pooled by this hub`);
  const vocabulary = aggregateVocabulary();
  return part.results
    .filter((r) => r.state === 'SUCCEEDED')
    .map((r) => ({
      site: r.site,
      // A secure task's result names the pooled keys its site withheld (its numbers went only into the masked sum).
      aggregate: withDeclaredWithheld(parseReleasedAggregate(kind, r.payload.aggregate, vocabulary, lengths), secureDeclarationOf(r.payload)),
    }));
}

/** Withholds pooled rows below the minimum: a pooled row is a release of the hub's like any site's group. */
function withMinimum<T extends AnswerRow>(rows: T[], minGroupPatients: number): T[] {
  return rows.map((row) =>
    row.pooled && !row.suppressed && (row.patients ?? 0) < minGroupPatients
      ? { ...row, suppressed: true, suppression: 'SMALL_GROUP', patients: null, values: null, metrics: null }
      : row,
  );
}

/** The bootstrap intervals of BINARY_COUNTS rows, from the BOOTSTRAP_SUMS part's replicate sums of the same sites. */
function withBootstrap(rows: AnswerRow[], part: AnswerPart, level: number): MetricsAnswerRow[] {
  const replicates = (part.query as { replicates?: unknown }).replicates;
  if (typeof replicates !== 'number') throw new AggregateError('the bootstrap part names no replicates');
  const bySite = new Map<string, Map<string, BootstrapSums>>();
  for (const c of contributionsOf(part, [replicates])) {
    bySite.set(c.site, new Map(c.aggregate.groups.map((g) => [keyId(g.key), g.values as BootstrapSums])));
  }
  const withoutSite = (key: Record<string, string>) => Object.fromEntries(Object.entries(key).filter(([d]) => d !== SITE_DIMENSION));
  return rows.map((row): MetricsAnswerRow => {
    if (row.suppressed || row.values === null) return { ...row, bootstrap: null };
    // A site row's own replicates; a pooled row's are the sum over exactly the sites in its counts.
    const sources = row.pooled
      ? row.sites.map((site) => bySite.get(site)?.get(keyId(withoutSite(row.key))))
      : [bySite.get(row.node as string)?.get(keyId(row.key))];
    if (row.pooled) {
      // Pooled keys lack SITE, a site's groups have it when grouped by SITE: then the pooled replicates are the sum of its groups.
      for (const [i, site] of row.sites.entries()) {
        if (sources[i] !== undefined) continue;
        const groups = [...(bySite.get(site)?.entries() ?? [])].filter(
          ([id]) => keyId(withoutSite(JSON.parse(id) as Record<string, string>)) === keyId(row.key),
        );
        if (groups.length > 0) sources[i] = sumReplicates(groups.map(([, sums]) => sums));
      }
    }
    if (sources.some((s) => s === undefined)) return { ...row, bootstrap: null };
    const sums = sumReplicates(sources as BootstrapSums[]);
    const v = row.values as Record<string, number>;
    return { ...row, bootstrap: bootstrapIntervals({ tp: v.tp, fp: v.fp, tn: v.tn, fn: v.fn }, sums, level) as Record<string, JsonValue> };
  });
}

function sumReplicates(list: readonly BootstrapSums[]): BootstrapSums {
  const out: BootstrapSums = { tp: [], fp: [], tn: [], fn: [] };
  for (const field of ['tp', 'fp', 'tn', 'fn'] as const) out[field] = list[0][field].map((_, r) => list.reduce((s, sums) => s + sums[field][r], 0));
  return out;
}

function aucRows(parts: readonly AnswerPart[], options: AnswerOptions): FederatedAnswerRow[] {
  const [round1, round2] = parts;
  const query = round1.query as unknown as AucQuery;
  const toAuc = (c: Contribution): AucContribution => ({ site: c.site, groups: c.aggregate.groups, suppressed: c.aggregate.suppressed });
  let first = contributionsOf(round1, [histogramLength(query)]).map(toAuc);
  // Round 2 went to round 1's contributors when round 1 settled: a late round-1 result is not in round 2's tables, so
  // it stays out of the answer (its histograms would pool with sums that do not cover its patients).
  if (round2) first = first.filter((c) => round2.sites.includes(c.site));
  const second = round2 ? contributionsOf(round2, [sumsLength(query.raters.length)]).map(toAuc) : [];
  return aucAnswerRows(first, second, query, { minPatients: options.minGroupPatients, level: options.level }) as FederatedAnswerRow[];
}

/**
 * AUC round 2's query: round 1's with the pooled placement tables of every pooled key of at least `minGroupPatients`
 * patients. Throws AggregateError on a round-1 aggregate that does not fit its query.
 */
export function placementSumsQueryOf(round1: AnswerPart, minGroupPatients: number): { [field: string]: JsonValue } {
  const query = round1.query as unknown as AucQuery;
  const contributions = contributionsOf(round1, [histogramLength(query)]).map((c): AucContribution => ({
    site: c.site,
    groups: c.aggregate.groups,
    suppressed: c.aggregate.suppressed,
  }));
  return { ...query, tables: placementTablesOf(contributions, query, minGroupPatients) };
}

function agreementRows(part: AnswerPart, options: AnswerOptions): AgreementAnswerRow[] {
  const contributions = contributionsOf(part);
  for (const c of contributions) {
    for (const g of c.aggregate.groups) {
      const k = Math.round(Math.sqrt((g.values.table as number[]).length));
      if (k * k !== (g.values.table as number[]).length || (g.values.discordant as number[]).length !== 4)
        throw new AggregateError(`${c.site}: an agreement group holds a k x k table and 4 paired counts`);
    }
  }
  const rows = withMinimum(poolContributions(FederationTaskKind.AGREEMENT_TABLE, contributions), options.minGroupPatients);
  return rows.map((row) => {
    if (row.values === null) return { ...row, agreement: null };
    const values = row.values as unknown as AgreementValues;
    const k = Math.round(Math.sqrt(values.table.length));
    return { ...row, agreement: agreementOf(values, k) as AgreementOfRow & Record<string, JsonValue> };
  });
}

/** The rows of a federated answer from its parts (the researcher's task first, then the parts the hub chained to it). */
export function federatedAnswerRows(kind: string, parts: readonly AnswerPart[], options: AnswerOptions): AnswerRowsOutcome {
  const level = options.level ?? 0.95;
  try {
    if (parts.length === 0) return { ok: true, rows: [] };
    if (kind === 'AUC') return { ok: true, rows: aucRows(parts, options) };
    if (kind === 'AGREEMENT') return { ok: true, rows: agreementRows(parts[0], options) };
    if (kind !== 'STUDY_FLOW' && kind !== 'BINARY_COUNTS') return { ok: false, problem: `${kind} is not pooled by this hub` };
    const released = RELEASED[kind] as FederationTaskKind.STUDY_FLOW | FederationTaskKind.BINARY_COUNTS;
    const rows = withMinimum(poolContributions(released, contributionsOf(parts[0]), level, parts[0].totals ?? []), options.minGroupPatients);
    const bootstrap = parts.find((p) => p.kind === 'BOOTSTRAP_SUMS');
    return { ok: true, rows: bootstrap ? withBootstrap(rows, bootstrap, level) : rows };
  } catch (error) {
    if (error instanceof AggregateError) return { ok: false, problem: error.message };
    throw error;
  }
}

export type { ReleasedAggregate };
