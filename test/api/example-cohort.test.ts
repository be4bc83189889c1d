import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { Role } from '../../server/domain';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { stow } from '../helpers/stow';

/**
 * docs/examples/cohort end to end through the public API, the way docs/ingest.md walks it: the files keyed by
 * hospital ID (patients, joint images, readings) and the ones keyed by pseudonym (reference standard, predictions),
 * then the statistics a study reports. Expected numbers are counted here from the example's own files.
 */
const EXAMPLE = path.resolve(__dirname, '../../docs/examples/cohort');
const read = (file: string) => readFile(path.join(EXAMPLE, file), 'utf8');
const rows = async (file: string) => parse(await read(file), { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>;

const METRICS = `query ($input: MetricsInput!) { metrics(input: $input) { disclosure { applied } groups { pooled suppressed suppression cases patients readers
  confusion { tp fp tn fn } sensitivity { value method } specificity { value method } auc { value method } } } }`;

describe('the example cohort (docs/examples/cohort) through every file', () => {
  const node = useTestNode();
  const tokens: Record<string, string> = {};
  let importId: string;

  /** Reader grades and the panel's, per CT cell, from the example's files. */
  const cells = async () => {
    const readings = await rows('readings.csv');
    const reference = await rows('reference.csv');
    const patients = await rows('patients.csv');
    const hospitalIdOf = new Map(patients.map((p) => [p.pseudonym, p.patient_id]));
    return reference
      .filter((r) => r.modality === 'CT')
      .map((r) => {
        const grade = (reader: string) =>
          Number(
            readings.find(
              (g) => g.reader === reader && g.patient_id === hospitalIdOf.get(r.patient) && g.level === r.level && g.side === r.side && g.feature === r.feature,
            )?.grade,
          );
        return { patient: r.patient, level: r.level, side: r.side, feature: r.feature, panel: Number(r.grade), r1: grade('EAST-R1'), r2: grade('EAST-R2') };
      });
  };
  const confusionOf = (pairs: Array<[number, number]>) => ({
    tp: pairs.filter(([t, g]) => t >= 1 && g >= 1).length,
    fn: pairs.filter(([t, g]) => t >= 1 && g < 1).length,
    tn: pairs.filter(([t, g]) => t < 1 && g < 1).length,
    fp: pairs.filter(([t, g]) => t < 1 && g >= 1).length,
  });

  beforeAll(async () => {
    const admin = await new Factory(node().services).token(Role.ADMIN);
    const { createSite: east } = await gqlOk(node().url, admin, `mutation { createSite(input: { code: "EAST", name: "East Hospital" }) { id } }`);
    const token = async (input: Record<string, unknown>) =>
      (await gqlOk(node().url, admin, `mutation ($input: CreateApiTokenInput!) { createApiToken(input: $input) { secret } }`, { input })).createApiToken.secret;
    tokens.coordinator = await token({ name: 'east coordinator', role: 'COORDINATOR', siteId: east.id });
    tokens.engineer = await token({ name: 'model engineer', role: 'ENGINEER' });
    tokens.statistician = await token({ name: 'study statistician', role: 'STATISTICIAN' });
    for (const [code, role, slot] of [
      ['EAST-R1', 'READER', 'FIRST'],
      ['EAST-R2', 'READER', 'SECOND'],
      ['EAST-SEN', 'SENIOR', null],
    ]) {
      const { createReader } = await gqlOk(
        node().url,
        tokens.coordinator,
        `mutation ($input: CreateReaderInput!) { createReader(input: $input) { id slot } }`,
        { input: { code, role, yearsOfExperience: 10, siteId: east.id, slot } },
      );
      expect(createReader.slot).toBe(slot);
      if (code === 'EAST-SEN') tokens.senior = await token({ name: 'east senior', role: 'READER', readerId: createReader.id });
    }
  });

  it('patients.csv, keyed by hospital ID: hashed on arrival, never stored', async () => {
    const { importPatientsManifest } = await gqlOk(
      node().url,
      tokens.coordinator,
      `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored created } }`,
      {
        csv: await read('patients.csv'),
      },
    );
    expect(importPatientsManifest).toEqual({ stored: true, created: 3 });
    const stored = JSON.stringify(await node().dataSource.query(`SELECT * FROM patient`));
    for (const p of await rows('patients.csv')) expect(stored).not.toContain(p.patient_id);
    expect(stored).toContain('EAST-P001');
  });

  it('the DICOM and joint-images.csv (hospital ID and original UIDs, hashed like the objects’)', async () => {
    const files = await Promise.all(['CT/IM0001.dcm', 'MR/IM0001.dcm'].map(async (f) => ({ bytes: await readFile(path.join(EXAMPLE, f)) })));
    expect((await stow(node().url, tokens.coordinator, files)).status).toBe(202);
    const site = (await node().dataSource.query(`SELECT id FROM site WHERE code = 'EAST'`))[0].id;
    const { importJointImagesManifest } = await gqlOk(
      node().url,
      tokens.coordinator,
      `mutation ($site: ID!, $csv: String!) { importJointImagesManifest(siteId: $site, csv: $csv) { stored created rejected { source code reason } } }`,
      { site, csv: await read('joint-images.csv') },
    );
    expect(importJointImagesManifest).toEqual({ stored: true, created: 3, rejected: [] });
  });

  it('readings.csv (hospital ID): the two readers’ grades; where they agree, the workflow’s own reference', async () => {
    const site = (await node().dataSource.query(`SELECT id FROM site WHERE code = 'EAST'`))[0].id;
    const { importReadingsManifest } = await gqlOk(
      node().url,
      tokens.coordinator,
      `mutation ($site: ID!, $csv: String!) { importReadingsManifest(siteId: $site, csv: $csv) { stored rows rejected { source code reason } } }`,
      { site, csv: await read('readings.csv') },
    );
    expect(importReadingsManifest).toEqual({ stored: true, rows: (await rows('readings.csv')).length, rejected: [] });
    const agreed = (await cells()).filter((c) => c.r1 === c.r2).length;
    expect((await node().dataSource.query(`SELECT count(*)::int AS n FROM reference_grade WHERE source = 'AGREEMENT'`))[0].n).toBe(agreed);
  });

  it('reference.csv (pseudonym): the consensus panel replaces the readers’ agreement, then the senior confirms it', async () => {
    const csv = await read('reference.csv');
    const { importReferenceStandard } = await gqlOk(
      node().url,
      tokens.coordinator,
      `mutation ($csv: String!) { importReferenceStandard(csv: $csv) { stored rows created updated rejected { source code reason } import { id sha256 importedBy } } }`,
      { csv },
    );
    const agreed = (await cells()).filter((c) => c.r1 === c.r2).length;
    const total = (await rows('reference.csv')).length;
    expect(importReferenceStandard).toMatchObject({ stored: true, rows: total, created: total - agreed, updated: agreed, rejected: [] });
    expect(importReferenceStandard.import).toMatchObject({ sha256: createHash('sha256').update(csv).digest('hex'), importedBy: 'east coordinator' });
    importId = importReferenceStandard.import.id;

    const { confirmReferenceImport } = await gqlOk(
      node().url,
      tokens.senior,
      `mutation ($id: ID!) { confirmReferenceImport(id: $id) { grades confirmedGrades confirmations { confirmedBy { code } } } }`,
      { id: importId },
    );
    expect(confirmReferenceImport).toEqual({ grades: total, confirmedGrades: total, confirmations: [{ confirmedBy: { code: 'EAST-SEN' } }] });
    const sources = await node().dataSource.query(`SELECT source::text, count(*)::int AS n FROM reference_grade GROUP BY 1 ORDER BY 1`);
    expect(sources).toEqual([
      { source: 'CONSENSUS_PANEL', n: total - 1 },
      { source: 'EXTERNAL_READ', n: 1 },
    ]);
  });

  it('predictions.csv (pseudonym): a model run elsewhere, on the de-identified images', async () => {
    const { registerExternalModel } = await gqlOk(
      node().url,
      tokens.engineer,
      `mutation { registerExternalModel(input: { name: "example-model", version: "1.0.0" }) { id } }`,
    );
    const send = async () =>
      (
        await gqlOk(
          node().url,
          tokens.engineer,
          `mutation ($id: ID!, $csv: String!) { importPredictions(modelVersionId: $id, csv: $csv) { stored rows created unchanged clipped rejected { source code reason } } }`,
          { id: registerExternalModel.id, csv: await read('predictions.csv') },
        )
      ).importPredictions;
    const n = (await rows('predictions.csv')).length;
    // docs/ingest.md's answers: the file, then the same file again (a no-op).
    expect(await send()).toEqual({ stored: true, rows: n, created: n, unchanged: 0, clipped: 0, rejected: [] });
    expect(await send()).toEqual({ stored: true, rows: n, created: 0, unchanged: n, clipped: 0, rejected: [] });
    tokens.model = registerExternalModel.id;
  });

  // Two eligible patients: the site's coordinator (who sees the patients anyway) gets the numbers; a statistician,
  // under disclosure control with its default minimum of 5 patients, gets every row withheld (the next test).
  it('answers the study’s questions: the model, reader 1, and the readers’ average against the panel', async () => {
    const metrics = async (rater: Record<string, unknown>) => {
      const answer = (await gqlOk(node().url, tokens.coordinator, METRICS, { input: { rater, bootstrapReplicates: 200 } })).metrics;
      expect(answer.disclosure.applied).toBe(false);
      return answer.groups[0];
    };
    const all = await cells();
    const predictions = await rows('predictions.csv');
    const modelGrade = (c: (typeof all)[number]) => {
      const p = predictions.find((x) => x.patient === c.patient && x.level === c.level && x.side === c.side && x.feature === c.feature) as Record<
        string,
        string
      >;
      const probabilities = ['p0', 'p1', 'p2', 'p3'].filter((k) => p[k] !== '').map((k) => Number(p[k]));
      return probabilities.indexOf(Math.max(...probabilities));
    };

    const model = await metrics({ modelVersionId: tokens.model });
    expect(model).toMatchObject({ cases: 16, patients: 2, readers: 0, confusion: confusionOf(all.map((c) => [c.panel, modelGrade(c)])) });
    expect(model.confusion).toEqual({ tp: 9, fn: 1, tn: 5, fp: 1 });
    expect(model.auc.value).toBeCloseTo(58 / 60, 12); // one positive (P(grade >= 1) = 0.40) ranks below two negatives

    const first = await metrics({ readerSlot: 'FIRST' });
    expect(first).toMatchObject({ cases: 16, readers: 1, confusion: confusionOf(all.map((c) => [c.panel, c.r1])) });
    expect(first.confusion).toEqual({ tp: 8, fn: 2, tn: 3, fp: 3 });

    const readers = await metrics({ readerRole: 'READER' });
    expect(readers).toMatchObject({ cases: 32, readers: 2 });
    expect(readers.sensitivity.value).toBeCloseTo((8 / 10 + 9 / 10) / 2, 12);
    expect(readers.specificity.value).toBeCloseTo((3 / 6 + 4 / 6) / 2, 12);
    expect(readers.sensitivity.method).toBe('reader-average-cluster-bootstrap-percentile(R=2,B=200)');

    const compare = await gqlOk(
      node().url,
      tokens.coordinator,
      `query ($input: CompareInput!) { compare(input: $input) { comparisons { readerRole readers cases differences { metric model reader } } } }`,
      { input: { modelVersionId: tokens.model, readerRole: 'READER', bootstrapReplicates: 200 } },
    );
    const sensitivity = compare.compare.comparisons[0].differences.find((d: { metric: string }) => d.metric === 'SENSITIVITY');
    expect(sensitivity.model).toBeCloseTo(9 / 10, 12);
    expect(sensitivity.reader).toBeCloseTo(0.85, 12);

    const flow = await gqlOk(node().url, tokens.coordinator, `{ studyFlow { site enrolled excluded eligible referenceCells notAssessable analysed } }`);
    expect(flow.studyFlow[0]).toEqual({ site: 'EAST', enrolled: 3, excluded: 1, eligible: 2, referenceCells: 17, notAssessable: 1, analysed: 16 });
  });

  it('withholds all of it from a statistician: two patients are fewer than the minimum group of 5', async () => {
    for (const rater of [{ modelVersionId: tokens.model }, { readerSlot: 'FIRST' }, { readerRole: 'READER' }]) {
      const answer = (await gqlOk(node().url, tokens.statistician, METRICS, { input: { rater, bootstrapReplicates: 200 } })).metrics;
      expect(answer.disclosure.applied).toBe(true);
      expect(answer.groups).toEqual([
        {
          pooled: true,
          suppressed: true,
          suppression: 'FEWER_THAN_MIN_PATIENTS',
          cases: null,
          patients: null,
          readers: null,
          confusion: null,
          sensitivity: null,
          specificity: null,
          auc: null,
        },
      ]);
    }
    const compare = await gqlOk(
      node().url,
      tokens.statistician,
      `query ($input: CompareInput!) { compare(input: $input) { comparisons { readerRole suppressed suppression readers cases differences { metric } } } }`,
      { input: { modelVersionId: tokens.model, readerRole: 'READER', bootstrapReplicates: 200 } },
    );
    expect(compare.compare.comparisons).toEqual([
      { readerRole: 'READER', suppressed: true, suppression: 'FEWER_THAN_MIN_PATIENTS', readers: null, cases: null, differences: [] },
    ]);
    const flow = await gqlOk(node().url, tokens.statistician, `{ studyFlow { site suppressed suppression enrolled analysed } }`);
    expect(flow.studyFlow[0]).toEqual({ site: 'EAST', suppressed: true, suppression: 'FEWER_THAN_MIN_PATIENTS', enrolled: null, analysed: null });
  });

  it('shows where each reference grade came from', async () => {
    const { referenceGrades } = await gqlOk(
      node().url,
      tokens.senior,
      `{ referenceGrades(filter: { modalities: [MR] }) { nodes { notAssessable source confirmedBy { code } import { id importedBy } } } }`,
    );
    expect(referenceGrades.nodes).toEqual([
      { notAssessable: true, source: 'EXTERNAL_READ', confirmedBy: { code: 'EAST-SEN' }, import: { id: importId, importedBy: 'east coordinator' } },
    ]);
  });
});
