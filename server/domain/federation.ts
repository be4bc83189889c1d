/** Where a task from the hub stands at this node, from its arrival to the hub's receipt for the answer. */
export enum FederationInboxState {
  /** Verified and stored; its compute job is queued. */
  RECEIVED = 'RECEIVED',
  COMPUTING = 'COMPUTING',
  /** Computed and allowed by the policy, waiting for a coordinator of this node to release or refuse it. */
  HELD = 'HELD',
  /** Signed and queued for delivery; the audit row holds the hash of what leaves. */
  RELEASED = 'RELEASED',
  /** Refused by the policy or a coordinator; a signed REFUSED result with the reason code is queued for delivery. */
  REFUSED = 'REFUSED',
  /** Could not be computed; a signed FAILED result with a short code is queued for delivery. */
  FAILED = 'FAILED',
  /** The hub acknowledged the answer (its signed receipt verified against the pinned key). */
  SUBMITTED = 'SUBMITTED',
}
