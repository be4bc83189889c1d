import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mrmcReport } from '../../server/cli/report-mrmc';
import { Role } from '../../server/domain';
import type { Reader, Site } from '../../server/entities';
import { auc } from '../../server/stats/auc';
import { seededRandom } from '../../server/stats/bootstrap';
import { analyseMrmc } from '../../server/stats/mrmc/obuchowski-rockette';
import { modelVersusReaders, type MrmcCase, type MrmcRating } from '../../server/stats/mrmc/study';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const MRMC = `query ($input: MrmcInput!) { mrmc(input: $input) {
  figureOfMerit threshold level clustered covariance disclosure { applied minGroupPatients }
  groups { feature modality site pooled suppressed suppression design readers sites cases patients problem problemDetail
    randomReaders { difference { estimate stdErr df lower upper statistic p } model { estimate lower upper } readers { estimate lower upper } }
    fixedReaders { difference { estimate stdErr df lower upper statistic p } }
    fixedCases { difference { estimate stdErr df p } }
    varianceComponents { reader testReader error cov1 cov2 cov3 corr1 corr2 corr3 }
    perReader { readerCode site cases readerValue modelValue difference { estimate stdErr p } }
    readerRoc { fpr tpr thresholds } modelRoc { fpr tpr thresholds } } } }`;

interface Cell {
  site: string;
  patientId: string;
  jointId: string;
  truth: number;
  probabilities: number[];
  grades: Map<string, number>;
}

const CLOSE = 1e-9;

/**
 * The mrmc query end to end: a seeded three-site study (two readers per site reading only their site's patients, a
 * model for every joint) and later a site too small to release. Every number of a row equals the stats module's analysis
 * of the same cases (which test/stats/mrmc.test.ts holds to MRMCaov), and the per-reader AUCs equal AUCs by hand.
 */
