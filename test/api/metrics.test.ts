import { spawn } from 'node:child_process';
import path from 'node:path';
import { loadDemoCohort } from '../../server/demo/demo-cohort';
import { Modality, Role } from '../../server/domain';
import { seededRandom } from '../../server/stats/bootstrap';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const METRICS = `query ($input: MetricsInput!) {
  metrics(input: $input) {
    threshold level clustered
    groups {
      pooled site feature modality cases joints patients
      confusion { tp fp tn fn }
      sensitivity { value lower upper method reason }
      specificity { value lower upper method }
      f1 { value lower upper method reason }
      auc { value lower upper method reason }
      roc { fpr tpr }
      multiclass { confusion macroF1 { value reason } quadraticKappa { value reason } }
    }
  }
}`;

describe('metrics', () => {
  const node = useTestNode();
  let statistician: string;
  let engineer: string;
  let admin: string;
  let coordinatorNorth: string;
  let modelVersionId: string;
  let readerId: string;

  beforeAll(async () => {
    await loadDemoCohort(node().services, { modalities: [Modality.CT], images: false });
    const factory = new Factory(node().services);
    statistician = await factory.token(Role.STATISTICIAN);
    engineer = await factory.token(Role.ENGINEER);
    admin = await factory.token(Role.ADMIN);
    const north = (await node().services.sites.findSiteByCode(factory.admin, 'NORTH'))!;
    coordinatorNorth = await factory.token(Role.COORDINATOR, { site: north });
    const model = await gqlOk(node().url, engineer, `mutation { registerExternalModel(input: { name: "facet-ref", version: "1.0.0" }) { id } }`);
    modelVersionId = model.registerExternalModel.id;
    // Predictions that follow the reference grade with noise: a good but imperfect model.
    const rows: Array<{ site: string; pseudonym: string; level: string; side: string; modality: string; feature: string; grade: number; grades: number }> =
      await node().dataSource.query(`
      SELECT s.code AS site, p.pseudonym, j.level, j.side, r.modality, r.feature, r.grade, jsonb_array_length(g.grades) AS grades
      FROM reference_grade r JOIN joint j ON j.id = r.joint_id JOIN patient p ON p.id = j.patient_id JOIN site s ON s.id = p.site_id
      JOIN grading_feature g ON g.code = r.feature WHERE NOT r.not_assessable ORDER BY 1, 2, 3, 4, 6`);
    const random = seededRandom(7);
    const csv = ['site,patient,level,side,modality,feature,p0,p1,p2,p3'];
    for (const r of rows) {
      const weights = Array.from({ length: r.grades }, (_, g) => Math.exp(-0.8 * Math.abs(g - r.grade) + random() * 2.5));
      const total = weights.reduce((a, b) => a + b, 0);
      const probabilities = weights.map((w) => (w / total).toFixed(6));
      const sum = probabilities.reduce((a, b) => a + Number(b), 0);
      probabilities[0] = (Number(probabilities[0]) + 1 - sum).toFixed(6);
      csv.push([r.site, r.pseudonym, r.level, r.side, r.modality, r.feature, ...probabilities, ...Array(4 - r.grades).fill('')].join(','));
    }
    const imported = await gqlOk(
      node().url,
      engineer,
      `mutation ($id: ID!, $csv: String!) { importPredictions(modelVersionId: $id, csv: $csv) { stored rows created rejected { source code reason } } }`,
      {
        id: modelVersionId,
        csv: csv.join('\n'),
      },
    );
    expect(imported.importPredictions).toMatchObject({ stored: true, rows: rows.length, created: rows.length });
    readerId = (await node().dataSource.query(`SELECT id FROM reader WHERE code = 'NORTH-R1'`))[0].id;
  });

  it('computes the pooled row and SITE x FEATURE groups with patient-clustered intervals named by method', async () => {
    const data = await gqlOk(node().url, statistician, METRICS, { input: { rater: { modelVersionId }, groupBy: ['SITE', 'FEATURE'] } });
    const { groups } = data.metrics;
    expect(data.metrics).toMatchObject({ threshold: 1, level: 0.95, clustered: true });
    const pooled = groups.find((g: any) => g.pooled);
    expect(pooled.cases).toBe(groups.filter((g: any) => !g.pooled).reduce((s: number, g: any) => s + g.cases, 0));
    expect(pooled.patients).toBe(15); // 5 eligible patients at each of 3 sites
    expect(pooled.joints).toBe(150); // their 10 joints each; the demo reads CT, 5 features per joint
    expect(pooled.cases).toBe(750);
    expect(groups.filter((g: any) => !g.pooled)).toHaveLength(15);
    expect(pooled.sensitivity.method).toBe('wilson-clustered');
    expect(pooled.auc.method).toBe('obuchowski');
    expect(pooled.f1.method).toBe('cluster-bootstrap-percentile(B=2000)');
    expect(pooled.auc.value).toBeGreaterThan(0.7);
    expect(pooled.auc.lower).toBeLessThan(pooled.auc.value);
    expect(pooled.roc.fpr[0]).toBe(0);
    expect(pooled.multiclass.macroF1.reason).toBe('MIXED_FEATURES');
    const osteophytes = groups.find((g: any) => g.site === 'NORTH' && g.feature === 'OSTEOPHYTES');
    expect(osteophytes.multiclass.confusion).toHaveLength(4);
    expect(osteophytes.multiclass.quadraticKappa.value).not.toBeNull();
  });

  it('gives the same intervals for the same seed, and per-case methods when clustering is off', async () => {
    const input = { rater: { modelVersionId }, groupBy: ['MODALITY'], seed: 42, bootstrapReplicates: 500 };
    const a = await gqlOk(node().url, statistician, METRICS, { input });
    const b = await gqlOk(node().url, statistician, METRICS, { input });
    expect(a).toEqual(b);
    const flat = await gqlOk(node().url, statistician, METRICS, { input: { ...input, clustered: false } });
    const pooled = flat.metrics.groups.find((g: any) => g.pooled);
    expect(pooled.auc.method).toBe('delong');
    expect(pooled.sensitivity.method).toBe('wilson');
    expect(pooled.f1.method).toBe('case-bootstrap-percentile(B=500)');
  });

  it('rates a reader against the reference, and says why a value is undefined', async () => {
    const data = await gqlOk(node().url, statistician, METRICS, { input: { rater: { readerId }, scope: { features: ['SUBCHONDRAL_CYSTS'] }, threshold: 3 } });
    const pooled = data.metrics.groups[0];
    expect(pooled.cases).toBeGreaterThan(0);
    // Cysts are graded 0-1: nothing reaches grade 3, so nothing is positive.
    expect(pooled.sensitivity).toMatchObject({ value: null, reason: 'NO_POSITIVES' });
    expect(pooled.auc).toMatchObject({ value: null, reason: 'NO_POSITIVES' });
    expect(pooled.f1).toMatchObject({ value: null, reason: 'NO_POSITIVES' });
  });

  it('answers an empty scope with no groups, not an error', async () => {
    const data = await gqlOk(node().url, statistician, METRICS, { input: { rater: { modelVersionId }, scope: { modalities: ['MR'] } } });
    expect(data.metrics.groups).toEqual([]);
  });

  it('narrows a coordinator to their own site', async () => {
    const data = await gqlOk(node().url, coordinatorNorth, METRICS, { input: { rater: { modelVersionId }, groupBy: ['SITE'] } });
    expect(data.metrics.groups.filter((g: any) => !g.pooled).map((g: any) => g.site)).toEqual(['NORTH']);
  });

  it('rejects two raters, a bad threshold, too few replicates, and a split filter without a split version', async () => {
    expect(codeOf(await gql(node().url, statistician, METRICS, { input: { rater: { modelVersionId, readerId } } }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(node().url, statistician, METRICS, { input: { rater: {} } }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(node().url, statistician, METRICS, { input: { rater: { modelVersionId }, threshold: 0 } }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(node().url, statistician, METRICS, { input: { rater: { modelVersionId }, bootstrapReplicates: 10 } }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(node().url, statistician, METRICS, { input: { rater: { modelVersionId }, scope: { splits: ['TEST'] } } }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(node().url, statistician, METRICS, { input: { rater: { modelVersionId }, groupBy: ['SPLIT'] } }))).toBe('BAD_USER_INPUT');
  });

  it('groups by split of a split version', async () => {
    const version = (await node().dataSource.query(`SELECT id FROM split_version`))[0].id;
    const data = await gqlOk(node().url, statistician, `query ($input: MetricsInput!) { metrics(input: $input) { groups { pooled split cases } } }`, {
      input: { rater: { modelVersionId }, scope: { splitVersionId: version }, groupBy: ['SPLIT'] },
    });
    expect(
      data.metrics.groups
        .filter((g: any) => !g.pooled)
        .map((g: any) => g.split)
        .sort(),
    ).toEqual(['TEST', 'TRAIN', 'VALIDATION']);
  });

  it('withholds from a statistician the split groups under 5 patients and the one differencing would give away; an admin sees all', async () => {
    const version = (await node().dataSource.query(`SELECT id FROM split_version`))[0].id;
    const query = `query ($input: MetricsInput!) { metrics(input: $input) {
      disclosure { applied minGroupPatients rocGridSteps }
      groups { pooled split suppressed suppression patients confusion { tp } auc { value } roc { thresholds } } } }`;
    const input = { rater: { modelVersionId }, scope: { splitVersionId: version }, groupBy: ['SPLIT'], bootstrapReplicates: 500 };
    const bySplit = (groups: any[]) => Object.fromEntries(groups.filter((g) => !g.pooled).map((g) => [g.split, [g.suppression, g.patients]]));
    const restricted = (await gqlOk(node().url, statistician, query, { input })).metrics;
    expect(restricted.disclosure).toEqual({ applied: true, minGroupPatients: 5, rocGridSteps: 20 });
    // 15 eligible patients: TRAIN 9, VALIDATION 3, TEST 3. TRAIN would differ from TRAIN + VALIDATION by VALIDATION's
    // 3 patients, so it is withheld too; the pooled row stays.
    expect(bySplit(restricted.groups)).toEqual({
      TRAIN: ['COMPLEMENT_TOO_SMALL', null],
      VALIDATION: ['FEWER_THAN_MIN_PATIENTS', null],
      TEST: ['FEWER_THAN_MIN_PATIENTS', null],
    });
    for (const g of restricted.groups.filter((g: any) => !g.pooled)) expect(g).toMatchObject({ confusion: null, auc: null, roc: null });
    const pooled = restricted.groups.find((g: any) => g.pooled);
    expect(pooled).toMatchObject({ suppressed: false, suppression: null, patients: 15 });
    const full = (await gqlOk(node().url, admin, query, { input })).metrics;
    expect(full.disclosure.applied).toBe(false);
    expect(bySplit(full.groups)).toEqual({ TRAIN: [null, 9], VALIDATION: [null, 3], TEST: [null, 3] });
    // The AUC is computed on every score either way; only the curve is coarser: thresholds i/20, each step >= 5 patients.
    const fullPooled = full.groups.find((g: any) => g.pooled);
    expect(pooled.auc.value).toBeCloseTo(fullPooled.auc.value, 12);
    expect(pooled.roc.thresholds.slice(1).every((t: number) => Number.isInteger(Math.round(t * 20)) && Math.abs(t * 20 - Math.round(t * 20)) < 1e-9)).toBe(
      true,
    );
    expect(fullPooled.roc.thresholds.length).toBeGreaterThan(pooled.roc.thresholds.length);
    expect(fullPooled.roc.thresholds.slice(1).some((t: number) => Math.abs(t * 20 - Math.round(t * 20)) > 1e-9)).toBe(true);
  });

  it('withholds from a statistician a scope that leaves out a small group (every split but TEST), not one that leaves out a level', async () => {
    const version = (await node().dataSource.query(`SELECT id FROM split_version`))[0].id;
    const query = `query ($input: MetricsInput!) { metrics(input: $input) { groups { pooled suppressed suppression patients } } }`;
    const input = { rater: { modelVersionId }, scope: { splitVersionId: version, splits: ['TRAIN', 'VALIDATION'] }, bootstrapReplicates: 500 };
    expect((await gqlOk(node().url, statistician, query, { input })).metrics.groups).toEqual([
      { pooled: true, suppressed: true, suppression: 'COMPLEMENT_TOO_SMALL', patients: null },
    ]);
    expect((await gqlOk(node().url, admin, query, { input })).metrics.groups).toEqual([{ pooled: true, suppressed: false, suppression: null, patients: 12 }]);
    // Leaving out a level removes cases of every patient, not a small group: released.
    const levels = { rater: { modelVersionId }, scope: { levels: ['L2_L3', 'L3_L4', 'L4_L5', 'L5_S1'] }, bootstrapReplicates: 500 };
    expect((await gqlOk(node().url, statistician, query, { input: levels })).metrics.groups).toEqual([
      { pooled: true, suppressed: false, suppression: null, patients: 15 },
    ]);
  });

  it('compares per reader and split for a statistician: each reader’s pooled row released, splits of 1 to 3 patients withheld', async () => {
    const version = (await node().dataSource.query(`SELECT id FROM split_version`))[0].id;
    const data = await gqlOk(
      node().url,
      statistician,
      `query ($input: CompareInput!) { compare(input: $input) { disclosure { applied } comparisons { readerCode pooled split suppressed suppression patients differences { metric } } } }`,
      { input: { modelVersionId, readerIds: [readerId], scope: { splitVersionId: version }, groupBy: ['SPLIT'], bootstrapReplicates: 500 } },
    );
    expect(data.compare.disclosure.applied).toBe(true);
    const [pooled, ...splits] = data.compare.comparisons;
    expect(pooled).toMatchObject({ readerCode: 'NORTH-R1', pooled: true, suppressed: false, patients: 5 });
    expect(pooled.differences).toHaveLength(5);
    expect(splits.length).toBeGreaterThan(0);
    for (const c of splits) expect(c).toMatchObject({ suppressed: true, suppression: 'FEWER_THAN_MIN_PATIENTS', patients: null, differences: [] });
  });

  it('rejects predictions that do not sum to 1, name unknown joints, or repeat; registration twice is a CONFLICT', async () => {
    const bad = await gqlOk(
      node().url,
      engineer,
      `mutation ($id: ID!, $csv: String!) { importPredictions(modelVersionId: $id, csv: $csv) { stored rejected { source code } } }`,
      {
        id: modelVersionId,
        csv: [
          'site,patient,level,side,modality,feature,p0,p1,p2,p3',
          'NORTH,NORTH-P001,L1_L2,LEFT,CT,JOINT_SPACE_NARROWING,0.5,0.6,,',
          'NORTH,NOBODY,L1_L2,LEFT,CT,JOINT_SPACE_NARROWING,0.5,0.5,,',
          'NORTH,NORTH-P001,L1_L2,LEFT,CT,OSTEOPHYTES,0.5,0.5,,', // p2, p3 missing for a 4-grade feature
          'NORTH,NORTH-P001,L1_L2,RIGHT,CT,JOINT_SPACE_NARROWING,0.5,0.5,0.0,', // a column beyond the scale
        ].join('\n'),
      },
    );
    expect(bad.importPredictions).toEqual({
      stored: false,
      rejected: [
        { source: 'line 2', code: 'INVALID_VALUE' },
        { source: 'line 3', code: 'UNKNOWN_PATIENT' },
        { source: 'line 4', code: 'INVALID_VALUE' },
        { source: 'line 5', code: 'INVALID_VALUE' },
      ],
    });
    expect(codeOf(await gql(node().url, engineer, `mutation { registerExternalModel(input: { name: "facet-ref", version: "1.0.0" }) { id } }`))).toBe(
      'CONFLICT',
    );
    expect(codeOf(await gql(node().url, statistician, `mutation { registerExternalModel(input: { name: "x", version: "1" }) { id } }`))).toBe('FORBIDDEN');
  });

  it('compares the model with each reader on the same cases: differences, paired intervals and the named tests', async () => {
    const data = await gqlOk(
      node().url,
      statistician,
      `query ($input: CompareInput!) { compare(input: $input) { comparisons { readerCode pooled cases patients differences { metric model reader difference { value lower upper method } p test } } } }`,
      { input: { modelVersionId, bootstrapReplicates: 500 } },
    );
    const comparisons = data.compare.comparisons;
    expect(comparisons.map((c: any) => c.readerCode)).toEqual(['HARBOUR-R1', 'HARBOUR-R2', 'NORTH-R1', 'NORTH-R2', 'VALLEY-R1', 'VALLEY-R2']);
    const north = comparisons.find((c: any) => c.readerCode === 'NORTH-R1');
    expect(north.patients).toBe(5);
    const byMetric = Object.fromEntries(north.differences.map((d: any) => [d.metric, d]));
    expect(Object.keys(byMetric)).toEqual(['ACCURACY', 'SENSITIVITY', 'SPECIFICITY', 'F1', 'AUC']);
    // Clustered (the default), accuracy's p comes from the paired cluster bootstrap; per case, exact McNemar.
    expect(byMetric.ACCURACY.test).toBe('paired-cluster-bootstrap-percentile(B=500)');
    expect(byMetric.AUC.test).toBe('obuchowski-paired');
    expect(byMetric.F1.test).toBe('paired-cluster-bootstrap-percentile(B=500)');
    for (const d of north.differences) {
      expect(d.difference.value).toBeCloseTo(d.model - d.reader, 12);
      expect(d.p).toBeGreaterThanOrEqual(0);
      expect(d.p).toBeLessThanOrEqual(1);
      expect(d.difference.lower).toBeLessThanOrEqual(d.difference.value);
    }
    const perCase = await gqlOk(
      node().url,
      statistician,
      `query ($input: CompareInput!) { compare(input: $input) { comparisons { readerCode cases differences { metric test p model reader } mcnemar { bothCorrect modelOnly readerOnly neither p } } } }`,
      {
        input: { modelVersionId, bootstrapReplicates: 500, clustered: false, readerIds: [readerId] },
      },
    );
    const [one] = perCase.compare.comparisons;
    const tests = Object.fromEntries(one.differences.map((d: any) => [d.metric, d.test]));
    expect(tests).toMatchObject({ ACCURACY: 'mcnemar-exact', AUC: 'delong-paired' });
    // The full paired table behind the accuracy test: it covers every case and gives both accuracies and the p.
    const table = one.mcnemar;
    const accuracy = one.differences.find((d: any) => d.metric === 'ACCURACY');
    expect(table.bothCorrect + table.modelOnly + table.readerOnly + table.neither).toBe(one.cases);
    expect(table.modelOnly + table.readerOnly).toBeGreaterThan(0);
    expect(accuracy.model).toBeCloseTo((table.bothCorrect + table.modelOnly) / one.cases, 12);
    expect(accuracy.reader).toBeCloseTo((table.bothCorrect + table.readerOnly) / one.cases, 12);
    expect(table.p).toBe(accuracy.p);
    // The reader's AUC here is the reader's AUC from metrics: the same cases, the same estimator.
    const alone = await gqlOk(node().url, statistician, METRICS, { input: { rater: { readerId } } });
    expect(byMetric.AUC.reader).toBeCloseTo(alone.metrics.groups[0].auc.value, 12);
  });

  it('reports reader agreement, adjudication rate and each reader against the reference', async () => {
    const data = await gqlOk(
      node().url,
      statistician,
      `{ agreement(scope: { features: ["OSTEOPHYTES"] }) { feature modality site readers { cases unweighted { value } linear { value } quadratic { value } percentAgreement { value } } adjudicationRate { value } readerVsReference { readerCode cases quadratic { value } } } }`,
    );
    expect(data.agreement.map((g: any) => g.site)).toEqual(['HARBOUR', 'NORTH', 'VALLEY']);
    for (const g of data.agreement) {
      expect(g.readers.cases).toBe(50); // 5 patients x 10 joints, CT
      expect(g.readers.quadratic.value).toBeGreaterThan(0.2);
      expect(g.readers.quadratic.value).toBeLessThanOrEqual(1);
      // Every demo disagreement went to adjudication, and no grade is "not assessable".
      expect(g.adjudicationRate.value).toBeCloseTo(1 - g.readers.percentAgreement.value, 12);
      expect(g.readerVsReference).toHaveLength(2);
    }
  });

  it('counts the STARD flow per site and in total', async () => {
    const version = (await node().dataSource.query(`SELECT id FROM split_version`))[0].id;
    const data = await gqlOk(
      node().url,
      statistician,
      `query ($v: ID!) { studyFlow(scope: { splitVersionId: $v }) { site enrolled excluded excludedByReason { reason patients } eligible bySplit { split patients } joints referenceCells assessable notAssessable analysed } }`,
      { v: version },
    );
    const north = data.studyFlow.find((r: any) => r.site === 'NORTH');
    expect(north).toMatchObject({ enrolled: 6, excluded: 1, eligible: 5, joints: 50, referenceCells: 250, assessable: 250, notAssessable: 0, analysed: 250 });
    expect(north.excludedByReason.find((r: any) => r.reason === 'SPONDYLOLISTHESIS').patients).toBe(1);
    expect(north.bySplit.reduce((s: number, r: any) => s + r.patients, 0)).toBe(5);
    const total = data.studyFlow[data.studyFlow.length - 1];
    expect(total).toMatchObject({ site: null, enrolled: 18, eligible: 15, analysed: 750 });
    const own = await gqlOk(node().url, coordinatorNorth, `{ studyFlow { site enrolled } }`);
    expect(own.studyFlow).toEqual([
      { site: 'NORTH', enrolled: 6 },
      { site: null, enrolled: 6 },
    ]);
  });

  it('exports the metrics as CSV and a STARD-style HTML/JSON report from the CLI', async () => {
    const run = (format: string) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [
            path.resolve(__dirname, '../../dist/server/main.js'),
            'report',
            '--url',
            node().url,
            '--token',
            statistician,
            '--model',
            modelVersionId,
            '--format',
            format,
          ],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (out += c.toString()));
        child.once('exit', (code) => resolve({ code, out }));
      });
    const csv = await run('csv');
    expect(csv.code).toBe(0);
    const lines = csv.out.trim().split('\n');
    expect(lines[0]).toBe('site,feature,modality,level,side,split,pooled,cases,patients,metric,value,lower,upper,method,reason');
    expect(lines.filter((l) => l.startsWith(',,,,,,true,')).map((l) => l.split(',')[9])).toEqual([
      'prevalence',
      'accuracy',
      'sensitivity',
      'specificity',
      'precision',
      'npv',
      'f1',
      'youden',
      'auc',
    ]);
    const html = await run('html');
    expect(html.out).toMatch(/<h2>Study flow \(STARD\)<\/h2>/);
    expect(html.out).toMatch(/patient-clustered/);
    const json = JSON.parse((await run('json')).out);
    expect(json.studyFlow[json.studyFlow.length - 1]).toMatchObject({ site: null, enrolled: 18 });
  });
});
