import { clusteredWilson, wilson, type ClusteredCount } from '../stats/proportion';
import type { Estimate, UndefinedReason } from '../stats/estimate';
import { canonicalJson, canonicalSha256, type JsonValue } from './canonical-json';
import { FederationTaskKind, secureDeclarationOf, type ResultPayload, type SecureDeclaration } from './protocol';
import { aggregateVocabulary, checkAggregateShape, type AggregateGroup, type SuppressedGroup } from './release-policy';
import type { PooledTotal } from './secure-sum-transport';
import { SITE_CODE_PATTERN } from './site-registry';
import { PROPORTIONS, type Proportion } from './task-kinds';

/**
 * Pooling at the hub: what the sites released, as per-site rows, and their sums per group as pooled rows, with the
 * metrics of each row computed from its sums. Pure, so the hub and `facet verify` (which recomputes an exported
 * answer from the signed contributions) run the very same code. In this version pooled rows are plain sums of what
 * each node released in plain when the SITE rows are released (they show each site's numbers anyway), and the totals
 * of a secure round when they are not (secure-sum-transport.ts): then the hub never holds one site's numbers.
 *
 * A pooled BINARY_COUNTS row sums the clustered sums (stats/proportion.ts ClusteredCount) of its sites: patients
 * belong to one site, so the clusters of the union are the sites' clusters side by side and the sums add up. Its
 * Wilson and design-effect Wilson intervals are therefore the single-node numbers on the union of the data.
 */

/** The numbers a task kind's groups carry (task-kinds.ts StudyFlowValues, BinaryCountsValues). */
export const STUDY_FLOW_FIELDS = ['enrolled', 'excluded', 'eligible', 'joints', 'assessable', 'notAssessable', 'analysed'] as const;
export const BINARY_COUNT_FIELDS = ['tp', 'fp', 'tn', 'fn'] as const;
export const BINARY_SUM_FIELDS = ['clusters', 'x', 'n', 'xx', 'xn', 'nn'] as const;

/** The dimension that names a site; pooled rows sum over it. */
export const SITE_DIMENSION = 'SITE';

export type PoolableKind = FederationTaskKind.STUDY_FLOW | FederationTaskKind.BINARY_COUNTS;

export const isPoolableKind = (kind: string): kind is PoolableKind => kind === FederationTaskKind.STUDY_FLOW || kind === FederationTaskKind.BINARY_COUNTS;

/** The kinds whose aggregates the hub reads: the poolable ones and the parts of AUC, bootstrap and agreement queries. */
export type ReleasedKind =
  | PoolableKind
  | FederationTaskKind.SCORE_HISTOGRAM
  | FederationTaskKind.PLACEMENT_SUMS
  | FederationTaskKind.BOOTSTRAP_SUMS
  | FederationTaskKind.AGREEMENT_TABLE;

/**
 * The values each kind's groups must carry; `counts` are whole non-negative numbers, `signed` may be negative (the
 * AUC's cross-products). A kind with `extra` may carry more single counts (a node's finer breakdown).
 */
const KIND_VALUES: Record<ReleasedKind, { fields: readonly string[]; counts: readonly string[]; signed?: boolean; extra?: boolean }> = {
  [FederationTaskKind.STUDY_FLOW]: { fields: STUDY_FLOW_FIELDS, counts: STUDY_FLOW_FIELDS, extra: true },
  [FederationTaskKind.BINARY_COUNTS]: {
    fields: [...BINARY_COUNT_FIELDS, ...BINARY_SUM_FIELDS],
    counts: [...BINARY_COUNT_FIELDS, 'clusters', 'x', 'n'],
    extra: true,
  },
  [FederationTaskKind.SCORE_HISTOGRAM]: { fields: ['positives', 'negatives'], counts: ['positives', 'negatives'] },
  [FederationTaskKind.PLACEMENT_SUMS]: { fields: ['sums', 'siteSums'], counts: [], signed: true },
  [FederationTaskKind.BOOTSTRAP_SUMS]: { fields: ['tp', 'fp', 'tn', 'fn'], counts: ['tp', 'fp', 'tn', 'fn'] },
  [FederationTaskKind.AGREEMENT_TABLE]: { fields: ['table', 'discordant'], counts: ['table', 'discordant'] },
};

export const isReleasedKind = (kind: string): kind is ReleasedKind => kind in KIND_VALUES;

