import { Role } from '../../server/domain';
import type { Reader } from '../../server/entities';
import { seededRandom } from '../../server/stats/bootstrap';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const METRICS = `query ($input: MetricsInput!) { metrics(input: $input) { groups {
  pooled site cases patients readers confusion { tp fp tn fn }
  accuracy { value lower upper method } sensitivity { value lower upper method } specificity { value lower upper method }
  f1 { value lower upper method } auc { value lower upper method } } } }`;
const COMPARE = `query ($input: CompareInput!) { compare(input: $input) { comparisons {
  readerId readerCode readerSlot readerRole readers pooled site cases patients
  differences { metric model reader difference { value lower upper method } p test } } } }`;

interface Cell {
  site: string;
  patient: string;
  jointId: string;
  truth: number;
  probabilities: number[];
  grades: Record<string, number>;
}

/** Sensitivity, specificity and the empirical AUC (ties one half) of grades against the truth at threshold 1, by hand. */
function byHand(pairs: Array<{ truth: number; score: number; call: number }>) {
  const pos = pairs.filter((p) => p.truth >= 1);
  const neg = pairs.filter((p) => p.truth < 1);
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p.score > n.score ? 1 : p.score === n.score ? 0.5 : 0;
  const tp = pos.filter((p) => p.call >= 1).length;
  const tn = neg.filter((p) => p.call < 1).length;
  return {
    tp,
    fn: pos.length - tp,
    tn,
    fp: neg.length - tn,
    sensitivity: tp / pos.length,
    specificity: tn / neg.length,
    auc: wins / (pos.length * neg.length),
  };
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

describe('metrics and compare for a slot pooled across sites and for all readers of a role', () => {
  const node = useTestNode();
  let statistician: string;
  let modelVersionId: string;
  const cells: Cell[] = [];
  const readers: Record<string, Reader> = {};

  beforeAll(async () => {
    const factory = new Factory(node().services);
    statistician = await factory.token(Role.STATISTICIAN);
    const engineer = await factory.token(Role.ENGINEER);
    const random = seededRandom(424242);
    const rows: string[] = ['site,patient,level,side,modality,feature,p0,p1,p2,p3'];
    for (const code of ['NORTH', 'SOUTH']) {
      const site = await factory.site(code);
      // Created in this order, the site's readers take FIRST and SECOND; each grades with a bias of their own.
      const pair = [await factory.reader(site), await factory.reader(site)];
      readers[`${code}-FIRST`] = pair[0];
      readers[`${code}-SECOND`] = pair[1];
      const bias = { [pair[0].id]: code === 'NORTH' ? 0 : 1, [pair[1].id]: code === 'NORTH' ? -1 : 0 };
      for (let p = 1; p <= 8; p++) {
        const pseudonym = `${code}-P${p}`;
        const patient = await factory.patient(site, [], pseudonym);
        // The patient's degeneration: joints of one patient resemble each other; about half the cells are positive.
        const level = random() * 3 - 1;
        for (const joint of await factory.joints(patient)) {
          const truth = Math.min(3, Math.max(0, Math.floor(level + random() * 1.5)));
          const grades = Object.fromEntries(
            pair.map((r) => [r.id, Math.min(3, Math.max(0, truth + (random() < 0.35 ? bias[r.id] + (random() < 0.5 ? -1 : 1) : 0)))]),
          );
          const weights = [0, 1, 2, 3].map((g) => Math.exp(-1.2 * Math.abs(g - truth) + random() * 1.5));
          const probabilities = weights.map((w) => Number((w / weights.reduce((a, b) => a + b, 0)).toFixed(6)));
          probabilities[0] = Number((1 - probabilities[1] - probabilities[2] - probabilities[3]).toFixed(6));
          cells.push({ site: code, patient: pseudonym, jointId: joint.id, truth, probabilities, grades });
          rows.push([code, pseudonym, joint.level, joint.side, 'CT', 'OSTEOPHYTES', ...probabilities].join(','));
        }
      }
    }
    const ds = node().dataSource;
    await ds.query(
      `INSERT INTO reading (joint_id, modality, feature, grade, reader_id) SELECT j, 'CT', 'OSTEOPHYTES', g, r FROM unnest($1::uuid[], $2::smallint[], $3::uuid[]) AS v(j, g, r)`,
      [
        cells.flatMap((c) => Object.keys(c.grades).map(() => c.jointId)),
        cells.flatMap((c) => Object.values(c.grades)),
        cells.flatMap((c) => Object.keys(c.grades)),
      ],
    );
    await ds.query(
      `INSERT INTO reference_grade (joint_id, modality, feature, grade, source, confirmed_at) SELECT j, 'CT', 'OSTEOPHYTES', g, 'CONSENSUS_PANEL', now() FROM unnest($1::uuid[], $2::smallint[]) AS v(j, g)`,
      [cells.map((c) => c.jointId), cells.map((c) => c.truth)],
    );
    modelVersionId = (await gqlOk(node().url, engineer, `mutation { registerExternalModel(input: { name: "m", version: "1" }) { id } }`)).registerExternalModel
      .id;
    const imported = await gqlOk(node().url, engineer, `mutation ($id: ID!, $csv: String!) { importPredictions(modelVersionId: $id, csv: $csv) { stored } }`, {
      id: modelVersionId,
      csv: rows.join('\n'),
    });
    expect(imported.importPredictions.stored).toBe(true);
  });

  const metrics = async (rater: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    (await gqlOk(node().url, statistician, METRICS, { input: { rater, bootstrapReplicates: 400, ...extra } })).metrics.groups;

  it('pools a slot across sites as one rater: every reading of "reader 1 of every site", the patient the cluster', async () => {
    const [pooled, ...bySite] = await metrics({ readerSlot: 'FIRST' }, { groupBy: ['SITE'] });
    const expected = byHand(
      cells.map((c) => {
        const grade = c.grades[readers[`${c.site}-FIRST`].id];
        return { truth: c.truth, score: grade, call: grade };
      }),
    );
    expect(pooled).toMatchObject({
      pooled: true,
      cases: 160,
      patients: 16,
      readers: 2,
      confusion: { tp: expected.tp, fn: expected.fn, tn: expected.tn, fp: expected.fp },
    });
    expect(pooled.sensitivity.value).toBeCloseTo(expected.sensitivity, 12);
    expect(pooled.specificity.value).toBeCloseTo(expected.specificity, 12);
    expect(pooled.auc.value).toBeCloseTo(expected.auc, 12);
    expect(pooled.sensitivity.method).toBe('wilson-clustered');
    expect(pooled.auc.method).toBe('obuchowski');
    // Within one site the slot is that site's reader: the same numbers as naming the reader.
    for (const site of bySite) {
      const [alone] = await metrics({ readerId: readers[`${site.site}-FIRST`].id });
      for (const key of ['accuracy', 'sensitivity', 'specificity', 'auc'] as const) {
        expect(site[key].method).toBe(alone[key].method);
        for (const bound of ['value', 'lower', 'upper'] as const) expect(site[key][bound]).toBeCloseTo(alone[key][bound], 12);
      }
      expect(site.readers).toBe(1);
    }
  });

  it('averages every reader of a role (MRMC): the mean of each reader’s own metrics, with a patient-cluster bootstrap interval', async () => {
    const [pooled] = await metrics({ readerRole: 'READER' });
    expect(pooled).toMatchObject({ cases: 320, patients: 16, readers: 4 });
    const alone = await Promise.all(Object.values(readers).map(async (r) => (await metrics({ readerId: r.id }))[0]));
    expect(alone.map((a) => a.readers)).toEqual([1, 1, 1, 1]);
    expect((await metrics({ modelVersionId }))[0].readers).toBe(0);
    for (const key of ['accuracy', 'sensitivity', 'specificity', 'f1', 'auc'] as const) {
      expect(pooled[key].value).toBeCloseTo(mean(alone.map((a) => a[key].value)), 12);
      expect(pooled[key].method).toBe('reader-average-cluster-bootstrap-percentile(R=4,B=400)');
      expect(pooled[key].lower).toBeLessThan(pooled[key].value);
      expect(pooled[key].upper).toBeGreaterThan(pooled[key].value);
    }
    // Not the pooled readings: with readers of unequal accuracy at unequal prevalence the two differ.
    const byReadings = byHand(cells.flatMap((c) => Object.values(c.grades).map((g) => ({ truth: c.truth, score: g, call: g }))));
    expect(Math.abs(pooled.auc.value - byReadings.auc)).toBeGreaterThan(1e-6);
    expect(await metrics({ readerRole: 'READER' })).toEqual([pooled]);
    expect(await metrics({ readerRole: 'ADJUDICATOR' })).toEqual([]);
  });

  it('compares the model with a slot pooled across sites on exactly the cases that slot read', async () => {
    const data = await gqlOk(node().url, statistician, COMPARE, { input: { modelVersionId, readerSlot: 'SECOND', bootstrapReplicates: 400 } });
    const [comparison] = data.compare.comparisons;
    expect(data.compare.comparisons).toHaveLength(1);
    expect(comparison).toMatchObject({
      readerId: null,
      readerCode: null,
      readerSlot: 'SECOND',
      readerRole: null,
      readers: 2,
      pooled: true,
      cases: 160,
      patients: 16,
    });
    const [slot] = await metrics({ readerSlot: 'SECOND' });
    const [model] = await metrics({ modelVersionId });
    const byMetric = Object.fromEntries(comparison.differences.map((d: any) => [d.metric, d]));
    for (const [metric, key] of [
      ['ACCURACY', 'accuracy'],
      ['SENSITIVITY', 'sensitivity'],
      ['SPECIFICITY', 'specificity'],
      ['F1', 'f1'],
      ['AUC', 'auc'],
    ] as const) {
      expect(byMetric[metric].reader).toBeCloseTo(slot[key].value, 12);
      expect(byMetric[metric].model).toBeCloseTo(model[key].value, 12);
    }
    expect(byMetric.AUC.test).toBe('obuchowski-paired');
  });

  it('compares the model with the reader average: per reader on that reader’s cases, then averaged', async () => {
    const data = await gqlOk(node().url, statistician, COMPARE, { input: { modelVersionId, readerRole: 'READER', bootstrapReplicates: 400 } });
    const [comparison] = data.compare.comparisons;
    expect(comparison).toMatchObject({ readerId: null, readerSlot: null, readerRole: 'READER', readers: 4, cases: 320, patients: 16 });
    const [averaged] = await metrics({ readerRole: 'READER' });
    const perSite = await metrics({ modelVersionId }, { groupBy: ['SITE'] });
    // Both readers of a site read all its cells: the model's side is the mean of its per-site metrics.
    const modelOf = (key: string) => mean(perSite.filter((g: any) => !g.pooled).map((g: any) => g[key].value));
    for (const d of comparison.differences) {
      const key = d.metric.toLowerCase() as 'accuracy';
      expect(d.reader).toBeCloseTo(averaged[key].value, 12);
      expect(d.model).toBeCloseTo(modelOf(key), 12);
      expect(d.difference.value).toBeCloseTo(d.model - d.reader, 12);
      expect(d.test).toBe('reader-average-paired-cluster-bootstrap-percentile(R=4,B=400)');
      expect(d.p).toBeGreaterThan(0);
      expect(d.difference.lower).toBeLessThanOrEqual(d.difference.value);
    }
  });

  it('names each reader’s slot when comparing readers one by one', async () => {
    const data = await gqlOk(node().url, statistician, COMPARE, { input: { modelVersionId, bootstrapReplicates: 400 } });
    expect(data.compare.comparisons.map((c: any) => `${c.readerSlot}:${c.readers}`)).toEqual(['FIRST:1', 'SECOND:1', 'FIRST:1', 'SECOND:1']);
  });

  it('takes exactly one rater, and one way of naming readers', async () => {
    expect(codeOf(await gql(node().url, statistician, METRICS, { input: { rater: { readerSlot: 'FIRST', readerRole: 'READER' } } }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(node().url, statistician, METRICS, { input: { rater: { modelVersionId, readerSlot: 'FIRST' } } }))).toBe('BAD_USER_INPUT');
    expect(
      codeOf(await gql(node().url, statistician, COMPARE, { input: { modelVersionId, readerSlot: 'FIRST', readerIds: [readers['NORTH-FIRST'].id] } })),
    ).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(node().url, statistician, COMPARE, { input: { modelVersionId, readerSlot: 'FIRST', readerRole: 'READER' } }))).toBe(
      'BAD_USER_INPUT',
    );
  });
});
