import { ReaderRole, Role } from '../../server/domain';
import type { Reader, Site } from '../../server/entities';
import { seededRandom } from '../../server/stats/bootstrap';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

/**
 * Disclosure control (minimum 5 patients) of the slot and role raters: a generated study of three sites, NORTH and
 * SOUTH of 8 patients and EAST of 6, each site's FIRST and SECOND reader grading every cell of the site, a model
 * predicting every cell, and a split version with 3 TEST patients per site (the rest TRAIN).
 */
const METRICS = `query ($input: MetricsInput!) { metrics(input: $input) {
  disclosure { applied }
  groups { pooled site split suppressed suppression readers cases patients joints confusion { tp fp tn fn }
    sensitivity { value } auc { value } roc { fpr tpr thresholds } } } }`;
const COMPARE = `query ($input: CompareInput!) { compare(input: $input) { comparisons {
  readerCode readerSlot readerRole readers pooled site split suppressed suppression cases patients
  differences { metric model reader difference { value } } } } }`;
const AGREEMENT = `{ agreement(bySite: true) { site suppressed readers { cases } readerVsReference { readerCode slot suppressed suppression cases } } }`;

const SITES = { NORTH: 8, SOUTH: 8, EAST: 6 } as const;

describe('disclosure control of slot and role raters', () => {
  const node = useTestNode({ disclosure: { minGroupPatients: 5 } });
  let statistician: string;
  let admin: string;
  let modelVersionId: string;
  let splitVersionId: string;
  const readers: Record<string, Reader> = {};
  const sites: Record<string, Site> = {};
  /** The cells of each site: joint id and patient. */
  const cells: Array<{ site: string; patient: number; jointId: string; truth: number }> = [];

  beforeAll(async () => {
    const factory = new Factory(node().services);
    statistician = await factory.token(Role.STATISTICIAN);
    admin = await factory.token(Role.ADMIN);
    const engineer = await factory.token(Role.ENGINEER);
    const random = seededRandom(515);
    const ds = node().dataSource;
    splitVersionId = (
      await ds.query(`INSERT INTO split_version (name, seed, ratios, frozen_at) VALUES ('by hand', 1, '{"TRAIN":0.6,"TEST":0.4}', now()) RETURNING id`)
    )[0].id;
    const readings: Array<[string, number, string]> = [];
    const csv = ['site,patient,level,side,modality,feature,p0,p1,p2,p3'];
    for (const [code, patients] of Object.entries(SITES)) {
      const site = (sites[code] = await factory.site(code));
      for (const slot of ['R1', 'R2']) {
        readers[`${code}-${slot}`] = await node().services.readers.createReader(factory.admin, {
          code: `${code}-${slot}`,
          role: ReaderRole.READER,
          yearsOfExperience: 5,
          siteId: site.id,
        });
      }
      for (let p = 0; p < patients; p++) {
        const patient = await factory.patient(site, [], `${code}-P${p}`);
        await ds.query(`INSERT INTO split_assignment (split_version_id, patient_id, split) VALUES ($1, $2, $3)`, [
          splitVersionId,
          patient.id,
          p < 3 ? 'TEST' : 'TRAIN',
        ]);
        const tendency = random() * 3 - 1;
        for (const joint of await factory.joints(patient)) {
          const truth = Math.min(3, Math.max(0, Math.floor(tendency + random() * 1.5)));
          cells.push({ site: code, patient: p, jointId: joint.id, truth });
          for (const slot of ['R1', 'R2']) {
            const grade = Math.min(3, Math.max(0, truth + (random() < 0.3 ? (random() < 0.5 ? -1 : 1) : 0)));
            readings.push([joint.id, grade, readers[`${code}-${slot}`].id]);
          }
          const weights = [0, 1, 2, 3].map((g) => Math.exp(-1.2 * Math.abs(g - truth) + random() * 1.5));
          const probabilities = weights.map((w) => Number((w / weights.reduce((a, b) => a + b, 0)).toFixed(6)));
          probabilities[0] = Number((1 - probabilities[1] - probabilities[2] - probabilities[3]).toFixed(6));
          csv.push([code, `${code}-P${p}`, joint.level, joint.side, 'CT', 'OSTEOPHYTES', ...probabilities].join(','));
        }
      }
    }
    await ds.query(
      `INSERT INTO reading (joint_id, modality, feature, grade, reader_id) SELECT j, 'CT', 'OSTEOPHYTES', g, r FROM unnest($1::uuid[], $2::smallint[], $3::uuid[]) AS v(j, g, r)`,
      [readings.map((r) => r[0]), readings.map((r) => r[1]), readings.map((r) => r[2])],
    );
    await ds.query(
      `INSERT INTO reference_grade (joint_id, modality, feature, grade, source, confirmed_at) SELECT j, 'CT', 'OSTEOPHYTES', g, 'CONSENSUS_PANEL', now() FROM unnest($1::uuid[], $2::smallint[]) AS v(j, g)`,
      [cells.map((c) => c.jointId), cells.map((c) => c.truth)],
    );
    modelVersionId = (await gqlOk(node().url, engineer, `mutation { registerExternalModel(input: { name: "m", version: "1" }) { id } }`)).registerExternalModel
      .id;
    const imported = await gqlOk(node().url, engineer, `mutation ($id: ID!, $csv: String!) { importPredictions(modelVersionId: $id, csv: $csv) { stored } }`, {
      id: modelVersionId,
      csv: csv.join('\n'),
    });
    expect(imported.importPredictions.stored).toBe(true);
  });

  const metrics = async (token: string, input: Record<string, unknown>) =>
    (await gqlOk(node().url, token, METRICS, { input: { bootstrapReplicates: 200, ...input } })).metrics;
  const compare = async (token: string, input: Record<string, unknown>) =>
    (await gqlOk(node().url, token, COMPARE, { input: { modelVersionId, bootstrapReplicates: 200, ...input } })).compare.comparisons;
  const withheld = (suppression: string) => ({
    suppressed: true,
    suppression,
    readers: null,
    cases: null,
    patients: null,
    joints: null,
    confusion: null,
    sensitivity: null,
    auc: null,
    roc: null,
  });

  it('withholds a statistician’s small groups of the reader average grouped by site and split, and their neighbours, reader count included', async () => {
    const input = { rater: { readerRole: 'READER' }, scope: { splitVersionId }, groupBy: ['SITE', 'SPLIT'] };
    const restricted = await metrics(statistician, input);
    expect(restricted.disclosure.applied).toBe(true);
    const [pooled, ...groups] = restricted.groups;
    expect(pooled).toMatchObject({ pooled: true, suppressed: false, suppression: null, readers: 6, patients: 22, cases: 440 });
    // TEST holds 3 patients of each site and EAST's TRAIN 3: too few. NORTH's and SOUTH's TRAIN (5 patients) would
    // differ from the site's row by its 3 TEST patients.
    expect(groups.map((g: any) => [g.site, g.split, g.suppression])).toEqual([
      ['EAST', 'TEST', 'FEWER_THAN_MIN_PATIENTS'],
      ['EAST', 'TRAIN', 'FEWER_THAN_MIN_PATIENTS'],
      ['NORTH', 'TEST', 'FEWER_THAN_MIN_PATIENTS'],
      ['NORTH', 'TRAIN', 'COMPLEMENT_TOO_SMALL'],
      ['SOUTH', 'TEST', 'FEWER_THAN_MIN_PATIENTS'],
      ['SOUTH', 'TRAIN', 'COMPLEMENT_TOO_SMALL'],
    ]);
    for (const g of groups) expect(g).toMatchObject(withheld(g.suppression));

    // An admin sees every group, two readers each; the pooled estimates are the same for both.
    const full = await metrics(admin, input);
    expect(full.groups.map((g: any) => [g.suppressed, g.readers])).toEqual([[false, 6], ...Array(6).fill([false, 2])]);
    const fullPooled = full.groups[0];
    expect(pooled.auc.value).toBeCloseTo(fullPooled.auc.value, 12);
    expect(pooled.confusion).toEqual(fullPooled.confusion);
    // The averaged ROC curve keeps only grade thresholds, each point the admin's at that threshold.
    expect(pooled.roc.thresholds[0]).toBeNull();
    for (let i = 1; i < pooled.roc.thresholds.length; i++) {
      const at = fullPooled.roc.thresholds.indexOf(pooled.roc.thresholds[i]);
      expect(at).toBeGreaterThan(0);
      expect([pooled.roc.fpr[i], pooled.roc.tpr[i]]).toEqual([fullPooled.roc.fpr[at], fullPooled.roc.tpr[at]]);
    }
    expect(pooled.roc.thresholds.at(-1)).toBe(0);
  });

  it('pools a slot for a statistician by site (one reader each, as that reader’s own row) and withholds split rows whose sites hold 3 patients each', async () => {
    const bySite = await metrics(statistician, { rater: { readerSlot: 'FIRST' }, groupBy: ['SITE'] });
    expect(bySite.groups.map((g: any) => [g.site, g.suppressed, g.readers, g.patients])).toEqual([
      [null, false, 3, 22],
      ['EAST', false, 1, 6],
      ['NORTH', false, 1, 8],
      ['SOUTH', false, 1, 8],
    ]);
    for (const g of bySite.groups.slice(1)) {
      const [own] = (await metrics(statistician, { rater: { readerId: readers[`${g.site}-R1`].id } })).groups;
      expect(own).toMatchObject({ suppressed: false, readers: 1, confusion: g.confusion, patients: g.patients });
      expect(own.auc.value).toBeCloseTo(g.auc.value, 12);
    }
    // TEST: 9 patients, 3 from each site's FIRST reader; TRAIN: EAST's reader holds 3. Each would be the sum of
    // readers' shares of fewer than 5 patients.
    const bySplit = await metrics(statistician, { rater: { readerSlot: 'FIRST' }, scope: { splitVersionId }, groupBy: ['SPLIT'] });
    expect(bySplit.groups[0]).toMatchObject({ pooled: true, suppressed: false, readers: 3, patients: 22 });
    expect(bySplit.groups.slice(1).map((g: any) => [g.split, g.suppression])).toEqual([
      ['TEST', 'READER_SHARE_WITHHELD'],
      ['TRAIN', 'READER_SHARE_WITHHELD'],
    ]);
    for (const g of bySplit.groups.slice(1)) expect(g).toMatchObject(withheld('READER_SHARE_WITHHELD'));
  });

  it('compares the model with a slot for a statistician: per site one reader’s comparison, the split rows withheld with no numbers', async () => {
    const bySite = await compare(statistician, { readerSlot: 'SECOND', groupBy: ['SITE'] });
    expect(bySite.map((c: any) => [c.site, c.readerSlot, c.readerCode, c.suppressed, c.readers, c.patients])).toEqual([
      [null, 'SECOND', null, false, 3, 22],
      ['EAST', 'SECOND', null, false, 1, 6],
      ['NORTH', 'SECOND', null, false, 1, 8],
      ['SOUTH', 'SECOND', null, false, 1, 8],
    ]);
    const perReader = await compare(statistician, {});
    for (const c of bySite.slice(1)) {
      const own = perReader.find((r: any) => r.readerCode === `${c.site}-R2`);
      expect(own).toMatchObject({ suppressed: false, readerSlot: 'SECOND', readers: 1, cases: c.cases });
      for (const [i, d] of c.differences.entries()) expect(d.difference.value).toBeCloseTo(own.differences[i].difference.value, 12);
    }
    const bySplit = await compare(statistician, { readerSlot: 'SECOND', scope: { splitVersionId }, groupBy: ['SPLIT'] });
    expect(bySplit.slice(1)).toEqual(
      ['TEST', 'TRAIN'].map((split) => ({
        readerCode: null,
        readerSlot: 'SECOND',
        readerRole: null,
        readers: null,
        pooled: false,
        site: null,
        split,
        suppressed: true,
        suppression: 'READER_SHARE_WITHHELD',
        cases: null,
        patients: null,
        differences: [],
      })),
    );
    // An admin gets them.
    const full = await compare(admin, { readerSlot: 'SECOND', scope: { splitVersionId }, groupBy: ['SPLIT'] });
    expect(full.map((c: any) => [c.split, c.suppressed, c.readers, c.patients])).toEqual([
      [null, false, 3, 22],
      ['TEST', false, 3, 9],
      ['TRAIN', false, 3, 13],
    ]);
  });

  it('withholds the reader average while one of its readers graded fewer than 5 patients, which the other readers’ rows would give away', async () => {
    // A third NORTH reader (no slot) grades the cells of two patients: cells the slots already cover, so the
    // readers' union of cells, and with it the rule over that union, does not change.
    const extra = await node().services.readers.createReader(new Factory(node().services).admin, {
      code: 'NORTH-X',
      role: ReaderRole.READER,
      yearsOfExperience: 2,
      siteId: sites.NORTH.id,
    });
    expect(extra.slot).toBeNull();
    const graded = cells.filter((c) => c.site === 'NORTH' && c.patient < 2);
    await node().dataSource.query(
      `INSERT INTO reading (joint_id, modality, feature, grade, reader_id) SELECT j, 'CT', 'OSTEOPHYTES', g, $3 FROM unnest($1::uuid[], $2::smallint[]) AS v(j, g)`,
      [graded.map((c) => c.jointId), graded.map((c) => Math.min(3, c.truth + 1)), extra.id],
    );
    try {
      const role = await metrics(statistician, { rater: { readerRole: 'READER' } });
      expect(role.groups).toEqual([{ pooled: true, site: null, split: null, ...withheld('READER_SHARE_WITHHELD') }]);
      // Why: the six slot readers' own rows are released to the statistician, the new reader's is not, and the
      // role's confusion table is the sum of its readers' (the admin's answer is what the statistician would get).
      const own = await Promise.all(Object.values(readers).map(async (r) => (await metrics(statistician, { rater: { readerId: r.id } })).groups[0]));
      expect(own.map((g) => g.suppressed)).toEqual(Array(6).fill(false));
      expect((await metrics(statistician, { rater: { readerId: extra.id } })).groups[0]).toMatchObject(withheld('FEWER_THAN_MIN_PATIENTS'));
      const [asAdmin] = (await metrics(admin, { rater: { readerRole: 'READER' } })).groups;
      expect(asAdmin).toMatchObject({ suppressed: false, readers: 7 });
      const [extraAsAdmin] = (await metrics(admin, { rater: { readerId: extra.id } })).groups;
      const minus = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - b[k]]));
      expect(own.reduce((left, g) => minus(left, g.confusion), asAdmin.confusion)).toEqual(extraAsAdmin.confusion);

      expect(await compare(statistician, { readerRole: 'READER' })).toEqual([
        {
          readerCode: null,
          readerSlot: null,
          readerRole: 'READER',
          readers: null,
          pooled: true,
          site: null,
          split: null,
          suppressed: true,
          suppression: 'READER_SHARE_WITHHELD',
          cases: null,
          patients: null,
          differences: [],
        },
      ]);
      // The slots do not hold the new reader: still released.
      expect((await metrics(statistician, { rater: { readerSlot: 'FIRST' } })).groups[0]).toMatchObject({ suppressed: false, readers: 3 });
      // Agreement: the new reader's entry is withheld and keeps its (absent) slot beside the slot readers' entries.
      const agreement = (await gqlOk(node().url, statistician, AGREEMENT)).agreement;
      const north = agreement.find((g: any) => g.site === 'NORTH');
      expect(north.readerVsReference.map((r: any) => [r.readerCode, r.slot, r.suppression])).toEqual([
        ['NORTH-R1', 'FIRST', null],
        ['NORTH-R2', 'SECOND', null],
        ['NORTH-X', null, 'FEWER_THAN_MIN_PATIENTS'],
      ]);
    } finally {
      await node().dataSource.query(`DELETE FROM reading WHERE reader_id = $1`, [extra.id]);
    }
  });
});
