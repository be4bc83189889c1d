/**
 * The hub's vocabulary as the database and the GraphQL layer see it. The values equal those of
 * server/federation/protocol.ts (FederationTaskKind, FederationSiteState, TaskProgress status), which the hub's
 * service checks at compile time; they live here too because entities and schema/ may import only domain/.
 */

/**
 * The kinds of a hub task. A researcher starts STUDY_FLOW, BINARY_COUNTS (optionally with a Poisson bootstrap),
 * AUC (round 1: score histograms) and AGREEMENT with startFederatedQuery, and INFERENCE with startFederatedInference;
 * PLACEMENT_SUMS (AUC round 2) and BOOTSTRAP_SUMS are started by the hub itself as later parts of those queries.
 */
export enum FederatedQueryKind {
  STUDY_FLOW = 'STUDY_FLOW',
  BINARY_COUNTS = 'BINARY_COUNTS',
  /** A federated inference job (startFederatedInference): each site registers the hub's model and runs it on its own images. */
  INFERENCE = 'INFERENCE',
  AUC = 'AUC',
  AGREEMENT = 'AGREEMENT',
  PLACEMENT_SUMS = 'PLACEMENT_SUMS',
  BOOTSTRAP_SUMS = 'BOOTSTRAP_SUMS',
}

/** Where one site stands on one task (protocol.ts FederationSiteState). */
export enum FederationSiteTaskState {
  QUEUED = 'QUEUED',
  CLAIMED = 'CLAIMED',
  SUCCEEDED = 'SUCCEEDED',
  REFUSED = 'REFUSED',
  FAILED = 'FAILED',
  EXPIRED = 'EXPIRED',
}

/** A federated query as a whole (protocol.ts summarizeTask), or CANCELLED by its researcher. */
export enum FederatedQueryStatus {
  RUNNING = 'RUNNING',
  COMPLETE = 'COMPLETE',
  PARTIAL = 'PARTIAL',
  INSUFFICIENT = 'INSUFFICIENT',
  CANCELLED = 'CANCELLED',
}

/** Why a site is missing from an answer (DESIGN.md's SiteError codes). */
export enum SiteErrorCode {
  SITE_UNAVAILABLE = 'SITE_UNAVAILABLE',
  SITE_TIMEOUT = 'SITE_TIMEOUT',
  SITE_REFUSED = 'SITE_REFUSED',
  SITE_FAILED = 'SITE_FAILED',
}

/**
 * Where one site stands on a federated inference job, as the hub's `federatedJobProgress` shows it: WAITING (the
 * site has not claimed the task: offline, or not polled yet), then what the node reports (APPROVING: held for its
 * ENGINEER or ADMIN; QUEUED; RUNNING), and how it ended. CANCELLING: cancelled at the hub, the node has not yet
 * confirmed that its job stopped; EXPIRED: the deadline passed first.
 */
export enum FederatedInferenceSiteState {
  WAITING = 'WAITING',
  APPROVING = 'APPROVING',
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  FINISHED = 'FINISHED',
  REFUSED = 'REFUSED',
  FAILED = 'FAILED',
  CANCELLING = 'CANCELLING',
  CANCELLED = 'CANCELLED',
  EXPIRED = 'EXPIRED',
}

/** Where a site stands in a statistics answer at a hub (answered every federated query of it, refused one, or missing). */
export enum HubSiteStatus {
  ANSWERED = 'ANSWERED',
  REFUSED = 'REFUSED',
  MISSING = 'MISSING',
}
