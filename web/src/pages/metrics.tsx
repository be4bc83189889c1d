import * as Plot from '@observablehq/plot';
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { useClient, useQuery } from 'urql';
import { PlotFigure } from '../chart';
import { downloadCsv } from '../export';
import {
  AGREEMENT,
  GROUP_BYS,
  METRICS,
  OPERATING_POINTS,
  RATERS,
  type AgreementData,
  type Estimate,
  type GroupBy,
  type MetricsData,
  type MetricsGroup,
  type MetricsInput,
  type OperatingPointsData,
  type RaterChoices,
  type RaterInput,
} from '../graphql/documents';
import { ErrorNote, fmt } from '../ui';

const DIMENSIONS = ['site', 'feature', 'modality', 'level', 'side', 'split'] as const;
const ESTIMATES = ['auc', 'sensitivity', 'specificity', 'f1', 'accuracy'] as const;

/** A group's name from the dimensions it is grouped by; the pooled row is "all". */
export const groupLabel = (group: MetricsGroup): string =>
  group.pooled
    ? 'all'
    : DIMENSIONS.map((d) => group[d])
        .filter((v) => v !== null)
        .join(' · ');

const interval = (estimate: Estimate | null): string =>
  !estimate || estimate.value === null ? (estimate?.reason ?? '—') : `${fmt(estimate.value)} [${fmt(estimate.lower)}, ${fmt(estimate.upper)}]`;

/** The rater select's value: `kind:id`. */
function raterOf(choice: string): RaterInput {
  const [kind, id] = choice.split(':');
  if (kind === 'model') return { modelVersionId: id };
  if (kind === 'reader') return { readerId: id };
  if (kind === 'slot') return { readerSlot: id as 'FIRST' | 'SECOND' };
  return { readerRole: 'READER' };
}

