import { writeFile } from 'node:fs/promises';

/**
 * `facet report`: the metrics of a rater as CSV (one row per group and metric) or as a STARD-style report
 * (JSON or a readable HTML page: study flow, then the metrics table), from a node's GraphQL API.
 */
export interface ReportOptions {
  url: string;
  token: string;
  modelVersionId?: string;
  readerId?: string;
  groupBy: string[];
  splitVersionId?: string;
  format: 'csv' | 'json' | 'html';
  out?: string;
}

const ESTIMATES = ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv', 'f1', 'youden', 'auc'] as const;
const KEYS = ['site', 'feature', 'modality', 'level', 'side', 'split'] as const;

const QUERY = `query ($input: MetricsInput!, $flow: MetricsScope) {
  metrics(input: $input) {
    threshold level clustered
    groups {
      pooled site feature modality level side split cases patients suppressed suppression
      ${ESTIMATES.map((e) => `${e} { value lower upper method reason }`).join('\n      ')}
    }
  }
  studyFlow(scope: $flow) { site suppressed suppression enrolled excluded excludedByReason { reason patients } eligible bySplit { split patients } joints referenceCells assessable notAssessable analysed }
}`;

interface Estimate {
  value: number | null;
  lower: number | null;
  upper: number | null;
  method: string;
  reason: string | null;
}
/** A group withheld by disclosure control has null counts and estimates, and says why in `suppression`. */
type Group = Record<(typeof KEYS)[number], string | null> & {
  pooled: boolean;
  cases: number | null;
  patients: number | null;
  suppressed: boolean;
  suppression: string | null;
} & Record<(typeof ESTIMATES)[number], Estimate | null>;

interface FlowRow {
  site: string | null;
  suppression: string | null;
  enrolled: number | null;
  excluded: number | null;
  eligible: number | null;
  joints: number | null;
  assessable: number | null;
  notAssessable: number | null;
  analysed: number | null;
}

export interface ReportData {
  metrics: { threshold: number; level: number; clustered: boolean; groups: Group[] };
  studyFlow: FlowRow[];
}

export async function fetchReport(options: ReportOptions): Promise<ReportData> {
  const scope = options.splitVersionId ? { splitVersionId: options.splitVersionId } : null;
  const response = await fetch(`${options.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${options.token}` },
    body: JSON.stringify({
      query: QUERY,
      variables: { input: { rater: { modelVersionId: options.modelVersionId, readerId: options.readerId }, groupBy: options.groupBy, scope }, flow: scope },
    }),
  });
  const body = (await response.json()) as { data?: ReportData; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  if (body.errors?.length || !body.data) throw new Error(`${body.errors?.[0].extensions?.code ?? 'ERROR'}: ${body.errors?.[0].message ?? 'no data'}`);
  return body.data;
}

/** The estimate line of a withheld group: no numbers, the suppression as the reason. */
const withheld = (g: Group): Estimate => ({ value: null, lower: null, upper: null, method: 'withheld', reason: g.suppression });

const cell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv(groups: Group[]): string {
  const header = [...KEYS, 'pooled', 'cases', 'patients', 'metric', 'value', 'lower', 'upper', 'method', 'reason'];
  const lines = [header.join(',')];
  for (const g of groups) {
    for (const metric of ESTIMATES) {
      const e = g[metric] ?? withheld(g);
      lines.push([...KEYS.map((k) => g[k]), g.pooled, g.cases, g.patients, metric, e.value, e.lower, e.upper, e.method, e.reason].map(cell).join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (e: Estimate) =>
  e.value === null
    ? `<span title="${escapeHtml(e.method)}">— (${escapeHtml(e.reason ?? '')})</span>`
    : `${e.value.toFixed(3)}${e.lower !== null && e.upper !== null ? ` <small>(${e.lower.toFixed(3)}–${e.upper.toFixed(3)})</small>` : ''}`;

export function toHtml(report: ReportData, title: string): string {
  const flowRows = report.studyFlow
    .map(
      (r) =>
        `<tr><th>${escapeHtml(r.site ?? 'All sites')}</th>${[r.enrolled, r.excluded, r.eligible, r.joints, r.assessable, r.notAssessable, r.analysed].map((n) => `<td>${n ?? `— (${escapeHtml(r.suppression ?? '')})`}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const keyed = KEYS.filter((k) => report.metrics.groups.some((g) => g[k] !== null));
  const metricRows = report.metrics.groups
    .map(
      (g) =>
        `<tr>${keyed.map((k) => `<th>${escapeHtml(g[k] ?? (g.pooled ? 'pooled' : ''))}</th>`).join('')}<td>${g.cases ?? '—'}</td><td>${g.patients ?? '—'}</td>${ESTIMATES.map((m) => `<td>${fmt(g[m] ?? withheld(g))}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const released = report.metrics.groups.filter((g) => !g.suppressed);
  const methods = [...new Set(released.flatMap((g) => ESTIMATES.map((m) => `${m}: ${(g[m] as Estimate).method}`)))].slice(0, ESTIMATES.length);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:right}th{text-align:left;background:#f4f4f4}small{color:#555}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<h2>Study flow (STARD)</h2>
<table><tr><th>Site</th><th>Enrolled</th><th>Excluded</th><th>Eligible</th><th>Joints</th><th>Assessable cells</th><th>Not assessable</th><th>Analysed</th></tr>
${flowRows}
</table>
<h2>Diagnostic accuracy (positive: grade &ge; ${report.metrics.threshold}; ${Math.round(report.metrics.level * 100)}% intervals${report.metrics.clustered ? ', patient-clustered' : ''})</h2>
<table><tr>${keyed.map((k) => `<th>${k}</th>`).join('')}<th>Cases</th><th>Patients</th>${ESTIMATES.map((m) => `<th>${m}</th>`).join('')}</tr>
${metricRows}
</table>
<p><small>Methods: ${escapeHtml(methods.join('; '))}</small></p>
</body></html>
`;
}

export async function report(options: ReportOptions): Promise<string> {
  const data = await fetchReport(options);
  const text =
    options.format === 'csv'
      ? toCsv(data.metrics.groups)
      : options.format === 'json'
        ? `${JSON.stringify(data, null, 2)}\n`
        : toHtml(data, `Facet report: ${options.modelVersionId ? `model ${options.modelVersionId}` : `reader ${options.readerId}`}`);
  if (options.out) await writeFile(options.out, text);
  return text;
}
