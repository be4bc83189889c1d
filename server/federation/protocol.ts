import type { JsonValue } from './canonical-json';

/**
 * The vocabulary hub and nodes share: task kinds, the per-site states of a task and the legal moves between them, and
 * the payloads carried inside signed envelopes (envelope.ts). docs/federation.md describes the protocol around them.
 * These enums move to server/domain when the GraphQL layer exposes them.
 */
export enum FederationTaskKind {
  /** STARD flow counts: enrolled, excluded by reason, per split, joints assessable and analysed. */
  STUDY_FLOW = 'STUDY_FLOW',
  /** Binary confusion counts with the clustered sums of each proportion (stats/proportion.ts ClusteredCount). */
  BINARY_COUNTS = 'BINARY_COUNTS',
  /** k x k tables: multi-class confusion of a rater against the reference. */
  CONFUSION_MATRIX = 'CONFUSION_MATRIX',
  /** k x k tables of reader 1 against reader 2, and discordant pairs of two raters on the same cases. */
  AGREEMENT_TABLE = 'AGREEMENT_TABLE',
  /** AUC round 1: per-class score histograms on the declared grid. */
  SCORE_HISTOGRAM = 'SCORE_HISTOGRAM',
  /** AUC round 2: per-patient placement sums against the pooled histogram (stats/sufficient.ts ClusterSums). */
  PLACEMENT_SUMS = 'PLACEMENT_SUMS',
  /** Poisson cluster bootstrap: per-replicate sums under per-patient weights from the task's seed. */
  BOOTSTRAP_SUMS = 'BOOTSTRAP_SUMS',
  /** Register the hub's model (sha256-pinned) and run a normal inference job; only job counts come back. */
  INFERENCE = 'INFERENCE',
}

/** Where one site stands on one task (the hub keeps one row per task and site). */
export enum FederationSiteState {
  QUEUED = 'QUEUED',
  CLAIMED = 'CLAIMED',
  SUCCEEDED = 'SUCCEEDED',
  REFUSED = 'REFUSED',
  FAILED = 'FAILED',
  EXPIRED = 'EXPIRED',
}

export type SiteEvent =
  /** The site's signed claim picked the task up. */
  | 'CLAIM'
  /** The claim lease ran out without a result (the node died after claiming): offer the task again. */
  | 'LEASE_LAPSED'
  | 'RESULT_SUCCEEDED'
  | 'RESULT_REFUSED'
  | 'RESULT_FAILED'
  /** The hub retries a FAILED site while the deadline allows. */
  | 'RETRY'
  /** The task's deadline passed. */
  | 'DEADLINE';

/**
 * The legal moves. REFUSED is final (the site's policy said no; asking again is the researcher's call, as a new task).
 * A result arriving after the deadline still lands (EXPIRED -> SUCCEEDED): the pooled answer is recomputed and marked
 * updated. A second result for a settled site is refused (its first answer is the one audited on both sides).
 */
const MOVES: Record<FederationSiteState, Partial<Record<SiteEvent, FederationSiteState>>> = {
  QUEUED: { CLAIM: FederationSiteState.CLAIMED, DEADLINE: FederationSiteState.EXPIRED },
  CLAIMED: {
    CLAIM: FederationSiteState.CLAIMED,
    LEASE_LAPSED: FederationSiteState.QUEUED,
    RESULT_SUCCEEDED: FederationSiteState.SUCCEEDED,
    RESULT_REFUSED: FederationSiteState.REFUSED,
    RESULT_FAILED: FederationSiteState.FAILED,
    DEADLINE: FederationSiteState.EXPIRED,
  },
  FAILED: { RETRY: FederationSiteState.QUEUED, DEADLINE: FederationSiteState.EXPIRED },
  EXPIRED: { RESULT_SUCCEEDED: FederationSiteState.SUCCEEDED, RESULT_REFUSED: FederationSiteState.REFUSED, RESULT_FAILED: FederationSiteState.EXPIRED },
  SUCCEEDED: {},
  REFUSED: {},
};