describe('mrmc query', () => {
  const node = useTestNode();
  let statistician: string;
  /** ADMIN sees patient-level data, so no row is withheld or coarsened: the exact analyses are checked with it. */
  let admin: string;
  let modelVersionId: string;
  const cells: Cell[] = [];
  const readers = new Map<string, { reader: Reader; site: string }>();
  const sites = new Map<string, Site>();

  let factory: Factory;
  let engineer: string;
  let random: () => number;

  /** A site with two readers who read only its patients, every joint graded by both and scored by the model. */
  async function addSite(code: string, patients: number) {
    const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const csv: string[] = ['site,patient,level,side,modality,feature,p0,p1,p2,p3'];
    const added: Cell[] = [];
    const site = await factory.site(code);
    sites.set(code, site);
    const pair = [await factory.reader(site), await factory.reader(site)];
    for (const r of pair) readers.set(r.id, { reader: r, site: code });
    const noise = new Map(pair.map((r) => [r.id, 0.6 + random()]));
    for (let p = 1; p <= patients; p++) {
      const pseudonym = `${code}-P${p}`;
      const patient = await factory.patient(site, [], pseudonym);
      const degeneration = normal();
      for (const joint of await factory.joints(patient)) {
        const latent = degeneration + 0.8 * normal();
        const truth = Math.min(3, Math.max(0, Math.round(latent + 1)));
        const grades = new Map(pair.map((r) => [r.id, Math.min(3, Math.max(0, Math.round(latent + 1 + noise.get(r.id)! * normal())))]));
        const center = latent + 1 + 0.7 * normal();
        const weights = [0, 1, 2, 3].map((g) => Math.exp(-Math.abs(g - center)));
        const probabilities = weights.map((w) => Number((w / weights.reduce((a, b) => a + b, 0)).toFixed(6)));
        probabilities[0] = Number((1 - probabilities[1]! - probabilities[2]! - probabilities[3]!).toFixed(6));
        added.push({ site: code, patientId: patient.id, jointId: joint.id, truth, probabilities, grades });
        csv.push([code, pseudonym, joint.level, joint.side, 'CT', 'OSTEOPHYTES', ...probabilities].join(','));
      }
    }
    cells.push(...added);
    const ds = node().dataSource;
    await ds.query(
      `INSERT INTO reading (joint_id, modality, feature, grade, reader_id) SELECT j, 'CT', 'OSTEOPHYTES', g, r FROM unnest($1::uuid[], $2::smallint[], $3::uuid[]) AS v(j, g, r)`,
      [
        added.flatMap((c) => [...c.grades.keys()].map(() => c.jointId)),
        added.flatMap((c) => [...c.grades.values()]),
        added.flatMap((c) => [...c.grades.keys()]),
      ],
    );
    await ds.query(
      `INSERT INTO reference_grade (joint_id, modality, feature, grade, source, confirmed_at) SELECT j, 'CT', 'OSTEOPHYTES', g, 'CONSENSUS_PANEL', now() FROM unnest($1::uuid[], $2::smallint[]) AS v(j, g)`,
      [added.map((c) => c.jointId), added.map((c) => c.truth)],
    );
    const imported = await gqlOk(node().url, engineer, `mutation ($id: ID!, $csv: String!) { importPredictions(modelVersionId: $id, csv: $csv) { stored } }`, {
      id: modelVersionId,
      csv: csv.join('\n'),
    });
    expect(imported.importPredictions.stored).toBe(true);
  }

  beforeAll(async () => {
    factory = new Factory(node().services);
    statistician = await factory.token(Role.STATISTICIAN);
    admin = await factory.token(Role.ADMIN);
    engineer = await factory.token(Role.ENGINEER);
    random = seededRandom(171717);
    modelVersionId = (await gqlOk(node().url, engineer, `mutation { registerExternalModel(input: { name: "m", version: "1" }) { id } }`)).registerExternalModel
      .id;
    for (const code of ['EAST', 'WEST', 'NORTH']) await addSite(code, 10);
  });

  const bigSites = () => ['EAST', 'WEST', 'NORTH'].map((c) => sites.get(c)!.id);
  const query = async (token: string, input: Record<string, unknown>) => (await gqlOk(node().url, token, MRMC, { input: { modelVersionId, ...input } })).mrmc;

  /** The stats module's analysis of the cells of `siteCodes`, as the service should build it. */
  function expected(siteCodes: string[], method: 'JACKKNIFE' | 'DELONG', clustered: boolean, figure: 'AUC' | 'SENSITIVITY' | 'SPECIFICITY' = 'AUC') {
    const binary = figure !== 'AUC';
    const argmax = (p: number[]) => p.indexOf(Math.max(...p));
    const of = cells.filter((c) => siteCodes.includes(c.site));
    const cases: MrmcCase[] = of.map((c) => ({ id: c.jointId, truth: c.truth >= 1, cluster: clustered ? c.patientId : c.jointId, block: c.site }));
    const model = new Map(
      of.map((c) => [c.jointId, binary ? Number(argmax(c.probabilities) >= 1) : c.probabilities[1]! + c.probabilities[2]! + c.probabilities[3]!]),
    );
    const ratings: MrmcRating[] = [...readers.entries()]
      .sort((a, b) => a[1].reader.code.localeCompare(b[1].reader.code))
      .flatMap(([id]) =>
        of
          .filter((c) => c.grades.has(id))
          .map((c) => ({ test: 'READERS', reader: id, caseId: c.jointId, rating: binary ? Number(c.grades.get(id)! >= 1) : c.grades.get(id)! })),
      );
    return analyseMrmc(modelVersusReaders(cases, model, ratings), { method, clustered, level: 0.95, figure });
  }

  const close = (actual: number | null, value: number | null) => {
    if (value === null) expect(actual).toBeNull();
    else expect(Math.abs((actual as number) - value)).toBeLessThan(CLOSE);
  };

  it('analyses the pooled split-plot study (readers nested within sites) as the stats module does', async () => {
    const result = await query(admin, { scope: { siteIds: bigSites() } });
    expect(result).toMatchObject({ threshold: 1, level: 0.95, clustered: true, covariance: 'JACKKNIFE', disclosure: { applied: false } });
    const pooled = result.groups.find((g: { pooled: boolean }) => g.pooled);
    expect(pooled).toMatchObject({
      feature: 'OSTEOPHYTES',
      modality: 'CT',
      site: null,
      suppressed: false,
      design: 'SPLIT_PLOT',
      readers: 6,
      sites: 3,
      cases: 300,
      patients: 30,
      problem: null,
    });
    const a = expected(['EAST', 'WEST', 'NORTH'], 'JACKKNIFE', true);
    const rr = a.randomReaders!;
    const d = pooled.randomReaders.difference;
    close(d.estimate, rr.differences[0]!.estimate);
    close(d.stdErr, rr.differences[0]!.stdErr);
    close(d.df, rr.differences[0]!.df);
    close(d.lower, rr.differences[0]!.lower);
    close(d.upper, rr.differences[0]!.upper);
    close(d.p, rr.differences[0]!.p);
    close(pooled.randomReaders.model.estimate, rr.means[0]!.estimate);
    close(pooled.randomReaders.readers.estimate, rr.means[1]!.estimate);
    close(pooled.fixedReaders.difference.stdErr, a.fixedReaders.differences[0]!.stdErr);
    close(pooled.fixedReaders.difference.p, a.fixedReaders.differences[0]!.p);
    expect(pooled.fixedReaders.difference.df).toBeNull();
    close(pooled.fixedCases.difference.p, a.fixedCases!.differences[0]!.p);
    for (const key of ['reader', 'testReader', 'error', 'cov1', 'cov2', 'cov3'] as const) close(pooled.varianceComponents[key], a.varianceComponents[key]);
    // The reader average is the mean of the readers' AUCs; the difference is model minus that mean.
    const meanReader = pooled.perReader.reduce((s: number, r: { readerValue: number }) => s + r.readerValue, 0) / 6;
    const meanModel = pooled.perReader.reduce((s: number, r: { modelValue: number }) => s + r.modelValue, 0) / 6;
    close(d.estimate, meanModel - meanReader);
  });

  it("gives each reader's AUC and the model's on that reader's cases, computed by hand", async () => {
    const result = await query(admin, { scope: { siteIds: bigSites() } });
    const pooled = result.groups.find((g: { pooled: boolean }) => g.pooled);
    for (const row of pooled.perReader) {
      const [id, { site }] = [...readers.entries()].find(([, r]) => r.reader.code === row.readerCode)!;
      expect(row.site).toBe(site);
      const mine = cells.filter((c) => c.grades.has(id));
      expect(row.cases).toBe(mine.length);
      const split = (score: (c: Cell) => number) => auc(mine.filter((c) => c.truth >= 1).map(score), mine.filter((c) => c.truth < 1).map(score)).value;
      close(
        row.readerValue,
        split((c) => c.grades.get(id)!),
      );
      close(
        row.modelValue,
        split((c) => 1 - c.probabilities[0]!),
      );
    }
  });

  it('gives one crossed row per site, equal to the crossed analysis of that site alone', async () => {
    const result = await query(admin, { scope: { siteIds: bigSites() }, covariance: 'DELONG' });
    const east = result.groups.find((g: { site: string | null }) => g.site === 'EAST');
    expect(east).toMatchObject({ design: 'CROSSED', readers: 2, sites: 1, cases: 100, patients: 10, suppressed: false });
    const a = expected(['EAST'], 'DELONG', true);
    close(east.randomReaders.difference.estimate, a.randomReaders!.differences[0]!.estimate);
    close(east.randomReaders.difference.stdErr, a.randomReaders!.differences[0]!.stdErr);
    close(east.randomReaders.difference.df, a.randomReaders!.differences[0]!.df);
    close(east.randomReaders.difference.p, a.randomReaders!.differences[0]!.p);
  });

  it('treats joints as independent with clustered: false, and then allows the unbiased covariance', async () => {
    const result = await query(admin, { scope: { siteIds: bigSites() }, clustered: false, covariance: 'JACKKNIFE', bySite: false });
    expect(result.groups).toHaveLength(1);
    const a = expected(['EAST', 'WEST', 'NORTH'], 'JACKKNIFE', false);
    close(result.groups[0].randomReaders.difference.stdErr, a.randomReaders!.differences[0]!.stdErr);
    const unbiased = await query(admin, { scope: { siteIds: bigSites() }, clustered: false, covariance: 'UNBIASED', bySite: false });
    expect(unbiased.groups[0].randomReaders.difference.stdErr).toBeGreaterThan(0);
  });

  it.each(['SENSITIVITY', 'SPECIFICITY'] as const)('measures the %s of the calls at the threshold (the model: its argmax grade)', async (figure) => {
    const result = await query(admin, { scope: { siteIds: bigSites() }, figureOfMerit: figure, bySite: false });
    expect(result.figureOfMerit).toBe(figure);
    const a = expected(['EAST', 'WEST', 'NORTH'], 'JACKKNIFE', true, figure);
    const d = result.groups[0].randomReaders.difference;
    close(d.estimate, a.randomReaders!.differences[0]!.estimate);
    close(d.stdErr, a.randomReaders!.differences[0]!.stdErr);
    close(d.p, a.randomReaders!.differences[0]!.p);
    // Each reader's sensitivity (specificity) by hand.
    for (const row of result.groups[0].perReader) {
      const [id] = [...readers.entries()].find(([, r]) => r.reader.code === row.readerCode)!;
      const mine = cells.filter((c) => c.grades.has(id) && c.truth >= 1 === (figure === 'SENSITIVITY'));
      const correct = mine.filter((c) => c.grades.get(id)! >= 1 === (figure === 'SENSITIVITY')).length;
      close(row.readerValue, correct / mine.length);
    }
  });

  it("returns the readers' ROC averaged at each grade, coarsened for a statistician", async () => {
    const result = await query(statistician, {});
    const east = result.groups.find((g: { site: string | null }) => g.site === 'EAST');
    expect(east).toMatchObject({ suppressed: false, readers: 2, patients: 10 });
    const roc = east.readerRoc;
    expect(roc.fpr[0]).toBe(0);
    expect(roc.fpr.at(-1)).toBeCloseTo(1, 12);
    expect(roc.tpr.at(-1)).toBeCloseTo(1, 12);
    for (let i = 1; i < roc.fpr.length; i++) expect(roc.fpr[i]).toBeGreaterThanOrEqual(roc.fpr[i - 1]);
    // The model's curve has grid thresholds only (i / 20), never a case's own score.
    for (const t of east.modelRoc.thresholds.slice(1)) expect(Math.abs(t * 20 - Math.round(t * 20))).toBeLessThan(1e-9);
  });

  it('writes the same numbers as `facet report --mrmc` CSV, one line per row and conclusion', async () => {
    const out = path.join(await mkdtemp(path.join(tmpdir(), 'facet-mrmc-')), 'mrmc.csv');
    const text = await mrmcReport({ url: node().url, token: admin, modelVersionId, covariance: 'DELONG', clustered: true, format: 'csv', out });
    expect(await readFile(out, 'utf8')).toBe(text);
    const [header, ...lines] = text.trim().split('\n');
    expect(header).toBe(
      'feature,modality,site,pooled,design,readers,cases,patients,conclusion,model_value,readers_value,difference,lower,upper,df,statistic,p,reason',
    );
    // Pooled and three sites, three conclusions each.
    expect(lines).toHaveLength(12);
    const pooledRandom = lines[0]!.split(',');
    expect(pooledRandom.slice(0, 9)).toEqual(['OSTEOPHYTES', 'CT', '', 'true', 'SPLIT_PLOT', '6', '300', '30', 'randomReaders']);
    const a = expected(['EAST', 'WEST', 'NORTH'], 'DELONG', true).randomReaders!.differences[0]!;
    expect(Number(pooledRandom[11])).toBe(a.estimate);
    expect(Number(pooledRandom[14])).toBeCloseTo(a.df!, 9);
    expect(Number(pooledRandom[16])).toBeCloseTo(a.p!, 12);
    await expect(mrmcReport({ url: node().url, token: admin, modelVersionId, covariance: 'UNBIASED', clustered: true, format: 'csv' })).rejects.toThrow(
      /BAD_USER_INPUT/,
    );
  });

  it('withholds a small site and the pooled row its readers would expose, for a statistician', async () => {
    // From here on the node also holds a site of 3 patients.
    await addSite('TINY', 3);
    const result = await query(statistician, {});
    const tiny = result.groups.find((g: { site: string | null }) => g.site === 'TINY');
    expect(tiny).toMatchObject({ suppressed: true, suppression: 'FEWER_THAN_MIN_PATIENTS', randomReaders: null, perReader: [], readers: null });
    const pooled = result.groups.find((g: { pooled: boolean }) => g.pooled);
    expect(pooled).toMatchObject({ suppressed: true, suppression: 'READER_SHARE_WITHHELD', varianceComponents: null });
    // Without the small site the pooled row would differ from the all-site row by that site's 3 patients alone.
    const three = await query(statistician, { scope: { siteIds: bigSites() }, bySite: false });
    expect(three.groups[0]).toMatchObject({ suppressed: true, suppression: 'COMPLEMENT_TOO_SMALL' });
  });

  it("shows a coordinator their own site's row, whatever its size, and no other site", async () => {
    const coordinator = await factory.token(Role.COORDINATOR, { site: sites.get('TINY')! });
    const result = await query(coordinator, {});
    expect(result.disclosure.applied).toBe(false);
    expect(result.groups.map((g: { site: string | null }) => g.site)).toEqual([null, 'TINY']);
    expect(result.groups[1]).toMatchObject({ suppressed: false, readers: 2, patients: 3, design: 'CROSSED' });
  });

  it('reports a row it cannot analyse with the reason instead of failing the query', async () => {
    // Grade 3 of the left L1-L2 joints: in this seeded study EAST and NORTH have no such positive joint; WEST has.
    const result = await query(admin, { scope: { siteIds: bigSites(), levels: ['L1_L2'], sides: ['LEFT'] }, threshold: 3, covariance: 'DELONG' });
    const bySite = new Map(result.groups.map((g: { site: string | null }) => [g.site, g]));
    expect(bySite.get(null)).toMatchObject({
      problem: 'BLOCK_WITHOUT_BOTH_CLASSES',
      problemDetail: expect.stringContaining('EAST'),
      randomReaders: null,
      cases: 30,
    });
    expect(bySite.get('NORTH')).toMatchObject({ problem: 'BLOCK_WITHOUT_BOTH_CLASSES', problemDetail: expect.stringContaining('NORTH') });
    // WEST's two readers differ from the model by the same amount: MS(T:R) = 0 and Hillis's df has no finite value (null).
    const west = bySite.get('WEST') as { problem: null; randomReaders: { difference: { df: number | null; stdErr: number } } };
    expect(west.problem).toBeNull();
    expect(west.randomReaders.difference.df).toBeNull();
  });

  it.each([
    ['an unknown model version', { modelVersionId: '00000000-0000-4000-8000-000000000000' }, 'NOT_FOUND'],
    ['the unbiased covariance with clustered cases', { covariance: 'UNBIASED' }, 'BAD_USER_INPUT'],
    ['a threshold below 1', { threshold: 0 }, 'BAD_USER_INPUT'],
    ['a confidence level of 1', { level: 1 }, 'BAD_USER_INPUT'],
    ['splits without a split version', { scope: { splits: ['TEST'] } }, 'BAD_USER_INPUT'],
    ['a covariance it does not know', { covariance: 'BOOTSTRAP' }, 'BAD_USER_INPUT'],
    ['DeLong covariances for sensitivity', { figureOfMerit: 'SENSITIVITY', covariance: 'DELONG' }, 'BAD_USER_INPUT'],
  ])('rejects %s', async (_name, input, code) => {
    const res = await gql(node().url, statistician, MRMC, { input: { modelVersionId, ...input } });
    expect(codeOf(res)).toBe(code);
  });

  it('is refused to a reader', async () => {
    const { token } = await factory.readerWithToken(await factory.site('OTHER'));
    const res = await gql(node().url, token, MRMC, { input: { modelVersionId } });
    expect(codeOf(res)).toBe('FORBIDDEN');
  });
});
