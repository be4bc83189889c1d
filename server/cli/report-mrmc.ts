import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

/**
 * `facet report --mrmc`: the model against the clinicians as a group (the `mrmc` query: Obuchowski-Rockette with
 * Hillis df) as CSV, one row per feature x modality x site (pooled first) and conclusion, or the query's JSON.
 */
export interface MrmcReportOptions {
  url: string;
  token: string;
  modelVersionId: string;
  readerRole?: string;
  covariance?: string;
  figureOfMerit?: string;
  clustered: boolean;
  threshold?: number;
  splitVersionId?: string;
  format: 'csv' | 'json';
  out?: string;
}

const CONCLUSIONS = ['randomReaders', 'fixedReaders', 'fixedCases'] as const;
const DIFFERENCE = 'estimate stdErr df lower upper statistic p';
const MEAN = 'estimate lower upper';

const QUERY = `query ($input: MrmcInput!) {
  mrmc(input: $input) {
    figureOfMerit threshold level clustered covariance
    groups {
      feature modality site pooled suppressed suppression design readers sites cases patients problem problemDetail
      ${CONCLUSIONS.map((c) => `${c} { difference { ${DIFFERENCE} } model { ${MEAN} } readers { ${MEAN} } }`).join('\n      ')}
      varianceComponents { reader testReader error cov1 cov2 cov3 }
      perReader { readerCode site cases readerValue modelValue }
      readerRoc { fpr tpr thresholds }
    }
  }
}`;

type Nullable<T> = { [K in keyof T]: T[K] | null };
interface Conclusion {
  difference: Nullable<{ estimate: number; stdErr: number; df: number; lower: number; upper: number; statistic: number; p: number }>;
  model: Nullable<{ estimate: number; lower: number; upper: number }>;
  readers: Nullable<{ estimate: number; lower: number; upper: number }>;
}
type Group = {
  feature: string;
  modality: string;
  site: string | null;
  pooled: boolean;
  suppressed: boolean;
  suppression: string | null;
  design: string | null;
  readers: number | null;
  sites: number | null;
  cases: number | null;
  patients: number | null;
  problem: string | null;
  problemDetail: string | null;
} & Record<(typeof CONCLUSIONS)[number], Conclusion | null>;

export interface MrmcReportData {
  mrmc: { figureOfMerit: string; threshold: number; level: number; clustered: boolean; covariance: string; groups: Group[] };
}

export async function fetchMrmcReport(options: MrmcReportOptions): Promise<MrmcReportData> {
  const input = {
    modelVersionId: options.modelVersionId,
    readerRole: options.readerRole,
    covariance: options.covariance,
    figureOfMerit: options.figureOfMerit,
    clustered: options.clustered,
    threshold: options.threshold,
    scope: options.splitVersionId ? { splitVersionId: options.splitVersionId } : null,
  };
  const response = await fetch(`${options.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${options.token}` },
    body: JSON.stringify({ query: QUERY, variables: { input } }),
  });
  const body = (await response.json()) as { data?: MrmcReportData; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  if (body.errors?.length || !body.data) throw new Error(`${body.errors?.[0].extensions?.code ?? 'ERROR'}: ${body.errors?.[0].message ?? 'no data'}`);
  return body.data;
}

const cell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** One line per row and conclusion; a withheld or unanalysable row has one line with its reason and no numbers. */
export function mrmcCsv(groups: readonly Group[]): string {
  const header = [
    'feature',
    'modality',
    'site',
    'pooled',
    'design',
    'readers',
    'cases',
    'patients',
    'conclusion',
    'model_value',
    'readers_value',
    'difference',
    'lower',
    'upper',
    'df',
    'statistic',
    'p',
    'reason',
  ];
  const lines = [header.join(',')];
  for (const g of groups) {
    const head = [g.feature, g.modality, g.site, g.pooled, g.design, g.readers, g.cases, g.patients];
    const reason = g.suppression ?? g.problem;
    const conclusions = CONCLUSIONS.filter((c) => g[c] !== null);
    if (reason || conclusions.length === 0) {
      lines.push([...head, '', '', '', '', '', '', '', '', '', reason ?? ''].map(cell).join(','));
      continue;
    }
    for (const c of conclusions) {
      const { difference: d, model, readers } = g[c] as Conclusion;
      lines.push([...head, c, model.estimate, readers.estimate, d.estimate, d.lower, d.upper, d.df, d.statistic, d.p, ''].map(cell).join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

export async function mrmcReport(options: MrmcReportOptions): Promise<string> {
  const data = await fetchMrmcReport(options);
  const text = options.format === 'csv' ? mrmcCsv(data.mrmc.groups) : `${JSON.stringify(data, null, 2)}\n`;
  if (options.out) await writeFile(options.out, text);
  return text;
}

/** `facet report --mrmc --model ID [--role READER] [--figure-of-merit AUC|SENSITIVITY|SPECIFICITY] [--covariance …] [--independent] …`. */
export async function mrmcReportCommand(argv: string[], node: { url?: string; token?: string }): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      mrmc: { type: 'boolean' },
      url: { type: 'string', default: node.url },
      token: { type: 'string', default: node.token },
      model: { type: 'string' },
      role: { type: 'string' },
      covariance: { type: 'string' },
      'figure-of-merit': { type: 'string' },
      independent: { type: 'boolean', default: false },
      threshold: { type: 'string' },
      'split-version': { type: 'string' },
      format: { type: 'string', default: 'csv' },
      out: { type: 'string' },
    },
  });
  const format = values.format as 'csv' | 'json';
  if (!values.url || !values.token || !values.model || !['csv', 'json'].includes(format)) {
    throw new Error('report --mrmc needs --url, --token, --model and --format csv|json');
  }
  const text = await mrmcReport({
    url: values.url.replace(/\/+$/, ''),
    token: values.token,
    modelVersionId: values.model,
    readerRole: values.role?.toUpperCase(),
    covariance: values.covariance?.toUpperCase(),
    figureOfMerit: values['figure-of-merit']?.toUpperCase(),
    clustered: !values.independent,
    threshold: values.threshold === undefined ? undefined : Number(values.threshold),
    splitVersionId: values['split-version'],
    format,
    out: values.out,
  });
  if (!values.out) process.stdout.write(text);
}
