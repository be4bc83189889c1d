/** What every `facet report` kind shares: the GraphQL call, CSV cells, HTML escaping and the page around a table. */

export interface GraphQLCall {
  url: string;
  token: string;
}

/** Posts one GraphQL document; a GraphQL error becomes an Error carrying its code. */
export async function queryNode<T>(call: GraphQLCall, query: string, variables: Record<string, unknown>): Promise<T> {
  const response = await fetch(`${call.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${call.token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  if (body.errors?.length || !body.data) throw new Error(`${body.errors?.[0].extensions?.code ?? 'ERROR'}: ${body.errors?.[0].message ?? 'no data'}`);
  return body.data;
}

/** An estimate as the API gives it: a null value comes with a reason. */
export interface Estimate {
  value: number | null;
  lower: number | null;
  upper: number | null;
  method: string;
  reason: string | null;
}

/** The estimate line of a withheld row: no numbers, the suppression as the reason, never zeros. */
export const withheld = (suppression: string | null): Estimate => ({ value: null, lower: null, upper: null, method: 'withheld', reason: suppression });

const csvCell = (v: unknown): string => {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** A CSV document: the header, then one line per row (null and undefined are empty cells). */
export const csv = (header: readonly string[], rows: ReadonlyArray<readonly unknown[]>): string =>
  `${[header.join(','), ...rows.map((r) => r.map(csvCell).join(','))].join('\n')}\n`;

export const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A value with its interval, or a dash with the reason it is missing (WITHHELD rows say so). */
export const htmlEstimate = (e: Estimate): string =>
  e.value === null
    ? `<span title="${escapeHtml(e.method)}">— (${escapeHtml(e.reason ?? '')})</span>`
    : `${e.value.toFixed(3)}${e.lower !== null && e.upper !== null ? ` <small>(${e.lower.toFixed(3)}–${e.upper.toFixed(3)})</small>` : ''}`;

/** A count, or the reason there is none. */
export const htmlCount = (n: number | null, reason: string | null): string => (n === null ? `— (${escapeHtml(reason ?? '')})` : String(n));

export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:right}th{text-align:left;background:#f4f4f4}small{color:#555}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
${body}
</body></html>
`;
}

/** "95% intervals, patient-clustered" or "…, per case": what every table heading says about its intervals. */
export const intervalNote = (level: number, clustered: boolean): string =>
  `${Math.round(level * 100)}% intervals, ${clustered ? 'patient-clustered' : 'per case (unclustered)'}`;