function MetricsTable({ groups, groupBy }: { groups: MetricsGroup[]; groupBy: GroupBy[] }) {
  const dims = DIMENSIONS.filter((d) => groupBy.includes(d.toUpperCase() as GroupBy));
  return (
    <table data-testid="metrics-table">
      <thead>
        <tr>
          {dims.map((d) => (
            <th key={d}>{d}</th>
          ))}
          <th>cases</th>
          <th>patients</th>
          {ESTIMATES.map((e) => (
            <th key={e}>{e} [CI]</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {groups.map((group, i) => (
          <tr key={i} className={group.pooled ? 'pooled' : undefined} data-suppressed={group.suppressed}>
            {dims.map((d) => (
              <td key={d}>{group.pooled ? 'all' : (group[d] ?? 'all')}</td>
            ))}
            {group.suppressed ? (
              <td colSpan={2 + ESTIMATES.length} className="suppressed">
                suppressed ({group.suppression?.toLowerCase().replace(/_/g, ' ')})
              </td>
            ) : (
              <>
                <td>{group.cases}</td>
                <td>{group.patients}</td>
                {ESTIMATES.map((e) => (
                  <td key={e} title={group[e]?.method}>
                    {interval(group[e])}
                  </td>
                ))}
              </>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function exportCsv(groups: MetricsGroup[]) {
  const header = [
    ...DIMENSIONS,
    'pooled',
    'suppressed',
    'suppression',
    'cases',
    'patients',
    ...ESTIMATES.flatMap((e) => [e, `${e}_lower`, `${e}_upper`, `${e}_method`]),
  ];
  const rows = groups.map((g) => [
    ...DIMENSIONS.map((d) => g[d]),
    g.pooled,
    g.suppressed,
    g.suppression,
    g.cases,
    g.patients,
    ...ESTIMATES.flatMap((e) => [g[e]?.value, g[e]?.lower, g[e]?.upper, g[e]?.method]),
  ]);
  downloadCsv('metrics.csv', header, rows);
}

/** AUC and F1 of every group with their intervals, one row per group, the pooled row last; suppressed groups say so. */
function ForestPlot({ groups }: { groups: MetricsGroup[] }) {
  const options = useMemo<Plot.PlotOptions>(() => {
    const rows = groups.flatMap((g) =>
      (['auc', 'f1'] as const).map((metric) => ({
        group: groupLabel(g),
        metric: metric.toUpperCase(),
        value: g[metric]?.value ?? null,
        lower: g[metric]?.lower ?? null,
        upper: g[metric]?.upper ?? null,
        suppressed: g.suppressed,
      })),
    );
    const shown = rows.filter((r) => r.value !== null);
    const withheld = rows.filter((r) => r.suppressed);
    return {
      marginLeft: 170,
      width: 820,
      height: 40 + 22 * groups.length,
      x: { domain: [0, 1], label: 'estimate (CI)', grid: true },
      y: { domain: groups.map(groupLabel), label: null },
      fx: { label: null },
      marks: [
        Plot.ruleY(shown, { y: 'group', x1: 'lower', x2: 'upper', fx: 'metric', stroke: '#1f3b5a' }),
        Plot.dot(shown, { y: 'group', x: 'value', fx: 'metric', fill: '#1f3b5a', r: 3.5 }),
        Plot.text(withheld, { y: 'group', x: 0.5, fx: 'metric', text: () => 'suppressed', fill: '#8a5a00' }),
      ],
    };
  }, [groups]);
  return <PlotFigure name="forest" title="AUC and F1 per group (point and interval)" options={options} />;
}

interface OperatingPoint {
  reader: string;
  feature: string;
  fpr: number;
  tpr: number;
}

/**
 * ROC curves per feature of the chosen rater (grouped by feature alone), with each first or second reader's
 * operating point on the same feature (their sensitivity against 1 - specificity).
 */
function RocCurves({ input, readers }: { input: MetricsInput; readers: RaterChoices['readers']['nodes'] }) {
  const client = useClient();
  const [curves, setCurves] = useState<MetricsGroup[] | null>(null);
  const [points, setPoints] = useState<OperatingPoint[]>([]);
  useEffect(() => {
    let live = true;
    const byFeature = { ...input, groupBy: ['FEATURE'] as GroupBy[] };
    void client
      .query<MetricsData>(METRICS, { input: byFeature })
      .toPromise()
      .then((r) => live && setCurves(r.data?.metrics.groups.filter((g) => g.feature !== null && g.roc) ?? []));
    const slotted = readers.filter((r) => r.slot !== null);
    void Promise.all(
      slotted.map(async (reader) => {
        const r = await client
          .query<OperatingPointsData>(OPERATING_POINTS, { input: { rater: { readerId: reader.id }, groupBy: ['FEATURE'], clustered: false } })
          .toPromise();
        return (r.data?.metrics.groups ?? []).flatMap((g) =>
          g.feature !== null && !g.suppressed && g.sensitivity?.value != null && g.specificity?.value != null
            ? [{ reader: reader.code, feature: g.feature, tpr: g.sensitivity.value, fpr: 1 - g.specificity.value }]
            : [],
        );
      }),
    ).then((all) => live && setPoints(all.flat()));
    return () => {
      live = false;
    };
  }, [client, input, readers]);
  const options = useMemo<Plot.PlotOptions | null>(() => {
    if (!curves || curves.length === 0) return null;
    const lines = curves.flatMap((g) => g.roc!.fpr.map((fpr, i) => ({ feature: g.feature!, fpr, tpr: g.roc!.tpr[i] })));
    return {
      width: Math.max(360, 250 * curves.length),
      height: 280,
      marginRight: 50,
      x: { domain: [0, 1], label: '1 − specificity' },
      y: { domain: [0, 1], label: 'sensitivity' },
      fx: { label: null },
      marks: [
        Plot.frame({ stroke: '#d8dde4' }),
        Plot.line(
          [
            [0, 0],
            [1, 1],
          ],
          { stroke: '#bbb', strokeDasharray: '3,3' },
        ),
        Plot.line(lines, { x: 'fpr', y: 'tpr', fx: 'feature', stroke: '#0a62b0', strokeWidth: 2 }),
        Plot.dot(points, { x: 'fpr', y: 'tpr', fx: 'feature', fill: '#b0261a', r: 3 }),
        Plot.text(points, { x: 'fpr', y: 'tpr', fx: 'feature', text: 'reader', dx: 6, textAnchor: 'start', fontSize: 9 }),
      ],
    };
  }, [curves, points]);
  if (curves === null) return <p className="loading">Drawing ROC curves…</p>;
  if (!options) return <p>No ROC curve for this rater and scope (withheld, or a single class).</p>;
  return <PlotFigure name="roc" title="ROC per feature, with each reader's operating point" options={options} />;
}

/** The chosen rater's grade against the reference grade (rows), k × k per feature and site, with the quadratic kappa. */
function ConfusionHeatmaps({ groups }: { groups: MetricsGroup[] }) {
  const options = useMemo<Plot.PlotOptions | null>(() => {
    const tables = groups.filter((g) => !g.suppressed && !g.pooled && g.feature !== null && g.multiclass);
    if (tables.length === 0) return null;
    const panel = (g: MetricsGroup) => `${g.feature} κ=${fmt(g.multiclass!.quadraticKappa.value, 2)}`;
    const cells = tables.flatMap((g) =>
      g.multiclass!.confusion.flatMap((row, reference) => row.map((n, rater) => ({ panel: panel(g), site: g.site ?? 'all', reference, rater, n }))),
    );
    const columns = new Set(cells.map((c) => c.panel)).size;
    return {
      width: Math.max(360, 60 + 230 * columns),
      marginTop: 30,
      height: 60 + 170 * new Set(cells.map((c) => c.site)).size,
      padding: 0.05,
      x: { label: 'rater grade', type: 'band' },
      y: { label: 'reference grade', type: 'band' },
      fx: { label: null },
      fy: { label: null },
      color: { scheme: 'blues', type: 'sqrt' },
      marks: [
        Plot.cell(cells, { x: 'rater', y: 'reference', fx: 'panel', fy: 'site', fill: 'n' }),
        Plot.text(cells, { x: 'rater', y: 'reference', fx: 'panel', fy: 'site', text: 'n', fontSize: 9 }),
      ],
    };
  }, [groups]);
  if (!options) return <p>Group by feature to see the k × k tables.</p>;
  return <PlotFigure name="confusion" title="Rater against reference grade (counts), quadratic kappa per panel" options={options} />;
}

/** Reader 1 against reader 2: quadratic kappa per feature × modality and site (the `agreement` query). */
function AgreementHeatmap() {
  const [{ data, error }] = useQuery<AgreementData>({ query: AGREEMENT });
  const options = useMemo<Plot.PlotOptions | null>(() => {
    const rows = (data?.agreement ?? []).map((g) => ({
      site: g.site ?? 'all',
      feature: g.feature,
      modality: g.modality,
      kappa: g.suppressed ? null : (g.readers?.quadratic?.value ?? null),
      label: g.suppressed ? 'suppressed' : fmt(g.readers?.quadratic?.value, 2),
    }));
    if (rows.length === 0) return null;
    return {
      width: Math.max(420, 180 + 200 * new Set(rows.map((r) => r.site)).size),
      height: 260,
      marginLeft: 180,
      padding: 0.05,
      x: { label: null },
      y: { label: null },
      fx: { label: null },
      color: { scheme: 'rdylgn', domain: [0, 1] },
      marks: [
        Plot.cell(rows, { x: 'modality', y: 'feature', fx: 'site', fill: (r) => r.kappa ?? undefined }),
        Plot.text(rows, { x: 'modality', y: 'feature', fx: 'site', text: 'label', fontSize: 9 }),
      ],
    };
  }, [data]);
  return (
    <>
      <ErrorNote error={error} />
      {options ? <PlotFigure name="agreement" title="Reader 1 vs reader 2, quadratic kappa" options={options} /> : null}
    </>
  );
}

/**
 * The `metrics` query for one rater: table with intervals, forest plot, ROC per feature, k × k heatmaps and the
 * readers' agreement. Nothing is computed here: every number is the API's, withheld rows included as withheld.
 */
export function MetricsPage() {
  const [raters] = useQuery<RaterChoices>({ query: RATERS });
  const [choice, setChoice] = useState('');
  const [groupBy, setGroupBy] = useState<GroupBy[]>(['SITE', 'FEATURE']);
  const [clustered, setClustered] = useState(true);
  const [input, setInput] = useState<MetricsInput | null>(null);
  const [result] = useQuery<MetricsData>({ query: METRICS, variables: { input }, pause: input === null });
  // Every model version is a rater: an ONNX one through its jobs' predictions, an external one through its import.
  const models = raters.data?.modelVersions.nodes ?? [];
  const readers = raters.data?.readers.nodes ?? [];
  const firstChoice = models[0] ? `model:${models[0].id}` : 'slot:FIRST';
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setInput({ rater: raterOf(choice || firstChoice), groupBy, clustered });
  };
  const groups = result.data?.metrics.groups ?? [];
  return (
    <section className="metrics">
      <h1>Metrics</h1>
      <form className="metrics-form" onSubmit={submit}>
        <label>
          Rater{' '}
          <select name="rater" value={choice || firstChoice} onChange={(e) => setChoice(e.target.value)}>
            {models.map((m) => (
              <option key={m.id} value={`model:${m.id}`}>
                model {m.name} {m.version}
              </option>
            ))}
            <option value="slot:FIRST">reader 1 of every site</option>
            <option value="slot:SECOND">reader 2 of every site</option>
            <option value="role:READER">all readers (average)</option>
            {readers.map((r) => (
              <option key={r.id} value={`reader:${r.id}`}>
                reader {r.code}
                {r.site ? ` (${r.site.code})` : ''}
              </option>
            ))}
          </select>
        </label>
        <fieldset>
          <legend>Group by</legend>
          {GROUP_BYS.map((g) => (
            <label key={g}>
              <input
                type="checkbox"
                name={`group-${g}`}
                checked={groupBy.includes(g)}
                onChange={() => setGroupBy(groupBy.includes(g) ? groupBy.filter((x) => x !== g) : [...groupBy, g])}
              />{' '}
              {g.toLowerCase()}
            </label>
          ))}
        </fieldset>
        <label>
          <input type="checkbox" name="clustered" checked={clustered} onChange={(e) => setClustered(e.target.checked)} /> patient-clustered intervals
        </label>
        <button type="submit" disabled={result.fetching}>
          {result.fetching ? 'Computing…' : 'Compute'}
        </button>
      </form>
      <ErrorNote error={raters.error ?? result.error} />
      {result.data && input ? (
        <>
          <p className="note">
            {result.data.metrics.clustered ? 'Patient-clustered' : 'Per-case'} {Math.round(result.data.metrics.level * 100)}% intervals; positive at grade ≥{' '}
            {result.data.metrics.threshold}
            {result.data.metrics.disclosure.applied ? `; groups under ${result.data.metrics.disclosure.minGroupPatients} patients are withheld` : ''}.{' '}
            <button type="button" onClick={() => exportCsv(groups)}>
              Export CSV
            </button>
          </p>
          <MetricsTable groups={groups} groupBy={input.groupBy} />
          <ForestPlot groups={groups} />
          <RocCurves input={input} readers={readers} />
          <ConfusionHeatmaps groups={groups} />
        </>
      ) : null}
      <h2>Agreement between readers</h2>
      <AgreementHeatmap />
    </section>
  );
}
