import { writeFile } from 'node:fs/promises';
import { AGREEMENT_QUERY, agreementCsv, agreementHtml, type AgreementData } from './report-agreement';
import { COMPARE_QUERY, compareCsv, compareHtml, type CompareData } from './report-compare';
import { csv, escapeHtml, htmlEstimate, htmlPage, intervalNote, queryNode, withheld as withheldEstimate, type Estimate } from './report-format';

/**
 * `facet report [metrics|compare|agreement]`, from a node's GraphQL API, as CSV, JSON or a readable HTML page:
 * - metrics: a rater (a model, a reader, a slot pooled across sites, or a role's reader average) against the
 *   reference, one CSV row per group and metric, the HTML with the STARD study flow first;
 * - compare: the model minus readers (each reader, a slot or a role), paired intervals, p-values and McNemar's table;
 * - agreement: reader 1 vs reader 2 and each reader vs the reference, per feature x modality (x site).
 * Rows withheld by disclosure control stay in the report, without numbers and with the reason.
 */
export type ReportKind = 'metrics' | 'compare' | 'agreement';
export const REPORT_KINDS: readonly ReportKind[] = ['metrics', 'compare', 'agreement'];

export interface ReportOptions {
  kind?: ReportKind;
  url: string;
  token: string;
  modelVersionId?: string;
  /** metrics: one reader; compare: the readers, each on their own (default every reader). */
  readerIds?: string[];
  readerSlot?: string;
  readerRole?: string;
  groupBy: string[];
  splitVersionId?: string;
  /** Only these splits of the split version (TRAIN, VALIDATION, TEST). */
  splits?: string[];
  /** False: per-case (unclustered) intervals instead of patient-clustered ones. */
  clustered?: boolean;
  /** agreement: one group per site (default) or pooled over sites. */
  bySite?: boolean;
  format: 'csv' | 'json' | 'html';
  out?: string;
}

const ESTIMATES = ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv', 'f1', 'youden', 'auc'] as const;
const KEYS = ['site', 'feature', 'modality', 'level', 'side', 'split'] as const;

const QUERY = `query ($input: MetricsInput!, $flow: MetricsScope) {
  metrics(input: $input) {
    threshold level clustered
    federation { status queryIds sites { site status reason } exactness grids { lower upper bins } }
    groups {
      pooled site feature modality level side split cases patients suppressed suppression
      ${ESTIMATES.map((e) => `${e} { value lower upper method reason }`).join('\n      ')}
    }
  }
  studyFlow(scope: $flow) { site suppressed suppression enrolled excluded excludedByReason { reason patients } eligible bySplit { split patients } joints referenceCells assessable notAssessable analysed }
}`;

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

/** At a hub: the federated queries behind the answer and each site's status (null at a node). */
interface HubStatus {
  status: string;
  queryIds: string[];
  sites: { site: string; status: string; reason: string | null }[];
  exactness: string;
  grids: { lower: number; upper: number; bins: number }[];
}

export interface ReportData {
  metrics: { threshold: number; level: number; clustered: boolean; federation?: HubStatus | null; groups: Group[] };
  studyFlow: FlowRow[];
}

/** The rater of a metrics report: exactly one of model, reader, slot, role (the API refuses more). */
const SHA256 = /^[0-9a-f]{64}$/;
const raterOf = (o: ReportOptions) => ({
  // A hub names a model by its sha256 (each node has its own ids): --model takes either.
  ...(o.modelVersionId && SHA256.test(o.modelVersionId) ? { modelSha256: o.modelVersionId } : { modelVersionId: o.modelVersionId }),
  readerId: o.readerIds?.[0],
  readerSlot: o.readerSlot,
  readerRole: o.readerRole,
});

/** The scope of every kind: a split version and, within it, some of its splits. */
const scopeOf = (o: ReportOptions) => (o.splitVersionId ? { splitVersionId: o.splitVersionId, splits: o.splits?.length ? o.splits : null } : null);

export async function fetchReport(options: ReportOptions): Promise<ReportData> {
  const scope = scopeOf(options);
  const data = await queryNode<ReportData>(options, QUERY, {
    input: { rater: raterOf(options), groupBy: options.groupBy, scope, clustered: options.clustered ?? true },
    flow: scope,
  });
  // At a hub the member sites answer: a report of an answer still being computed would be empty, not small.
  const federation = data.metrics.federation;
  if (federation && federation.status === 'RUNNING')
    throw new Error(`the hub's answer is still RUNNING (federated queries ${federation.queryIds.join(', ')}): run the report again to read it`);
  return data;
}

/** The estimate line of a withheld group: no numbers, the suppression as the reason. */
const withheld = (g: Group): Estimate => withheldEstimate(g.suppression);