/** One site's released aggregate, checked: its groups with numbers, and those it withheld. */
export interface ReleasedAggregate {
  groups: AggregateGroup[];
  suppressed: SuppressedGroup[];
}

export class AggregateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AggregateError';
  }
}

const REASON = /^[A-Z][A-Z0-9_]{0,63}$/;
const SITE_CODE = new RegExp(SITE_CODE_PATTERN);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Checks what a site sent for a task of `kind`: `{groups}` of groups with numbers (the node's shape check:
 * vocabulary words only, arrays of the declared lengths) or suppressed groups `{key, suppressed: true, reason}`,
 * and the numbers each kind needs, as non-negative finite numbers (counts as integers). Throws AggregateError.
 */
export function parseReleasedAggregate(
  kind: ReleasedKind,
  aggregate: unknown,
  vocabulary: ReadonlySet<string>,
  /** The array lengths the task declares (bins, replicates…); absent: BINARY_COUNTS' own, or any length for the others. */
  declaredLengths?: readonly number[],
): ReleasedAggregate {
  if (!isObject(aggregate) || !Array.isArray(aggregate.groups) || Object.keys(aggregate).length !== 1) {
    throw new AggregateError('an aggregate is exactly { groups: [...] }');
  }
  // SITE values are the node's site codes, which the hub's vocabulary cannot list: any value of the registry's code form passes.
  const words = new Set(vocabulary);
  for (const group of aggregate.groups) {
    const site = isObject(group) && isObject(group.key) ? group.key[SITE_DIMENSION] : undefined;
    if (typeof site === 'string' && SITE_CODE.test(site)) words.add(site);
  }
  vocabulary = words;
  const released: AggregateGroup[] = [];
  const suppressed: SuppressedGroup[] = [];
  for (const [i, group] of aggregate.groups.entries()) {
    if (isObject(group) && group.suppressed === true) {
      const extra = Object.keys(group).find((k) => !['key', 'suppressed', 'reason'].includes(k));
      if (extra !== undefined) throw new AggregateError(`$.groups[${i}]: a suppressed group holds only key, suppressed and reason`);
      if (typeof group.reason !== 'string' || !REASON.test(group.reason)) throw new AggregateError(`$.groups[${i}].reason: must be a reason code`);
      // The key of a suppressed group goes through the same vocabulary check as a released one.
      const shape = checkAggregateShape({ groups: [{ key: group.key, patients: 0, values: {} }] }, { vocabulary, arrayLengths: [] });
      if (!shape.ok) throw new AggregateError(shape.problem.replace('$.groups[0]', `$.groups[${i}]`));
      suppressed.push({ key: group.key as Record<string, string>, suppressed: true, reason: group.reason });
    } else released.push(group as AggregateGroup);
  }
  const spec = KIND_VALUES[kind];
  const arrayLengths =
    declaredLengths ??
    (kind === FederationTaskKind.BINARY_COUNTS
      ? [PROPORTIONS.length]
      : kind === FederationTaskKind.STUDY_FLOW
        ? []
        : // Without the task's query at hand (a submission's first check), any length passes here; reading the answer checks them.
          [
            ...new Set(
              released
                .flatMap((g) => (isObject(g) && isObject(g.values) ? Object.values(g.values) : []))
                .filter(Array.isArray)
                .map((a) => a.length),
            ),
          ]);
  const shape = checkAggregateShape({ groups: released }, { vocabulary, arrayLengths });
  if (!shape.ok) throw new AggregateError(shape.problem);
  const fields = spec.fields;
  const seen = new Set<string>();
  for (const [g, group] of released.entries()) {
    const names = Object.keys(group.values);
    const missing = fields.find((f) => !names.includes(f));
    if (missing) throw new AggregateError(`$.groups[${g}].values.${missing}: missing`);
    // More counts than the kind's (a node's finer breakdown, e.g. exclusions by reason) pass and are summed like the
    // rest, as single non-negative numbers: the shape check already held their names to the vocabulary.
    const extras = names.filter((n) => !fields.includes(n));
    if (!spec.extra && extras.length > 0) throw new AggregateError(`$.groups[${g}].values.${extras[0]}: not a value of ${kind}`);
    for (const name of extras) {
      const value = group.values[name];
      if (typeof value !== 'number' || value < 0)
        throw new AggregateError(`$.groups[${g}].values.${name}: an additional value must be one non-negative number`);
    }
    for (const name of fields) {
      const value = group.values[name];
      const numbers = Array.isArray(value) ? value : [value];
      const countLike = spec.counts.includes(name);
      if (numbers.some((v) => (!spec.signed && v < 0) || (countLike && !Number.isSafeInteger(v))))
        throw new AggregateError(`$.groups[${g}].values.${name}: must be a count`);
    }
  }
  for (const [g, group] of [...released, ...suppressed].entries()) {
    const key = keyId(group.key);
    if (seen.has(key)) throw new AggregateError(`$.groups[${g}].key: two groups have the same key`);
    seen.add(key);
  }
  return { groups: released, suppressed };
}

