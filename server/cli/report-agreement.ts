import { csv, escapeHtml, htmlCount, htmlPage } from './report-format';

/** `facet report agreement`: reader 1 vs reader 2 and each reader vs the reference, per feature x modality (x site). */

export const AGREEMENT_QUERY = `query ($scope: MetricsScope, $bySite: Boolean!) {
  agreement(scope: $scope, bySite: $bySite) {
    feature modality site suppressed suppression
    readers { cases unweighted { value reason } linear { value reason } quadratic { value reason } percentAgreement { value reason } }
    adjudicationRate { value reason }
    readerVsReference { readerCode slot suppressed suppression cases unweighted { value reason } linear { value reason } quadratic { value reason } }
  }
}`;

interface Value {
  value: number | null;
  reason: string | null;
}
interface Kappas {
  cases: number | null;
  unweighted: Value | null;
  linear: Value | null;
  quadratic: Value | null;
}

export interface AgreementGroup {
  feature: string;
  modality: string;
  site: string | null;
  suppressed: boolean;
  suppression: string | null;
  readers: (Kappas & { percentAgreement: Value }) | null;
  adjudicationRate: Value | null;
  readerVsReference: Array<Kappas & { readerCode: string; slot: string | null; suppressed: boolean; suppression: string | null }>;
}

export interface AgreementData {
  agreement: AgreementGroup[];
}

/** One row of the report: a block (reader vs reader, or one reader vs the reference) of one group. */
interface Row {
  group: AgreementGroup;
  comparison: string;
  kappas: Kappas | null;
  percentAgreement: Value | null;
  adjudicationRate: Value | null;
  suppressed: boolean;
  suppression: string | null;
}

function rowsOf(groups: AgreementGroup[]): Row[] {
  return groups.flatMap((g) => [
    {
      group: g,
      comparison: 'reader 1 vs reader 2',
      kappas: g.readers,
      percentAgreement: g.readers?.percentAgreement ?? null,
      adjudicationRate: g.adjudicationRate,
      suppressed: g.suppressed,
      suppression: g.suppression,
    },
    ...g.readerVsReference.map((r) => ({
      group: g,
      comparison: `${r.readerCode}${r.slot ? ` (${r.slot})` : ''} vs reference`,
      kappas: r.suppressed ? null : r,
      percentAgreement: null,
      adjudicationRate: null,
      suppressed: r.suppressed,
      suppression: r.suppression,
    })),
  ]);
}

/** A value's cell: the number, or empty with the reason in the reason column (a withheld row: "withheld"). */
const valueOf = (v: Value | null | undefined): number | null => v?.value ?? null;

export function agreementCsv(data: AgreementData): string {
  const header = [
    'feature',
    'modality',
    'site',
    'comparison',
    'cases',
    'kappa',
    'linear_kappa',
    'quadratic_kappa',
    'percent_agreement',
    'adjudication_rate',
    'status',
    'reason',
  ];
  const rows = rowsOf(data.agreement).map((r) => {
    const undefinedReason = r.kappas?.unweighted?.reason ?? r.percentAgreement?.reason ?? null;
    return [
      r.group.feature,
      r.group.modality,
      r.group.site,
      r.comparison,
      r.kappas?.cases ?? null,
      valueOf(r.kappas?.unweighted),
      valueOf(r.kappas?.linear),
      valueOf(r.kappas?.quadratic),
      valueOf(r.percentAgreement),
      valueOf(r.adjudicationRate),
      r.suppressed ? 'withheld' : 'released',
      r.suppressed ? r.suppression : undefinedReason,
    ];
  });
  return csv(header, rows);
}

const htmlValue = (v: Value | null | undefined, row: Row): string =>
  row.suppressed
    ? `— (${escapeHtml(row.suppression ?? '')})`
    : v === null || v === undefined
      ? ''
      : v.value === null
        ? `— (${escapeHtml(v.reason ?? '')})`
        : v.value.toFixed(3);

export function agreementHtml(data: AgreementData, title: string): string {
  const rows = rowsOf(data.agreement)
    .map(
      (r) =>
        `<tr><th>${escapeHtml(r.group.feature)}</th><th>${escapeHtml(r.group.modality)}</th><th>${escapeHtml(r.group.site ?? 'all sites')}</th><th>${escapeHtml(r.comparison)}</th><td>${htmlCount(r.kappas?.cases ?? null, r.suppressed ? r.suppression : '')}</td>${[r.kappas?.unweighted, r.kappas?.linear, r.kappas?.quadratic, r.percentAgreement, r.adjudicationRate].map((v) => `<td>${htmlValue(v, r)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return htmlPage(
    title,
    `<h2>Agreement (each double-read cell oriented FIRST slot, SECOND slot)</h2>
<table><tr><th>Feature</th><th>Modality</th><th>Site</th><th>Comparison</th><th>Cases</th><th>Kappa</th><th>Linear kappa</th><th>Quadratic kappa</th><th>Agreement</th><th>Adjudication rate</th></tr>
${rows}
</table>`,
  );
}
