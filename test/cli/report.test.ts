import { spawn } from 'node:child_process';
import { parse } from 'csv-parse/sync';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadDemoCohort } from '../../server/demo/demo-cohort';
import { Modality, Role } from '../../server/domain';
import { seededRandom } from '../../server/stats/bootstrap';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const MAIN = path.resolve(__dirname, '../../dist/server/main.js');

/** Runs `facet report …` (the built CLI) against the test node. */
function report(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'report', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out }));
  });
}

/** A CSV the report wrote, as objects by header. */
const rowsOf = (csv: string): Array<Record<string, string>> => parse(csv, { columns: true });

describe('facet report compare and agreement', () => {
  // Groups of one site (5 patients) fall under the minimum for a statistician; the pooled rows (15) do not.
  const node = useTestNode({ disclosure: { minGroupPatients: 6 } });
  let statistician: string;
  let admin: string;
  let modelVersionId: string;
  let splitVersionId: string;
  const common = () => ['--url', node().url, '--token', admin];

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error('Build first: `npm run build` (npm test does).');
    await loadDemoCohort(node().services, { modalities: [Modality.CT], images: false });
    const factory = new Factory(node().services);
    statistician = await factory.token(Role.STATISTICIAN);
    admin = await factory.token(Role.ADMIN);
    const engineer = await factory.token(Role.ENGINEER);
    modelVersionId = (await gqlOk(node().url, engineer, `mutation { registerExternalModel(input: { name: "cli", version: "1" }) { id } }`))
      .registerExternalModel.id;
    // A model that follows the reference with seeded noise.
    const cells: Array<{ site: string; pseudonym: string; level: string; side: string; feature: string; grade: number; grades: number }> = await node()
      .dataSource.query(`
      SELECT s.code AS site, p.pseudonym, j.level, j.side, r.feature, r.grade, jsonb_array_length(g.grades) AS grades
      FROM reference_grade r JOIN joint j ON j.id = r.joint_id JOIN patient p ON p.id = j.patient_id JOIN site s ON s.id = p.site_id
      JOIN grading_feature g ON g.code = r.feature WHERE NOT r.not_assessable ORDER BY 1, 2, 3, 4, 5`);
    const random = seededRandom(5);
    const csv = ['site,patient,level,side,modality,feature,p0,p1,p2,p3'];
    for (const c of cells) {
      const w = Array.from({ length: c.grades }, (_, g) => Math.exp(-Math.abs(g - c.grade) + random() * 2));
      const total = w.reduce((a, b) => a + b, 0);
      csv.push([c.site, c.pseudonym, c.level, c.side, 'CT', c.feature, ...w.map((x) => x / total), ...Array(4 - c.grades).fill('')].join(','));
    }
    const imported = await gqlOk(node().url, engineer, `mutation ($id: ID!, $csv: String!) { importPredictions(modelVersionId: $id, csv: $csv) { stored } }`, {
      id: modelVersionId,
      csv: csv.join('\n'),
    });
    expect(imported.importPredictions.stored).toBe(true);
    splitVersionId = (await node().dataSource.query(`SELECT id FROM split_version`))[0].id;
  });

  it('compare: one row per reader and metric, the McNemar table on the accuracy row; --unclustered switches to per-case tests', async () => {
    const clustered = await report(['compare', ...common(), '--model', modelVersionId]);
    expect(clustered.code).toBe(0);
    const rows = rowsOf(clustered.out);
    expect(new Set(rows.map((r) => r.compared_with))).toEqual(new Set(['HARBOUR-R1', 'HARBOUR-R2', 'NORTH-R1', 'NORTH-R2', 'VALLEY-R1', 'VALLEY-R2']));
    expect(rows).toHaveLength(6 * 5);
    for (const r of rows.filter((r) => r.metric === 'ACCURACY')) {
      expect(r.test).toMatch(/^paired-cluster-bootstrap-percentile/);
      const table = ['both_correct', 'model_only', 'reader_only', 'neither'].map((k) => Number(r[k]));
      expect(table.reduce((a, b) => a + b, 0)).toBe(Number(r.cases));
      expect(Number(r.model) - Number(r.reader)).toBeCloseTo((table[1] - table[2]) / Number(r.cases), 12);
    }
    for (const r of rows.filter((r) => r.metric !== 'ACCURACY')) expect(r.both_correct).toBe('');
    expect(rows.find((r) => r.metric === 'AUC')!.method).toBe('obuchowski-paired');

    const perCase = rowsOf((await report(['compare', ...common(), '--model', modelVersionId, '--reader', await readerId('NORTH-R1'), '--unclustered'])).out);
    const byMetric = Object.fromEntries(perCase.map((r) => [r.metric, r]));
    expect(byMetric.ACCURACY.test).toBe('mcnemar-exact');
    expect(byMetric.ACCURACY.p).toBe(byMetric.ACCURACY.mcnemar_p);
    expect(byMetric.AUC.method).toBe('delong-paired');
    expect(byMetric.F1.method).toMatch(/^paired-case-bootstrap-percentile/);
    // The same numbers as the API gives for the same request.
    const api = await gqlOk(
      node().url,
      admin,
      `query ($input: CompareInput!) { compare(input: $input) { comparisons { differences { metric difference { lower upper } } mcnemar { modelOnly readerOnly } } } }`,
      { input: { modelVersionId, readerIds: [await readerId('NORTH-R1')], clustered: false } },
    );
    const [one] = api.compare.comparisons;
    expect(Number(byMetric.AUC.lower)).toBe(one.differences.find((d: any) => d.metric === 'AUC').difference.lower);
    expect([Number(byMetric.ACCURACY.model_only), Number(byMetric.ACCURACY.reader_only)]).toEqual([one.mcnemar.modelOnly, one.mcnemar.readerOnly]);
  });

  it('compare and metrics take the rater flags the API does: a slot pooled across sites, a role’s reader average', async () => {
    const slot = rowsOf((await report(['compare', ...common(), '--model', modelVersionId, '--reader-slot', 'first'])).out);
    expect(slot.map((r) => r.compared_with)).toEqual(Array(5).fill('slot FIRST'));
    expect(slot[0].readers).toBe('3');
    expect(Number(slot[0].both_correct) + Number(slot[0].model_only) + Number(slot[0].reader_only) + Number(slot[0].neither)).toBe(Number(slot[0].cases));
    const role = rowsOf((await report(['compare', ...common(), '--model', modelVersionId, '--reader-role', 'READER'])).out);
    expect(role.map((r) => r.compared_with)).toEqual(Array(5).fill('role READER (average)'));
    expect(role.map((r) => r.readers)).toEqual(Array(5).fill('6'));
    expect(role[0].both_correct).toBe(''); // no one table of calls for an average of readers
    const metrics = await report(['metrics', ...common(), '--reader-slot', 'SECOND', '--group-by', '', '--unclustered']);
    expect(metrics.code).toBe(0);
    const pooled = Object.fromEntries(rowsOf(metrics.out).map((r) => [r.metric, r]));
    expect(pooled.auc.method).toBe('delong');
    expect(pooled.sensitivity.method).toBe('wilson');
    // --splits narrows the split version to some of its splits: TEST holds 3 of the 15 eligible patients.
    const test = rowsOf(
      (await report(['compare', ...common(), '--model', modelVersionId, '--reader-slot', 'FIRST', '--split-version', splitVersionId, '--splits', 'test'])).out,
    );
    expect(new Set(test.map((r) => r.patients))).toEqual(new Set(['3']));
    const html = await report(['metrics', ...common(), '--reader-role', 'READER', '--format', 'html']);
    expect(html.out).toMatch(/Facet metrics report: role READER/);
    expect(html.out).toMatch(/patient-clustered/);
  });

  it('shows withheld comparisons and agreement groups as withheld with the reason, never as zeros', async () => {
    const asStatistician = ['--url', node().url, '--token', statistician];
    const compare = await report(['compare', ...asStatistician, '--model', modelVersionId, '--reader-slot', 'FIRST', '--group-by', 'SITE']);
    expect(compare.code).toBe(0);
    const rows = rowsOf(compare.out);
    const sites = rows.filter((r) => r.pooled === 'false');
    expect(new Set(sites.map((r) => r.site))).toEqual(new Set(['HARBOUR', 'NORTH', 'VALLEY']));
    for (const r of sites) {
      expect(r).toMatchObject({ method: 'withheld', reason: 'FEWER_THAN_MIN_PATIENTS', cases: '', patients: '', model: '', difference: '', p: '' });
      if (r.metric === 'ACCURACY') expect(r).toMatchObject({ both_correct: '', model_only: '', reader_only: '', neither: '' });
    }
    // The pooled row's readers each hold 5 patients, below the minimum: it is withheld too, with its own reason.
    const pooled = rows.filter((r) => r.pooled === 'true');
    expect(pooled).toHaveLength(5);
    for (const r of pooled) expect(r).toMatchObject({ method: 'withheld', reason: 'READER_SHARE_WITHHELD', cases: '', difference: '' });
    const html = await report(['compare', ...asStatistician, '--model', modelVersionId, '--reader-slot', 'FIRST', '--group-by', 'SITE', '--format', 'html']);
    expect(html.out.match(/— \(FEWER_THAN_MIN_PATIENTS\)/g)!.length).toBeGreaterThanOrEqual(3 * 5);

    const agreement = rowsOf((await report(['agreement', ...asStatistician])).out);
    expect(agreement.length).toBeGreaterThan(0);
    for (const b of agreement) {
      expect(b).toMatchObject({ status: 'withheld', cases: '', kappa: '', quadratic_kappa: '', percent_agreement: '', adjudication_rate: '' });
      expect(b.reason).toMatch(/^(FEWER_THAN_MIN_PATIENTS|COMPLEMENT_TOO_SMALL)$/);
    }
    const agreementHtml = await report(['agreement', ...asStatistician, '--format', 'html']);
    expect(agreementHtml.out).toMatch(/— \(FEWER_THAN_MIN_PATIENTS\)/);
    expect(agreementHtml.out).not.toMatch(/<td>0<\/td>/);
    const overSites = rowsOf((await report(['agreement', ...asStatistician, '--pooled-sites'])).out);
    expect(overSites.find((r) => r.comparison === 'reader 1 vs reader 2')).toMatchObject({ status: 'released', reason: '' });
  });

  it('agreement: reader 1 vs reader 2 and each reader vs the reference per feature x site, or pooled over sites, as the API gives', async () => {
    const bySite = rowsOf((await report(['agreement', '--url', node().url, '--token', admin])).out);
    const north = bySite.filter((r) => r.site === 'NORTH' && r.feature === 'OSTEOPHYTES');
    expect(north.map((r) => r.comparison)).toEqual(['reader 1 vs reader 2', 'NORTH-R1 (FIRST) vs reference', 'NORTH-R2 (SECOND) vs reference']);
    expect(north[0]).toMatchObject({ status: 'released', cases: '50' });
    const api = await gqlOk(
      node().url,
      admin,
      `{ agreement(scope: { features: ["OSTEOPHYTES"] }) { site readers { quadratic { value } percentAgreement { value } } adjudicationRate { value } } }`,
    );
    const northApi = api.agreement.find((g: any) => g.site === 'NORTH');
    expect(Number(north[0].quadratic_kappa)).toBe(northApi.readers.quadratic.value);
    expect(Number(north[0].adjudication_rate)).toBe(northApi.adjudicationRate.value);
    const pooled = rowsOf((await report(['agreement', '--url', node().url, '--token', admin, '--pooled-sites'])).out);
    expect(new Set(pooled.map((r) => r.site))).toEqual(new Set(['']));
    expect(pooled.find((r) => r.feature === 'OSTEOPHYTES' && r.comparison === 'reader 1 vs reader 2')!.cases).toBe('150');
  });

  it('refuses flags that do not fit the kind, saying which', async () => {
    for (const [args, message] of [
      [['compare', '--reader-slot', 'FIRST'], /report compare needs --model/],
      [['compare', '--model', 'x', '--reader-slot', 'FIRST', '--reader-role', 'READER'], /at most one of/],
      [['metrics', '--model', 'x', '--reader-slot', 'FIRST'], /report metrics needs one rater/],
      [['agreement', '--unclustered'], /report agreement takes no rater and no --unclustered/],
      [['compare', '--model', 'x', '--pooled-sites'], /--pooled-sites is for report agreement/],
      [['metrics', '--model', 'x', '--splits', 'TEST'], /--splits needs --split-version/],
      [['agreement', '--split-version', 'x'], /report agreement covers every eligible patient/],
    ] as Array<[string[], RegExp]>) {
      const run = await report([...args, '--url', node().url, '--token', statistician]);
      expect(run.code).toBe(1);
      expect(run.out).toMatch(message);
    }
  });

  async function readerId(code: string): Promise<string> {
    return (await node().dataSource.query(`SELECT id FROM reader WHERE code = $1`, [code]))[0].id;
  }
});
