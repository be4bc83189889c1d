import { csv, escapeHtml, htmlCount, htmlEstimate, htmlPage, intervalNote, withheld, type Estimate } from './report-format';

/** `facet report compare`: the model minus readers (each reader, a slot or a role), with McNemar's paired table. */

export const COMPARE_QUERY = `query ($input: CompareInput!) {
  compare(input: $input) {
    threshold level clustered
    comparisons {
      pooled site feature modality level side split suppressed suppression
      readerCode readerSlot readerRole readers cases patients
      differences { metric model reader difference { value lower upper method reason } p test }
      mcnemar { bothCorrect modelOnly readerOnly neither p }
    }
  }
}`;

const KEYS = ['site', 'feature', 'modality', 'level', 'side', 'split'] as const;
const METRICS = ['ACCURACY', 'SENSITIVITY', 'SPECIFICITY', 'F1', 'AUC'] as const;

interface Difference {
  metric: string;
  model: number | null;
  reader: number | null;
  difference: Estimate;
  p: number | null;
  test: string;
}

export type Comparison = Record<(typeof KEYS)[number], string | null> & {
  pooled: boolean;
  suppressed: boolean;
  suppression: string | null;
  readerCode: string | null;
  readerSlot: string | null;
  readerRole: string | null;
  readers: number | null;
  cases: number | null;
  patients: number | null;
  differences: Difference[];
  mcnemar: { bothCorrect: number; modelOnly: number; readerOnly: number; neither: number; p: number } | null;
};

export interface CompareData {
  compare: { threshold: number; level: number; clustered: boolean; comparisons: Comparison[] };
}

/** Who the model was compared with: a reader's code, "slot FIRST" or "role READER (average)". */
const comparedWith = (c: Comparison): string => c.readerCode ?? (c.readerRole ? `role ${c.readerRole} (average)` : c.readerSlot ? `slot ${c.readerSlot}` : '');

/** One line per comparison and metric; a withheld comparison keeps its lines, empty, with the reason. */
const linesOf = (c: Comparison): Difference[] =>
  c.suppressed
    ? METRICS.map((metric) => ({ metric, model: null, reader: null, difference: withheld(c.suppression), p: null, test: 'withheld' }))
    : c.differences;

export function compareCsv(data: CompareData): string {
  const header = [
    ...KEYS,
    'pooled',
    'compared_with',
    'readers',
    'cases',
    'patients',
    'metric',
    'model',
    'reader',
    'difference',
    'lower',
    'upper',
    'method',
    'reason',
    'p',
    'test',
    'both_correct',
    'model_only',
    'reader_only',
    'neither',
    'mcnemar_p',
  ];
  const rows = data.compare.comparisons.flatMap((c) =>
    linesOf(c).map((d) => {
      // The paired table belongs to the accuracy line: it is the table of correct calls.
      const t = d.metric === 'ACCURACY' ? c.mcnemar : null;
      const e = d.difference;
      return [
        ...KEYS.map((k) => c[k]),
        c.pooled,
        comparedWith(c),
        c.readers,
        c.cases,
        c.patients,
        d.metric,
        d.model,
        d.reader,
        e.value,
        e.lower,
        e.upper,
        e.method,
        e.reason,
        d.p,
        d.test,
        t?.bothCorrect,
        t?.modelOnly,
        t?.readerOnly,
        t?.neither,
        t?.p,
      ];
    }),
  );
  return csv(header, rows);
}

export function compareHtml(data: CompareData, title: string): string {
  const { comparisons, threshold, level, clustered } = data.compare;
  const keyed = KEYS.filter((k) => comparisons.some((c) => c[k] !== null));
  const rows = comparisons
    .map((c) => {
      const byMetric = new Map(linesOf(c).map((d) => [d.metric, d]));
      const t = c.mcnemar;
      const table = c.suppressed
        ? `— (${escapeHtml(c.suppression ?? '')})`
        : t
          ? `${t.bothCorrect} / ${t.modelOnly} / ${t.readerOnly} / ${t.neither} <small>(p ${t.p.toPrecision(3)})</small>`
          : '—';
      return `<tr>${keyed.map((k) => `<th>${escapeHtml(c[k] ?? (c.pooled ? 'pooled' : ''))}</th>`).join('')}<th>${escapeHtml(comparedWith(c))}</th><td>${htmlCount(c.cases, c.suppression)}</td><td>${htmlCount(c.patients, c.suppression)}</td>${METRICS.map(
        (m) => {
          const d = byMetric.get(m);
          return `<td>${d ? `${htmlEstimate(d.difference)}${d.p !== null ? ` <small>p ${d.p.toPrecision(3)}</small>` : ''}` : '—'}</td>`;
        },
      ).join('')}<td>${table}</td></tr>`;
    })
    .join('\n');
  const tests = [...new Set(comparisons.flatMap((c) => c.differences.map((d) => `${d.metric}: ${d.test}`)))].slice(0, METRICS.length);
  return htmlPage(
    title,
    `<h2>Model minus reader (positive: grade &ge; ${threshold}; ${intervalNote(level, clustered)})</h2>
<table><tr>${keyed.map((k) => `<th>${k}</th>`).join('')}<th>Compared with</th><th>Cases</th><th>Patients</th>${METRICS.map((m) => `<th>${m}</th>`).join('')}<th>Both correct / only model / only reader / neither</th></tr>
${rows}
</table>
<p><small>Tests: ${escapeHtml(tests.join('; '))}</small></p>`,
  );
}
