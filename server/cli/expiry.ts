const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** A date, or a date-time with seconds optional and a zone (Z or ±hh:mm): what `new Date` reads the same everywhere. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** `2027-02-31` parses as 3 March; a date is taken only when its day exists in its month. */
function isCalendarDate(date: string): boolean {
  const [year, month, day] = date.split('-').map(Number);
  const parsed = new Date(Date.UTC(year, month - 1, day));
  return parsed.getUTCFullYear() === year && parsed.getUTCMonth() === month - 1 && parsed.getUTCDate() === day;
}

/**
 * create-token's expiry: `--expires-in` a whole number of s, m, h, d or w (`90d`, `12h`) from `now`, or
 * `--expires-at` an ISO 8601 instant (`2027-01-31T18:00:00Z`; a bare date is midnight UTC). Neither: null (the
 * token lasts until revoked). Throws a message for the user on a malformed, past or doubly given expiry.
 */
export function tokenExpiry(options: { expiresIn?: string; expiresAt?: string }, now: Date = new Date()): Date | null {
  if (options.expiresIn !== undefined && options.expiresAt !== undefined) throw new Error('Give --expires-in or --expires-at, not both');
  let expiresAt: Date | null = null;
  if (options.expiresIn !== undefined) {
    const match = /^(\d{1,6})([smhdw])$/.exec(options.expiresIn.trim());
    if (!match || Number(match[1]) === 0)
      throw new Error(`--expires-in takes a positive whole number and a unit s, m, h, d or w (e.g. 90d), got ${JSON.stringify(options.expiresIn)}`);
    expiresAt = new Date(now.getTime() + Number(match[1]) * UNIT_MS[match[2]]);
  } else if (options.expiresAt !== undefined) {
    const text = options.expiresAt.trim();
    expiresAt = ISO_INSTANT.test(text) && isCalendarDate(text.slice(0, 10)) ? new Date(text) : new Date(NaN);
    if (Number.isNaN(expiresAt.getTime()))
      throw new Error(`--expires-at takes an ISO 8601 instant (e.g. 2027-01-31T18:00:00Z), got ${JSON.stringify(options.expiresAt)}`);
    if (expiresAt.getTime() <= now.getTime()) throw new Error(`--expires-at ${options.expiresAt} is not in the future`);
  }
  return expiresAt;
}
