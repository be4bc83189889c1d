import { ExclusionReason, Level, MetricsGroupBy, Modality, ReferenceSource, Sex, Side, Split, WEISHAUPT_FEATURES } from '../domain';
import { canonicalJson, canonicalSha256, type JsonValue } from './canonical-json';
import { FederationTaskKind } from './protocol';

/**
 * A node's release policy: the last word on what leaves it. Set by the node's ADMIN in its own configuration (the hub
 * cannot change it), applied to every task after the node computed its aggregate and before anything is signed. The
 * same idea as DataSHIELD's disclosure filters (nfilter.tab, nfilter.subset, set by each data owner) and NVFLARE's
 * site-side result filters and federated authorization, vantage6's node `policies` (allowed algorithms and
 * organisations): the data holder decides, locally.
 */
export interface ReleasePolicy {
  /** Task kinds this node answers; any other is REFUSED (TASK_KIND_NOT_ALLOWED). */
  taskKinds: FederationTaskKind[];
  /** A group of fewer patients (but not zero) is suppressed: its numbers are withheld and flagged. DESIGN.md: 5. */
  minGroupPatients: number;
  /** The finest score grid a histogram may use, as a number of bins on [0, 1] (100: steps of 0.01). */
  maxScoreBins: number;
  /** Every release waits for a COORDINATOR of this node to release or refuse it. */
  manualApproval: boolean;
  /** At most `releases` releases in any `periodDays` days (a sliding window); null: no budget. */
  budget: { releases: number; periodDays: number } | null;
}

export const DEFAULT_RELEASE_POLICY: ReleasePolicy = {
  taskKinds: [FederationTaskKind.STUDY_FLOW, FederationTaskKind.BINARY_COUNTS],
  minGroupPatients: 5,
  maxScoreBins: 100,
  manualApproval: false,
  budget: { releases: 200, periodDays: 30 },
};

export class PolicyError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'PolicyError';
  }
}

/** Checks a policy an ADMIN wrote (JSON); PolicyError names the field. Missing fields take the defaults. */
export function parseReleasePolicy(raw: unknown): ReleasePolicy {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new PolicyError('$', 'a release policy is a JSON object');
  const input = raw as Record<string, unknown>;
  const known = ['taskKinds', 'minGroupPatients', 'maxScoreBins', 'manualApproval', 'budget'];
  const unknown = Object.keys(input).find((k) => !known.includes(k));
  if (unknown) throw new PolicyError(unknown, `unknown field (allowed: ${known.join(', ')})`);
  const integer = (field: string, value: unknown, min: number, max: number): number => {
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
      throw new PolicyError(field, `must be an integer from ${min} to ${max}`);
    return value as number;
  };
  const policy = { ...DEFAULT_RELEASE_POLICY };
  if (input.taskKinds !== undefined) {
    const kinds = Object.values(FederationTaskKind) as string[];
    if (!Array.isArray(input.taskKinds) || input.taskKinds.some((k) => !kinds.includes(k)))
      throw new PolicyError('taskKinds', `must list kinds of ${kinds.join(', ')}`);
    policy.taskKinds = [...new Set(input.taskKinds as FederationTaskKind[])];
  }
  // A threshold of 1 would release single patients' numbers; 3 is DataSHIELD's lowest default.
  if (input.minGroupPatients !== undefined) policy.minGroupPatients = integer('minGroupPatients', input.minGroupPatients, 3, 1000);
  if (input.maxScoreBins !== undefined) policy.maxScoreBins = integer('maxScoreBins', input.maxScoreBins, 2, 10_000);
  if (input.manualApproval !== undefined) {
    if (typeof input.manualApproval !== 'boolean') throw new PolicyError('manualApproval', 'must be true or false');
    policy.manualApproval = input.manualApproval;
  }
  if (input.budget !== undefined) {
    if (input.budget === null) policy.budget = null;
    else if (typeof input.budget !== 'object' || Array.isArray(input.budget)) throw new PolicyError('budget', 'must be null or { releases, periodDays }');
    else {
      const b = input.budget as Record<string, unknown>;
      const extra = Object.keys(b).find((k) => k !== 'releases' && k !== 'periodDays');
      if (extra) throw new PolicyError(`budget.${extra}`, 'unknown field (allowed: releases, periodDays)');
      policy.budget = { releases: integer('budget.releases', b.releases, 1, 1_000_000), periodDays: integer('budget.periodDays', b.periodDays, 1, 3660) };
    }
  }
  return policy;
}

