import { useQuery } from 'urql';
import { STUDY, type StudyData, type StudyFlowRow } from '../graphql/documents';
import { ErrorNote } from '../ui';

const BOX_W = 200;
const BOX_H = 44;
const GAP = 26;

interface Box {
  label: string;
  value: number | null;
  /** Lines under the label (exclusion reasons). */
  details?: string[];
}

const LINE = 13;
/** Every split, in the order a study reports them, an empty one shown as 0. */
const SPLITS = ['TRAIN', 'VALIDATION', 'TEST'];

/** One STARD flow as an SVG: the main column top to bottom, exclusions and not-assessable cells to the side. */
function FlowDiagram({ row }: { row: StudyFlowRow }) {
  const reasons = row.excludedByReason.filter((r) => r.patients > 0).map((r) => `${r.reason.toLowerCase().replace(/_/g, ' ')}: ${r.patients}`);
  const main: Box[] = [
    { label: 'Enrolled patients', value: row.enrolled },
    { label: 'Eligible patients', value: row.eligible },
    { label: 'Joints', value: row.joints },
    { label: 'Cells with a reference grade', value: row.referenceCells },
    { label: 'Assessable', value: row.assessable },
    { label: 'Analysed (confirmed)', value: row.analysed },
  ];
  const side: (Box | null)[] = [
    { label: 'Excluded', value: row.excluded, details: reasons },
    null,
    null,
    { label: 'Not assessable', value: row.notAssessable },
    null,
    null,
  ];
  const height = main.length * (BOX_H + GAP);
  const text = (box: Box) => `${box.label}: ${box.value ?? 'suppressed'}`;
  return (
    <svg className="flow" width={BOX_W * 2 + 80} height={height} role="img" aria-label={`STARD flow ${row.site ?? 'all sites'}`}>
      {main.map((box, i) => {
        const y = i * (BOX_H + GAP);
        const aside = side[i];
        return (
          <g key={box.label}>
            <rect x={0} y={y} width={BOX_W} height={BOX_H} rx={4} className="flow-box" />
            <text x={BOX_W / 2} y={y + BOX_H / 2 + 5} textAnchor="middle" data-testid="flow-count">
              {text(box)}
            </text>
            {i < main.length - 1 ? (
              <line x1={BOX_W / 2} y1={y + BOX_H} x2={BOX_W / 2} y2={y + BOX_H + GAP} className="flow-arrow" markerEnd="url(#arrow)" />
            ) : null}
            {aside ? (
              <>
                <line x1={BOX_W} y1={y + BOX_H / 2} x2={BOX_W + 60} y2={y + BOX_H / 2} className="flow-arrow" markerEnd="url(#arrow)" />
                <rect x={BOX_W + 60} y={y} width={BOX_W} height={BOX_H + LINE * (aside.details?.length ?? 0)} rx={4} className="flow-box flow-side" />
                <text x={BOX_W + 60 + BOX_W / 2} y={y + BOX_H / 2 + 5} textAnchor="middle">
                  {text(aside)}
                </text>
                {(aside.details ?? []).map((line, k) => (
                  <text key={line} x={BOX_W + 60 + BOX_W / 2} y={y + BOX_H + LINE * k} textAnchor="middle" className="flow-detail">
                    {line}
                  </text>
                ))}
              </>
            ) : null}
          </g>
        );
      })}
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" />
        </marker>
      </defs>
    </svg>
  );
}

/** STARD counts per site and pooled (the API's last row), and the patients of each split version per site. */
export function StudyPage() {
  const [{ data, error }] = useQuery<StudyData>({ query: STUDY });
  const siteCode = (id: string) => data?.sites.nodes.find((s) => s.id === id)?.code ?? id.slice(0, 8);
  return (
    <section className="study">
      <h1>Study overview</h1>
      <ErrorNote error={error} />
      <div className="flows">
        {(data?.studyFlow ?? []).map((row) => (
          <figure key={row.site ?? 'all'} data-testid={`flow-${row.site ?? 'all'}`}>
            <figcaption>{row.site ?? 'All sites'}</figcaption>
            {row.suppressed ? <p className="suppressed">Suppressed ({row.suppression?.toLowerCase().replace(/_/g, ' ')})</p> : <FlowDiagram row={row} />}
          </figure>
        ))}
      </div>
      <h2>Splits</h2>
      {data && data.splitVersions.nodes.length === 0 ? <p>No split version yet (a statistician or admin creates one: docs/api.md, Splits).</p> : null}
      {(data?.splitVersions.nodes ?? []).map((version) => {
        const sites = [...new Set(version.counts.map((c) => c.siteId))];
        const splits = SPLITS;
        return (
          <table key={version.id} className="splits" data-testid="split-table">
            <caption>
              {version.name} {version.frozen ? '(frozen)' : ''}
            </caption>
            <thead>
              <tr>
                <th>Site</th>
                {splits.map((split) => (
                  <th key={split}>{split}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {sites.map((siteId) => (
                <tr key={siteId}>
                  <td>{siteCode(siteId)}</td>
                  {splits.map((split) => (
                    <td key={split}>{version.counts.find((c) => c.siteId === siteId && c.split === split)?.patients ?? 0}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        );
      })}
    </section>
  );
}