/** The state after `event`, or null when the move is not allowed (the hub answers CONFLICT and changes nothing). */
export function nextSiteState(state: FederationSiteState, event: SiteEvent): FederationSiteState | null {
  return MOVES[state][event] ?? null;
}

/** Why a site is missing from a pooled answer (DESIGN.md's SiteError codes, plus the states that explain them). */
export type MissingReason = 'SITE_REFUSED' | 'SITE_FAILED' | 'SITE_TIMEOUT' | 'SITE_UNAVAILABLE';

export interface TaskProgress {
  /** COMPLETE: every site answered; PARTIAL: the deadline passed with at least minSites; INSUFFICIENT: with fewer; RUNNING otherwise. */
  status: 'RUNNING' | 'COMPLETE' | 'PARTIAL' | 'INSUFFICIENT';
  contributing: string[];
  missing: { site: string; reason: MissingReason; detail: string | null }[];
}

/**
 * Summarises a task from its per-site states: what a pooled answer can say about itself. Before the deadline a task
 * is RUNNING until every site settled; after it, it is PARTIAL or INSUFFICIENT by minSites (k of n) and names each
 * missing site with why. A late SUCCEEDED moves a PARTIAL answer towards COMPLETE (the answer shows it was updated).
 */
export function summarizeTask(
  sites: readonly { site: string; state: FederationSiteState; detail?: string | null; everClaimed?: boolean }[],
  options: { minSites: number; deadlinePassed: boolean },
): TaskProgress {
  const contributing = sites.filter((s) => s.state === FederationSiteState.SUCCEEDED).map((s) => s.site);
  const missing = sites
    .filter((s) => s.state !== FederationSiteState.SUCCEEDED)
    .map((s) => ({
      site: s.site,
      reason: ((): MissingReason => {
        if (s.state === FederationSiteState.REFUSED) return 'SITE_REFUSED';
        if (s.state === FederationSiteState.FAILED) return 'SITE_FAILED';
        // Never claimed: the node did not call in at all; claimed but silent: it was working and ran out of time.
        return s.everClaimed || s.state === FederationSiteState.CLAIMED ? 'SITE_TIMEOUT' : 'SITE_UNAVAILABLE';
      })(),
      detail: s.detail ?? null,
    }));
  const settled = sites.every((s) => s.state === FederationSiteState.SUCCEEDED || s.state === FederationSiteState.REFUSED);
  if (missing.length === 0) return { status: 'COMPLETE', contributing, missing };
  if (!options.deadlinePassed && !settled) return { status: 'RUNNING', contributing, missing };
  return { status: contributing.length >= options.minSites ? 'PARTIAL' : 'INSUFFICIENT', contributing, missing };
}

/** node -> hub, inside a CLAIM envelope: the long-poll request. */
export interface ClaimPayload {
  [key: string]: JsonValue;
  site: string;
  /** At most this many tasks in one answer. */
  maxTasks: number;
  waitSeconds: number;
  facetVersion: string;
  /** Tasks the node is still working on: each claim extends their leases. */
  working: string[];
}

/** hub -> node, inside a TASK envelope. */
export interface TaskPayload {
  [key: string]: JsonValue;
  taskId: string;
  kind: FederationTaskKind;
  /** The addressee: the task is for this site only. */
  site: string;
  /** What to compute: scope (split version, modalities, features…), grouping, grid, seed; validated per kind by the node. */
  query: { [key: string]: JsonValue };
  deadline: string;
  minSites: number;
  /** Sites taking part (for secure summation, the participant list of the round). */
  sites: string[];
}

/** node -> hub, inside a RESULT envelope. */
export interface ResultPayload {
  [key: string]: JsonValue;
  taskId: string;
  /** sha256 of the canonical TaskPayload answered: binds the result to exactly what was asked. */
  taskSha256: string;
  site: string;
  state: 'SUCCEEDED' | 'REFUSED' | 'FAILED';
  /** REFUSED: the policy's reason code; FAILED: a short error code (never a stack or a value). */
  reason: string | null;
  /** SUCCEEDED: the released aggregate (release-policy.ts checked its shape): the site rows, when the query has them. */
  aggregate: JsonValue;
  manifest: ProvenanceManifest;
}