/** One group of an aggregate: its key (dimension -> value), how many patients are behind it, and its numbers. */
export interface AggregateGroup {
  [field: string]: JsonValue;
  key: { [dimension: string]: string };
  patients: number;
  /** Counts and sums, or arrays of declared lengths (histogram bins, k x k tables, bootstrap replicates). */
  values: { [name: string]: number | number[] };
}

export interface SiteAggregate {
  [field: string]: JsonValue;
  groups: AggregateGroup[];
}

/** A released group whose numbers were withheld. */
export interface SuppressedGroup {
  [field: string]: JsonValue;
  key: { [dimension: string]: string };
  suppressed: true;
  reason: string;
}

/** What the policy needs to know about the task (the node derives it from the verified TaskPayload). */
export interface ReleaseRequest {
  kind: FederationTaskKind;
  /** Histogram tasks: bins on [0, 1]. */
  scoreBins?: number;
  /** The lengths arrays in this kind of aggregate may have (bins, k * k, replicates); any other is refused. */
  arrayLengths: number[];
  /** Set once a COORDINATOR of this node released the held task. */
  approved?: boolean;
}

/**
 * A rule deciding, group by group, whether numbers may leave: the node's statistics API has its own minimum-group-size
 * and differencing rule (FACET_MIN_GROUP_PATIENTS); when it lands it plugs in here, so that a federated release and
 * a local query cannot disagree on what is too small. `minimumPatientsRule` is the default.
 */
export type GroupRule = (
  group: AggregateGroup,
  policy: ReleasePolicy,
) => { action: 'KEEP' } | { action: 'SUPPRESS'; reason: string } | { action: 'REFUSE'; reason: string };

export const minimumPatientsRule: GroupRule = (group, policy) =>
  group.patients > 0 && group.patients < policy.minGroupPatients ? { action: 'SUPPRESS', reason: 'SMALL_GROUP' } : { action: 'KEEP' };

export type RefusalReason = 'TASK_KIND_NOT_ALLOWED' | 'GRID_TOO_FINE' | 'BUDGET_EXHAUSTED' | 'NOT_AN_AGGREGATE' | 'ALL_GROUPS_SUPPRESSED' | 'GROUP_RULE';

export type ReleaseDecision =
  | { decision: 'RELEASE' | 'HOLD_FOR_APPROVAL'; aggregate: { groups: (AggregateGroup | SuppressedGroup)[] }; suppressed: number; sha256: string }
  | { decision: 'REFUSE'; reason: RefusalReason; detail: string };

/**
 * Decides what happens to a computed aggregate: REFUSE with a reason code, or the aggregate to release (small groups
 * suppressed) with its sha256 for the audit row, either now (RELEASE) or once a coordinator agrees (HOLD_FOR_APPROVAL;
 * the coordinator sees exactly what would leave). `releasesInPeriod` counts this node's releases in the budget window.
 * Pure: the caller records the audit row and the budget use in the same transaction as the signed result.
 */
