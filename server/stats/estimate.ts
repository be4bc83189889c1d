/** Why a value could not be computed: machine-readable, never a silent NaN or 0. */
export type UndefinedReason =
  | 'NO_POSITIVES'
  | 'NO_NEGATIVES'
  | 'NO_CASES'
  | 'NO_PREDICTED_POSITIVES'
  | 'NO_PREDICTED_NEGATIVES'
  | 'ONE_CLUSTER'
  | 'ONE_CLASS'
  | 'NO_DISCORDANT_PAIRS'
  | 'ZERO_VARIANCE'
  | 'MIXED_FEATURES'
  | 'FEW_CLUSTERS';

/** A point estimate with its interval and the method that made the interval. */
export interface Estimate {
  value: number | null;
  lower: number | null;
  upper: number | null;
  method: string;
  reason: UndefinedReason | null;
}

export const undefinedEstimate = (method: string, reason: UndefinedReason): Estimate => ({ value: null, lower: null, upper: null, method, reason });

/** A value or the reason there is none. */
export type Maybe = { value: number; reason: null } | { value: null; reason: UndefinedReason };
export const some = (value: number): Maybe => ({ value, reason: null });
export const none = (reason: UndefinedReason): Maybe => ({ value: null, reason });
