import { Level, Modality, ReaderSlot, Side, Split, WEISHAUPT_FEATURES } from '../domain';
import type { JsonValue } from './canonical-json';
import { FederationTaskKind } from './protocol';
import type { BinaryCountsQuery, FederatedGroupBy, FederatedRater, FederatedScope, StudyFlowQuery } from './task-kinds';

/**
 * Why a node could not compute a task (a FAILED result's reason): short codes, never a value or a stack, since the
 * reason crosses to the hub.
 */
export type ComputeFailure = 'BAD_QUERY' | 'UNSUPPORTED_KIND' | 'UNKNOWN_MODEL' | 'NO_FROZEN_SPLIT' | 'COMPUTE_ERROR';

export class ComputeError extends Error {
  constructor(
    readonly code: ComputeFailure,
    message: string,
  ) {
    super(message);
    this.name = 'ComputeError';
  }
}

const GROUP_BY: readonly FederatedGroupBy[] = ['SITE', 'FEATURE', 'MODALITY', 'LEVEL', 'SIDE', 'SPLIT'];
const SCOPE_FIELDS = ['modalities', 'features', 'levels', 'sides', 'splits', 'confirmedOnly'];
const isObject = (v: unknown): v is Record<string, JsonValue> => v !== null && typeof v === 'object' && !Array.isArray(v);
const bad = (field: string, what: string): never => {
  throw new ComputeError('BAD_QUERY', `${field}: ${what}`);
};

function onlyFields(value: Record<string, unknown>, allowed: readonly string[], at: string): void {
  const extra = Object.keys(value).find((k) => !allowed.includes(k));
  if (extra !== undefined) bad(`${at}.${extra}`, `unknown field (allowed: ${allowed.join(', ')})`);
}

function words<T extends string>(value: unknown, allowed: readonly T[], field: string): T[] {
  if (!Array.isArray(value) || value.some((v) => !(allowed as readonly unknown[]).includes(v))) bad(field, `must list values of ${allowed.join(', ')}`);
  return [...new Set(value as T[])];
}

/** A task's scope as every node reads it; a field that is missing or of another shape is a BAD_QUERY, not a default. */
export function parseScope(raw: unknown): FederatedScope {
  if (!isObject(raw)) return bad('query.scope', 'must be an object');
  onlyFields(raw, SCOPE_FIELDS, 'query.scope');
  if (typeof raw.confirmedOnly !== 'boolean') bad('query.scope.confirmedOnly', 'must be true or false');
  return {
    modalities: words(raw.modalities, Object.values(Modality), 'query.scope.modalities'),
    features: words(
      raw.features,
      WEISHAUPT_FEATURES.map((f) => f.code),
      'query.scope.features',
    ),
    levels: words(raw.levels, Object.values(Level), 'query.scope.levels'),
    sides: words(raw.sides, Object.values(Side), 'query.scope.sides'),
    splits: words(raw.splits, Object.values(Split), 'query.scope.splits'),
    confirmedOnly: raw.confirmedOnly as boolean,
  };
}

/**
 * STUDY_FLOW counts what the node's `studyFlow` query counts, which has no modality, feature, level or side filter:
 * a task restricting those would get numbers it did not ask for, so it is refused rather than answered wrongly.
 */
export function parseStudyFlowQuery(raw: unknown): StudyFlowQuery {
  if (!isObject(raw)) return bad('query', 'must be an object');
  onlyFields(raw, ['scope'], 'query');
  const scope = parseScope(raw.scope);
  for (const field of ['modalities', 'features', 'levels', 'sides'] as const) {
    if (scope[field].length > 0) bad(`query.scope.${field}`, 'a study flow counts every modality, feature, level and side (leave it empty)');
  }
  return { scope };
}

function parseRater(raw: unknown): FederatedRater {
  if (!isObject(raw)) return bad('query.rater', 'must be an object');
  const keys = Object.keys(raw);
  if (keys.length !== 1) return bad('query.rater', 'names exactly one of modelSha256 or readerSlot');
  if (keys[0] === 'modelSha256') {
    if (typeof raw.modelSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(raw.modelSha256)) bad('query.rater.modelSha256', 'must be a lowercase hex sha256');
    return { modelSha256: raw.modelSha256 as string };
  }
  if (keys[0] === 'readerSlot') return { readerSlot: words([raw.readerSlot], Object.values(ReaderSlot), 'query.rater.readerSlot')[0] };
  return bad(`query.rater.${keys[0]}`, 'unknown field (allowed: modelSha256, readerSlot)');
}

export function parseBinaryCountsQuery(raw: unknown): BinaryCountsQuery {
  if (!isObject(raw)) return bad('query', 'must be an object');
  onlyFields(raw, ['rater', 'scope', 'groupBy', 'threshold'], 'query');
  const rater = parseRater(raw.rater);
  const scope = parseScope(raw.scope);
  const groupBy = words(raw.groupBy, GROUP_BY, 'query.groupBy');
  if (groupBy.includes('SPLIT') && scope.splits.length === 0) bad('query.groupBy', 'grouping by SPLIT needs scope.splits');
  if (!Number.isInteger(raw.threshold) || (raw.threshold as number) < 1 || (raw.threshold as number) > 10) {
    bad('query.threshold', 'must be a whole grade from 1 to 10');
  }
  return { rater, scope, groupBy, threshold: raw.threshold as number };
}

/** The kinds this node can compute, and their queries. */
export type ComputableQuery =
  { kind: FederationTaskKind.STUDY_FLOW; query: StudyFlowQuery } | { kind: FederationTaskKind.BINARY_COUNTS; query: BinaryCountsQuery };

export function parseTaskQuery(kind: FederationTaskKind, raw: unknown): ComputableQuery {
  if (kind === FederationTaskKind.STUDY_FLOW) return { kind, query: parseStudyFlowQuery(raw) };
  if (kind === FederationTaskKind.BINARY_COUNTS) return { kind, query: parseBinaryCountsQuery(raw) };
  throw new ComputeError(
    'UNSUPPORTED_KIND',
    `this node computes STUDY_FLOW, BINARY_COUNTS, SCORE_HISTOGRAM, PLACEMENT_SUMS and BOOTSTRAP_SUMS, not ${String(kind)}`,
  );
}