export function decideRelease(input: {
  policy: ReleasePolicy;
  request: ReleaseRequest;
  aggregate: unknown;
  vocabulary: ReadonlySet<string>;
  releasesInPeriod: number;
  rule?: GroupRule;
}): ReleaseDecision {
  const { policy, request } = input;
  const refuse = (reason: RefusalReason, detail: string): ReleaseDecision => ({ decision: 'REFUSE', reason, detail });
  if (!policy.taskKinds.includes(request.kind)) return refuse('TASK_KIND_NOT_ALLOWED', `this node does not answer ${request.kind} tasks`);
  if (request.scoreBins !== undefined && request.scoreBins > policy.maxScoreBins) {
    return refuse('GRID_TOO_FINE', `${request.scoreBins} score bins asked; this node releases at most ${policy.maxScoreBins}`);
  }
  if (policy.budget && input.releasesInPeriod >= policy.budget.releases) {
    return refuse('BUDGET_EXHAUSTED', `${policy.budget.releases} releases in ${policy.budget.periodDays} days already made`);
  }
  const shape = checkAggregateShape(input.aggregate, { vocabulary: input.vocabulary, arrayLengths: request.arrayLengths });
  if (!shape.ok) return refuse('NOT_AN_AGGREGATE', shape.problem);
  const rule = input.rule ?? minimumPatientsRule;
  const groups: (AggregateGroup | SuppressedGroup)[] = [];
  let suppressed = 0;
  for (const group of (input.aggregate as SiteAggregate).groups) {
    const verdict = rule(group, policy);
    if (verdict.action === 'REFUSE') return refuse('GROUP_RULE', verdict.reason);
    if (verdict.action === 'SUPPRESS') {
      suppressed++;
      groups.push({ key: group.key, suppressed: true, reason: verdict.reason });
    } else groups.push(group);
  }
  if (groups.length > 0 && suppressed === groups.length)
    return refuse('ALL_GROUPS_SUPPRESSED', `every group has fewer than ${policy.minGroupPatients} patients`);
  const aggregate = { groups };
  const decision = policy.manualApproval && !request.approved ? 'HOLD_FOR_APPROVAL' : 'RELEASE';
  return { decision, aggregate, suppressed, sha256: canonicalSha256(aggregate) };
}

/**
 * The words an aggregate may contain: group dimensions and their values (the domain's enums, the grading features),
 * the names of released numbers, plus `extra` (this node's site codes). Every other string is refused, so an id, a
 * pseudonym or a free-text note cannot ride along in a key or a label.
 */
export function aggregateVocabulary(extra: readonly string[] = []): Set<string> {
  return new Set<string>([
    ...Object.values(MetricsGroupBy),
    ...[Modality, Level, Side, Split, Sex, ExclusionReason, ReferenceSource].flatMap((e) => Object.values(e) as string[]),
    ...WEISHAUPT_FEATURES.map((f) => f.code),
    ...AGGREGATE_FIELDS,
    ...extra,
  ]);
}

/** Names of the numbers tasks release (stats/proportion.ts ClusteredCount, stats/sufficient.ts ClusterSums, tables, flow). */
export const AGGREGATE_FIELDS = [
  'key',
  'patients',
  'values',
  'groups',
  'joints',
  'tp',
  'fp',
  'tn',
  'fn',
  'clusters',
  'x',
  'n',
  'xx',
  'xn',
  'nn',
  'withPositives',
  'withNegatives',
  's10',
  's01',
  's11',
  'positives',
  'negatives',
  'sums',
  'siteSums',
  'table',
  'discordant',
  'enrolled',
  'excluded',
  'eligible',
  'assessable',
  'analysed',
  'notAssessable',
  'replicates',
  'grade',
  'threshold',
] as const;

/** Largest canonical aggregate: a 100-bin histogram for 5 features x 3 modalities x 10 levels is about 100 kB. */
export const MAX_AGGREGATE_BYTES = 1024 * 1024;
const MAX_GROUPS = 10_000;

