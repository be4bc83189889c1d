import type { JsonValue } from './canonical-json';
import { FederationTaskKind } from './protocol';

/**
 * What each task kind asks (the `query` of a TaskPayload) and what a node answers (the `aggregate` of its
 * ResultPayload): the contract between hub and nodes. Everything here is portable between nodes: no node-local
 * ids (a split version, a reader or a site id means nothing at another node), so raters are named by what every
 * node shares (a model's sha256, a reader slot) and splits by name within each node's own frozen split version.
 */

/** The dimensions a federated query may group by; SITE is the node's own site code(s). */
export type FederatedGroupBy = 'SITE' | 'FEATURE' | 'MODALITY' | 'LEVEL' | 'SIDE' | 'SPLIT';

/** The cases a task is about, as every node can resolve them. */
export interface FederatedScope {
  [field: string]: JsonValue;
  /** Empty: all. */
  modalities: string[];
  features: string[];
  levels: string[];
  sides: string[];
  /** Splits by name, in the node's latest frozen split version; empty: no split restriction (and no SPLIT grouping). */
  splits: string[];
  /** Only confirmed reference grades (the default of the node's own statistics). */
  confirmedOnly: boolean;
}

/** A rater every node can name: a model version by its sha256, or one reader slot pooled over the node's sites. */
export type FederatedRater = { [field: string]: JsonValue } & ({ modelSha256: string } | { readerSlot: 'FIRST' | 'SECOND' });

export interface StudyFlowQuery {
  [field: string]: JsonValue;
  scope: FederatedScope;
}

export interface BinaryCountsQuery {
  [field: string]: JsonValue;
  rater: FederatedRater;
  scope: FederatedScope;
  groupBy: FederatedGroupBy[];
  /** Positive when grade >= threshold (the model: its argmax grade). */
  threshold: number;
}

export interface TaskQueries {
  [FederationTaskKind.STUDY_FLOW]: StudyFlowQuery;
  [FederationTaskKind.BINARY_COUNTS]: BinaryCountsQuery;
}

/**
 * The values of one group of a STUDY_FLOW aggregate (key: SITE, and SPLIT for `bySplit`-style rows); counts of
 * patients, joints and reference cells exactly as the node's studyFlow query gives them.
 */
export interface StudyFlowValues {
  [field: string]: number | number[];
  enrolled: number;
  excluded: number;
  eligible: number;
  joints: number;
  assessable: number;
  notAssessable: number;
  analysed: number;
}

/**
 * The values of one group of a BINARY_COUNTS aggregate: the confusion counts, and for each proportion the clustered
 * sums (stats/proportion.ts ClusteredCount, clusters = patients) the design-effect Wilson interval needs, so the
 * pooled interval equals the single-node one on the union. Proportions, each as `<name>X`, `<name>N`, `<name>XX`,
 * `<name>XN`, `<name>NN`, `<name>Clusters` would make the vocabulary open-ended; so one group carries one proportion's
 * sums per named array instead, in the order of PROPORTIONS: `clusters`, `x`, `n`, `xx`, `xn`, `nn`.
 */
export interface BinaryCountsValues {
  [field: string]: number | number[];
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  clusters: number[];
  x: number[];
  n: number[];
  xx: number[];
  xn: number[];
  nn: number[];
}

/** The proportions of a BINARY_COUNTS group, in the order of its arrays. */
export const PROPORTIONS = ['accuracy', 'sensitivity', 'specificity', 'precision', 'npv', 'prevalence'] as const;
export type Proportion = (typeof PROPORTIONS)[number];