const keyId = (key: Record<string, string>): string => canonicalJson(key);

/** An interval per proportion: the design-effect (patient-clustered) Wilson the node reports by default, and the plain Wilson. */
export interface ProportionEstimates {
  [field: string]: JsonValue;
  clustered: Estimate & { [field: string]: JsonValue };
  wilson: Estimate & { [field: string]: JsonValue };
}

export interface BinaryMetricsOfRow {
  [field: string]: JsonValue;
  prevalence: ProportionEstimates;
  accuracy: ProportionEstimates;
  sensitivity: ProportionEstimates;
  specificity: ProportionEstimates;
  precision: ProportionEstimates;
  npv: ProportionEstimates;
  /** Point estimates only: their intervals need the Poisson bootstrap, a later task kind. */
  f1: Estimate & { [field: string]: JsonValue };
  youden: Estimate & { [field: string]: JsonValue };
}

/** Why each proportion can be undefined (stats/engine.ts uses the same). */
const UNDEFINED_BECAUSE: Record<Proportion, UndefinedReason> = {
  accuracy: 'NO_CASES',
  sensitivity: 'NO_POSITIVES',
  specificity: 'NO_NEGATIVES',
  precision: 'NO_PREDICTED_POSITIVES',
  npv: 'NO_PREDICTED_NEGATIVES',
  prevalence: 'NO_CASES',
};

const point = (value: number | null, reason: UndefinedReason): Estimate & { [field: string]: JsonValue } =>
  value === null ? { value: null, lower: null, upper: null, method: 'none', reason } : { value, lower: null, upper: null, method: 'none', reason: null };

/** The metrics of one BINARY_COUNTS group from its sums, at confidence `level`. */
export function binaryMetricsOf(values: Record<string, number | number[]>, level = 0.95): BinaryMetricsOfRow {
  const sums = (field: (typeof BINARY_SUM_FIELDS)[number]) => values[field] as number[];
  const proportion = (name: Proportion): ProportionEstimates => {
    const i = PROPORTIONS.indexOf(name);
    const count: ClusteredCount = {
      clusters: sums('clusters')[i],
      x: sums('x')[i],
      n: sums('n')[i],
      xx: sums('xx')[i],
      xn: sums('xn')[i],
      nn: sums('nn')[i],
    };
    const reason = UNDEFINED_BECAUSE[name];
    return { clustered: { ...clusteredWilson(count, level, reason) }, wilson: { ...wilson(count.x, count.n, level, reason) } };
  };
  const { tp, fp, fn, tn } = values as Record<(typeof BINARY_COUNT_FIELDS)[number], number>;
  const sensitivity = tp + fn > 0 ? tp / (tp + fn) : null;
  const specificity = tn + fp > 0 ? tn / (tn + fp) : null;
  return {
    prevalence: proportion('prevalence'),
    accuracy: proportion('accuracy'),
    sensitivity: proportion('sensitivity'),
    specificity: proportion('specificity'),
    precision: proportion('precision'),
    npv: proportion('npv'),
    f1: point(tp + fn > 0 ? (2 * tp) / (2 * tp + fp + fn) : null, 'NO_POSITIVES'),
    youden: point(sensitivity !== null && specificity !== null ? sensitivity + specificity - 1 : null, sensitivity === null ? 'NO_POSITIVES' : 'NO_NEGATIVES'),
  };
}

/** One row of a pooled answer. */
export interface AnswerRow {
  [field: string]: JsonValue;
  /** false: one site's group as it released it; true: the sum over sites of the groups with this key. */
  pooled: boolean;
  /** The contributing member (registry code) of a site row; null in a pooled row. */
  node: string | null;
  /** The group's key: SITE (and the other dimensions) in a site row, the other dimensions in a pooled row. */
  key: { [dimension: string]: string };
  suppressed: boolean;
  /** The site's reason (SMALL_GROUP…) for a suppressed site row. */
  suppression: string | null;
  patients: number | null;
  values: { [name: string]: number | number[] } | null;
  /** BINARY_COUNTS: the metrics of the row's sums. */
  metrics: BinaryMetricsOfRow | null;
  /** Pooled rows: the members whose released group is in the sum, and those that withheld theirs (suppressed). */
  sites: string[];
  withheld: string[];
}