/** Patterns of what must never leave, reported by name (the value itself is never echoed into a log or a reason). */
const IDENTIFIER_PATTERNS: [string, RegExp][] = [
  ['a UUID', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i],
  ['a hex digest or keyed hash', /^[0-9a-f]{16,}$/i],
  ['a DICOM UID', /^\d+(\.\d+){3,}$/],
  ['a date', /\d{4}-\d{2}-\d{2}|\d{8}/],
  ['an e-mail address', /@/],
  ['an identifier mixing letters and digits', /(?=.*[A-Za-z])(?=.*\d)^[A-Za-z0-9_.^-]{4,}$/],
];

/**
 * The last line of defence, run on what is about to be signed: the payload must be `{ groups: [...] }` of groups
 * `{ key: {dimension: word}, patients: integer, values: {name: number | number[]} }`, with every string a word of the
 * vocabulary, every number finite, every array one of the declared lengths (so no per-case list can pass as a
 * histogram of another length), and no more than MAX_AGGREGATE_BYTES in all.
 */
export function checkAggregateShape(
  payload: unknown,
  expect: { vocabulary: ReadonlySet<string>; arrayLengths: readonly number[] },
): { ok: true } | { ok: false; problem: string } {
  const fail = (path: string, what: string) => ({ ok: false as const, problem: `${path}: ${what}` });
  const word = (path: string, s: unknown): { ok: false; problem: string } | null => {
    if (typeof s !== 'string') return fail(path, 'must be a string');
    if (expect.vocabulary.has(s)) return null;
    const looksLike = IDENTIFIER_PATTERNS.find(([, re]) => re.test(s));
    return fail(
      path,
      looksLike
        ? `a string that looks like ${looksLike[0]} (${s.length} characters) may not leave`
        : `a string outside the aggregate vocabulary (${s.length} characters)`,
    );
  };
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(payload)) return fail('$', 'an aggregate is an object { groups }');
  const keys = Object.keys(payload);
  if (keys.length !== 1 || keys[0] !== 'groups' || !Array.isArray(payload.groups)) return fail('$', 'an aggregate is exactly { groups: [...] }');
  if (payload.groups.length > MAX_GROUPS) return fail('$.groups', `more than ${MAX_GROUPS} groups`);
  for (const [g, group] of payload.groups.entries()) {
    const at = `$.groups[${g}]`;
    if (!isObject(group)) return fail(at, 'a group is an object { key, patients, values }');
    const extra = Object.keys(group).find((k) => !['key', 'patients', 'values'].includes(k));
    if (extra !== undefined) return word(`${at}.${extra}`, extra) ?? fail(`${at}.${extra}`, 'a group holds only key, patients and values');
    if (!isObject(group.key)) return fail(`${at}.key`, 'must be an object of dimension -> value');
    for (const [dimension, value] of Object.entries(group.key)) {
      const bad = word(`${at}.key`, dimension) ?? word(`${at}.key.${dimension}`, value);
      if (bad) return bad;
    }
    if (!Number.isSafeInteger(group.patients) || (group.patients as number) < 0) return fail(`${at}.patients`, 'must be a count of patients');
    if (!isObject(group.values)) return fail(`${at}.values`, 'must be an object of name -> number or array of numbers');
    for (const [name, value] of Object.entries(group.values)) {
      const bad = word(`${at}.values`, name);
      if (bad) return bad;
      const path = `${at}.values.${name}`;
      if (Array.isArray(value)) {
        if (!expect.arrayLengths.includes(value.length))
          return fail(path, `an array of ${value.length} is none of the declared lengths (${expect.arrayLengths.join(', ') || 'none'})`);
        const i = value.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v));
        if (i >= 0) return fail(`${path}[${i}]`, 'must be a finite number');
      } else if (typeof value !== 'number' || !Number.isFinite(value)) return fail(path, 'must be a finite number or an array of them');
    }
  }
  const bytes = Buffer.byteLength(canonicalJson(payload), 'utf8');
  if (bytes > MAX_AGGREGATE_BYTES) return fail('$', `${bytes} bytes is more than an aggregate needs (${MAX_AGGREGATE_BYTES})`);
  return { ok: true };
}