export function toCsv(groups: Group[]): string {
  const header = [...KEYS, 'pooled', 'cases', 'patients', 'metric', 'value', 'lower', 'upper', 'method', 'reason'];
  const rows = groups.flatMap((g) =>
    ESTIMATES.map((metric) => {
      const e = g[metric] ?? withheld(g);
      return [...KEYS.map((k) => g[k]), g.pooled, g.cases, g.patients, metric, e.value, e.lower, e.upper, e.method, e.reason];
    }),
  );
  return csv(header, rows);
}

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
        `<tr>${keyed.map((k) => `<th>${escapeHtml(g[k] ?? (g.pooled ? 'pooled' : ''))}</th>`).join('')}<td>${g.cases ?? '—'}</td><td>${g.patients ?? '—'}</td>${ESTIMATES.map((m) => `<td>${htmlEstimate(g[m] ?? withheld(g))}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const released = report.metrics.groups.filter((g) => !g.suppressed);
  const methods = [...new Set(released.flatMap((g) => ESTIMATES.map((m) => `${m}: ${(g[m] as Estimate).method}`)))].slice(0, ESTIMATES.length);
  return htmlPage(
    title,
    `<h2>Study flow (STARD)</h2>
<table><tr><th>Site</th><th>Enrolled</th><th>Excluded</th><th>Eligible</th><th>Joints</th><th>Assessable cells</th><th>Not assessable</th><th>Analysed</th></tr>
${flowRows}
</table>
<h2>Diagnostic accuracy (positive: grade &ge; ${report.metrics.threshold}; ${intervalNote(report.metrics.level, report.metrics.clustered)})</h2>
<table><tr>${keyed.map((k) => `<th>${k}</th>`).join('')}<th>Cases</th><th>Patients</th>${ESTIMATES.map((m) => `<th>${m}</th>`).join('')}</tr>
${metricRows}
</table>
<p><small>Methods: ${escapeHtml(methods.join('; '))}</small></p>${hubNote(report.metrics.federation)}`,
  );
}

/** At a hub: which sites answered and the grid the AUC is exact at. */
function hubNote(federation: HubStatus | null | undefined): string {
  if (!federation) return '';
  const sites = federation.sites.map((s) => `${s.site}: ${s.status}${s.reason ? ` (${s.reason})` : ''}`).join('; ');
  const grids = federation.grids.map((g) => `[${g.lower}, ${g.upper}] in ${g.bins} bins`).join(', ');
  return `\n<p><small>Federated (${escapeHtml(federation.status)}): ${escapeHtml(sites)}. AUC ${escapeHtml(federation.exactness)} (${escapeHtml(grids)}); queries ${escapeHtml(federation.queryIds.join(', '))}.</small></p>`;
}

/** Who a report is about, for its title. */
function subjectOf(o: ReportOptions): string {
  const readers = o.readerIds?.length ? `reader ${o.readerIds.join(', ')}` : null;
  const others = o.readerRole ? `role ${o.readerRole}` : o.readerSlot ? `slot ${o.readerSlot}` : readers;
  if (o.kind === 'compare') return `model ${o.modelVersionId} vs ${others ?? 'each reader'}`;
  return o.modelVersionId ? `model ${o.modelVersionId}` : (others ?? '');
}

async function render(options: ReportOptions): Promise<string> {
  const kind = options.kind ?? 'metrics';
  const title = kind === 'agreement' ? 'Facet agreement report' : `Facet ${kind} report: ${subjectOf(options)}`;
  const scope = scopeOf(options);
  const json = (data: unknown) => `${JSON.stringify(data, null, 2)}\n`;
  if (kind === 'compare') {
    const data = await queryNode<CompareData>(options, COMPARE_QUERY, {
      input: {
        modelVersionId: options.modelVersionId,
        readerIds: options.readerIds?.length ? options.readerIds : null,
        readerSlot: options.readerSlot,
        readerRole: options.readerRole,
        groupBy: options.groupBy,
        scope,
        clustered: options.clustered ?? true,
      },
    });
    return options.format === 'csv' ? compareCsv(data) : options.format === 'json' ? json(data) : compareHtml(data, title);
  }
  if (kind === 'agreement') {
    const data = await queryNode<AgreementData>(options, AGREEMENT_QUERY, { scope, bySite: options.bySite ?? true });
    return options.format === 'csv' ? agreementCsv(data) : options.format === 'json' ? json(data) : agreementHtml(data, title);
  }
  const data = await fetchReport(options);
  return options.format === 'csv' ? toCsv(data.metrics.groups) : options.format === 'json' ? json(data) : toHtml(data, title);
}

/** Writes the report to `out` when given, and returns its text. */
export async function report(options: ReportOptions): Promise<string> {
  const text = await render(options);
  if (options.out) await writeFile(options.out, text);
  return text;
}