export interface Contribution {
  /** The member's registry code (the signer of its result). */
  site: string;
  aggregate: ReleasedAggregate;
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const addValues = (into: Record<string, number | number[]>, from: Record<string, number | number[]>): void => {
  for (const [name, value] of Object.entries(from)) {
    const current = into[name];
    if (Array.isArray(value)) into[name] = (current as number[] | undefined)?.map((v, i) => v + value[i]) ?? [...value];
    else into[name] = ((current as number | undefined) ?? 0) + value;
  }
};

/**
 * The rows of an answer: each site's groups as released (suppressed ones shown as suppressed), then one pooled row
 * per key without SITE, summing the released groups of that key over the sites and naming the sites that withheld
 * theirs. Deterministic (sorted by site and canonical key), so its sha256 is reproducible. `totals` are pooled rows
 * that come summed already, from a secure round: they add to the pooled rows and make no site row.
 */
export function poolContributions(kind: ReleasedKind, contributions: readonly Contribution[], level = 0.95, totals: readonly PooledTotal[] = []): AnswerRow[] {
  const metricsOf = (values: Record<string, number | number[]>) => (kind === FederationTaskKind.BINARY_COUNTS ? binaryMetricsOf(values, level) : null);
  const siteRows: AnswerRow[] = [];
  const pooled = new Map<
    string,
    { key: Record<string, string>; patients: number; values: Record<string, number | number[]>; sites: Set<string>; withheld: Set<string> }
  >();
  const pooledKey = (key: Record<string, string>) => Object.fromEntries(Object.entries(key).filter(([dimension]) => dimension !== SITE_DIMENSION));
  const slot = (key: Record<string, string>) => {
    const id = keyId(key);
    let entry = pooled.get(id);
    if (!entry) pooled.set(id, (entry = { key, patients: 0, values: {}, sites: new Set(), withheld: new Set() }));
    return entry;
  };
  for (const { site, aggregate } of [...contributions].sort((a, b) => compareText(a.site, b.site))) {
    for (const group of aggregate.groups) {
      siteRows.push({
        pooled: false,
        node: site,
        key: { ...group.key },
        suppressed: false,
        suppression: null,
        patients: group.patients,
        values: { ...group.values },
        metrics: metricsOf(group.values),
        sites: [site],
        withheld: [],
      });
      const entry = slot(pooledKey(group.key));
      entry.patients += group.patients;
      addValues(entry.values, group.values);
      entry.sites.add(site);
    }
    for (const group of aggregate.suppressed) {
      siteRows.push({
        pooled: false,
        node: site,
        key: { ...group.key },
        suppressed: true,
        suppression: group.reason,
        patients: null,
        values: null,
        metrics: null,
        sites: [site],
        withheld: [],
      });
      slot(pooledKey(group.key)).withheld.add(site);
    }
  }
  // Secure-summed rows: the round's totals, in which the hub never saw one site's numbers (secure-sum-transport.ts).
  for (const total of totals) {
    const entry = slot(total.key);
    entry.patients += total.patients;
    addValues(entry.values, total.values);
    for (const site of total.sites) entry.sites.add(site);
  }
  const byKey = (a: AnswerRow, b: AnswerRow) => compareText(keyId(a.key), keyId(b.key));
  siteRows.sort((a, b) => compareText(a.node as string, b.node as string) || byKey(a, b));
  const pooledRows: AnswerRow[] = [...pooled.values()].map((entry) => {
    const released = entry.sites.size > 0;
    return {
      pooled: true,
      node: null,
      key: entry.key,
      // Every site withheld this group: there is nothing to sum.
      suppressed: !released,
      suppression: released ? null : 'ALL_SITES_WITHHELD',
      patients: released ? entry.patients : null,
      values: released ? entry.values : null,
      metrics: released ? metricsOf(entry.values) : null,
      sites: [...entry.sites].sort(compareText),
      withheld: [...entry.withheld].sort(compareText),
    };
  });
  pooledRows.sort(byKey);
  return [...siteRows, ...pooledRows];
}

/** The sha256 the export and `facet verify` compare: of the canonical rows. */
export const rowsSha256 = (rows: readonly AnswerRow[]): string => canonicalSha256(rows as unknown as JsonValue);

const SHA256 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type ResultCheck = { ok: true } | { ok: false; code: 'MALFORMED_RESULT' | 'MANIFEST_MISMATCH' };

/**
 * The shape of a ResultPayload (protocol.ts) and its manifest's bindings: the manifest names the same task hash
 * and, for a SUCCEEDED result, the hash of exactly the aggregate it travels with, so a manifest cannot be moved to
 * another result.
 */
export function checkResultPayload(payload: unknown): ResultCheck {
  if (!isObject(payload)) return { ok: false, code: 'MALFORMED_RESULT' };
  const { taskId, taskSha256, site, state, reason, manifest } = payload;
  if (typeof taskId !== 'string' || !UUID.test(taskId) || typeof taskSha256 !== 'string' || !SHA256.test(taskSha256) || typeof site !== 'string') {
    return { ok: false, code: 'MALFORMED_RESULT' };
  }
  if (state !== 'SUCCEEDED' && state !== 'REFUSED' && state !== 'FAILED') return { ok: false, code: 'MALFORMED_RESULT' };
  if (reason !== null && (typeof reason !== 'string' || reason.length > 200)) return { ok: false, code: 'MALFORMED_RESULT' };
  if (!('aggregate' in payload) || !isObject(manifest)) return { ok: false, code: 'MALFORMED_RESULT' };
  if (manifest.taskSha256 !== taskSha256) return { ok: false, code: 'MANIFEST_MISMATCH' };
  // Only a SUCCEEDED result releases numbers; a refusal or failure may not have computed an aggregate to hash.
  if (state === 'SUCCEEDED' && manifest.aggregateSha256 !== canonicalSha256(payload.aggregate)) return { ok: false, code: 'MANIFEST_MISMATCH' };
  return { ok: true };
}

/** The task kind (protocol.ts) whose aggregates a hub task of each kind receives, where the names differ. */
export const RELEASED_KIND_OF_TASK: Readonly<Record<string, ReleasedKind>> = {
  AUC: FederationTaskKind.SCORE_HISTOGRAM,
  AGREEMENT: FederationTaskKind.AGREEMENT_TABLE,
};

/**
 * Checks the SUCCEEDED results' aggregates and pools them (pool.ts); REFUSED and FAILED results carry none.
 * Used on submission (one result: is it poolable?) and on every read and export (all of them).
 */
export function answerRowsOf(
  kind: string,
  results: readonly { site: string; state: string; payload: Pick<ResultPayload, 'aggregate'> }[],
  totals: readonly PooledTotal[] = [],
): { ok: true; rows: AnswerRow[] } | { ok: false; problem: string } {
  // A hub task's kind names what its sites release: an AUC query's own task is its first round, an AGREEMENT's its tables.
  const released = RELEASED_KIND_OF_TASK[kind] ?? kind;
  if (!isReleasedKind(released)) return { ok: false, problem: `${kind} is not pooled by this hub` };
  const vocabulary = aggregateVocabulary();
  const contributions: Contribution[] = [];
  try {
    for (const r of results)
      if (r.state === 'SUCCEEDED')
        contributions.push({
          site: r.site,
          aggregate: withDeclaredWithheld(parseReleasedAggregate(released, r.payload.aggregate, vocabulary), secureDeclarationOf(r.payload)),
        });
  } catch (error) {
    if (error instanceof AggregateError) return { ok: false, problem: error.message };
    throw error;
  }
  // The rounds of AUC, bootstrap and agreement queries pool with their query (answer-rows.ts); here they are only checked.
  return { ok: true, rows: isPoolableKind(released) ? poolContributions(released, contributions, 0.95, totals) : [] };
}

/** A secure task's result names the pooled keys the site withheld: they count as its suppressed groups. */
export function withDeclaredWithheld(aggregate: ReleasedAggregate, declaration: SecureDeclaration | null): ReleasedAggregate {
  if (!declaration) return aggregate;
  const withheld = declaration.withheld.map((w) => ({ key: JSON.parse(w.key) as Record<string, string>, suppressed: true as const, reason: w.reason }));
  return { groups: aggregate.groups, suppressed: [...aggregate.suppressed, ...withheld] };
}