/**
 * A SUCCEEDED result of a task whose pooled rows are secure-summed (no SITE rows asked, two or more sites) carries
 * `secure` beside its aggregate: which pooled keys the site has a group for and which it withheld, and the array
 * lengths of its rows; the numbers stay at the node until the hub's secure round asks for them masked
 * (secure-sum-transport.ts). Other results have no `secure` field.
 */
export interface SecureResultPayload extends ResultPayload {
  secure: SecureDeclaration;
}

/** The declaration of a result (null: not a secure task's). */
export const secureDeclarationOf = (payload: object): SecureDeclaration | null => (payload as { secure?: SecureDeclaration | null }).secure ?? null;

/** A site's part of a secure-summed task, declared in its result: keys, not numbers. */
export interface SecureDeclaration {
  [key: string]: JsonValue;
  /** Canonical JSON of each pooled key (the group's key: no SITE) the site has a released group for. */
  keys: string[];
  /** Pooled keys whose group the site withheld (its policy suppressed it), with the reason. */
  withheld: { key: string; reason: string }[];
  /** Array lengths of the kind's pooled fields (secure-rows.ts rowLayout). */
  lengths: { [field: string]: number };
}

/**
 * hub -> node, inside a SECURE_REQUEST envelope: mask this task's pooled rows for attempt `attempt` (round id
 * `<taskId>#<attempt>`), with these participants and their X25519 keys from the hub's registry, these keys in this
 * order, these lengths.
 */
export interface MaskRequestPayload {
  [key: string]: JsonValue;
  step: 'MASK';
  taskId: string;
  /** The sha256 of the TaskPayload this site answered: binds the round to exactly the question answered. */
  taskSha256: string;
  site: string;
  roundId: string;
  attempt: number;
  participants: { code: string; agreementKey: string }[];
  keys: string[];
  lengths: { [field: string]: number };
  minSites: number;
}

/** hub -> node, inside a SECURE_REQUEST envelope: phase 2 (secure-sum-round.ts UnmaskRequest) for this task. */
export interface UnmaskRequestPayload {
  [key: string]: JsonValue;
  step: 'UNMASK';
  taskId: string;
  site: string;
  roundId: string;
  participants: string[];
  maskedSha256: { [site: string]: string };
  /**
   * Sites whose pairwise mask seeds the hub asks for (Bonawitz's recovery of dropped users). Facet restarts a round
   * instead, so a node answers any request that names one with a refusal (PAIRWISE_NOT_REVEALED): with both a site's
   * self seed and its pairwise seeds the hub could unmask its vector alone.
   */
  pairwiseFor: string[];
}

export type SecureRequestPayload = MaskRequestPayload | UnmaskRequestPayload;

/** node -> hub, inside a SECURE_ANSWER envelope. */
export interface SecureAnswerPayload {
  [key: string]: JsonValue;
  taskId: string;
  roundId: string;
  site: string;
  /** MASKED: `masked` holds the base64 vector; SEED: `seed` the base64 self-mask seed; REFUSED: `code` the ledger's reason. */
  step: 'MASKED' | 'SEED' | 'REFUSED';
  masked: string | null;
  seed: string | null;
  code: string | null;
}

/** What a site states about how it computed its contribution; signed with the result, checked by `facet verify`. */
export interface ProvenanceManifest {
  [key: string]: JsonValue;
  facetVersion: string;
  taskSha256: string;
  splitVersionId: string | null;
  modelSha256: string | null;
  /** sha256 of the canonical list of (joint key, modality, feature, grade) reference rows used: changes when any grade does. */
  referenceSnapshotSha256: string | null;
  /** sha256 of the canonical release policy in force. */
  policySha256: string;
  /** sha256 of the canonical aggregate released (equals the node's audit row). */
  aggregateSha256: string;
}
