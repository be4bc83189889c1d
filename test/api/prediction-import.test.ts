import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Role } from '../../server/domain';
import type { Patient, Site } from '../../server/entities';
import { systemContext } from '../../server/services';
import { insertPredictions } from '../../server/services/inference-job/prediction.sql';
import { seededRandom } from '../../server/stats/bootstrap';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const ONNX = path.resolve(__dirname, '../fixtures/onnx');
const HEADER = 'site,patient,level,side,modality,feature,p0,p1,p2,p3';
const IMPORT = `mutation ($id: ID!, $csv: String!) {
  importPredictions(modelVersionId: $id, csv: $csv) { stored rows created unchanged clipped rejected { source code reason } }
}`;
const LEVELS = ['L1_L2', 'L2_L3', 'L3_L4', 'L4_L5', 'L5_S1'];

describe('importPredictions', () => {
  const node = useTestNode();
  let engineer: string;
  let north: Site;
  let south: Site;
  const northPatients: Patient[] = [];
  const southPatients: Patient[] = [];

  const externalModel = async (name = `ext-${randomBytes(4).toString('hex')}`): Promise<string> =>
    (await gqlOk(node().url, engineer, `mutation ($n: String!) { registerExternalModel(input: { name: $n, version: "1" }) { id } }`, { n: name }))
      .registerExternalModel.id;
  const importCsv = (id: string, lines: string[]) => gql(node().url, engineer, IMPORT, { id, csv: [HEADER, ...lines].join('\n') });
  const stored = async (id: string) =>
    (
      await node().dataSource.query(
        `SELECT joint_id, modality, feature, probabilities, predicted_grade FROM prediction WHERE model_version_id = $1 ORDER BY joint_id, feature`,
        [id],
      )
    ).map((r: { probabilities: number[] }) => ({ ...r, probabilities: r.probabilities.map(Number) }));
  /** A JOINT_SPACE_NARROWING (2 grades) row of `patient` at `site`. */
  const row = (site: string, patient: string, level: string, p1: number) => `${site},${patient},${level},LEFT,CT,JOINT_SPACE_NARROWING,${1 - p1},${p1},,`;

  beforeAll(async () => {
    const factory = new Factory(node().services);
    north = await factory.site('NORTH');
    south = await factory.site('SOUTH');
    for (let i = 0; i < 4; i++) northPatients.push(await factory.patient(north, [], `N-${i}`));
    for (let i = 0; i < 12; i++) southPatients.push(await factory.patient(south, [], `S-${randomBytes(3).toString('hex')}`));
    engineer = await factory.token(Role.ENGINEER);
  });

  it('is idempotent: the same file again creates nothing, writes nothing and records no second audit event', async () => {
    const id = await externalModel();
    const lines = northPatients.map((p, i) => row('NORTH', p.pseudonym, 'L4_L5', 0.1 * (i + 1)));
    const first = await importCsv(id, lines);
    expect(first.data?.importPredictions).toEqual({ stored: true, rows: 4, created: 4, unchanged: 0, clipped: 0, rejected: [] });
    const before = await stored(id);
    const again = await importCsv(id, lines);
    expect(again.data?.importPredictions).toEqual({ stored: true, rows: 4, created: 0, unchanged: 4, clipped: 0, rejected: [] });
    expect(await stored(id)).toEqual(before);
    const audits = await node().dataSource.query(`SELECT 1 FROM audit_event WHERE action = 'importPredictions' AND entity_id = $1`, [id]);
    expect(audits).toHaveLength(1);
  });

  it('adds rows for cells not yet predicted (append-only), and refuses whole a file that would change a stored prediction', async () => {
    const id = await externalModel();
    const [a, b, c] = northPatients;
    await importCsv(id, [row('NORTH', a.pseudonym, 'L1_L2', 0.3), row('NORTH', b.pseudonym, 'L1_L2', 0.4)]);
    const appended = await importCsv(id, [row('NORTH', a.pseudonym, 'L1_L2', 0.3), row('NORTH', c.pseudonym, 'L1_L2', 0.9)]);
    expect(appended.data?.importPredictions).toMatchObject({ stored: true, created: 1, unchanged: 1 });
    const before = await stored(id);
    expect(before).toHaveLength(3);
    // One row changes a stored prediction (b), one is new (a's L2_L3): nothing of the file lands.
    const changed = await importCsv(id, [row('NORTH', a.pseudonym, 'L2_L3', 0.5), row('NORTH', b.pseudonym, 'L1_L2', 0.41)]);
    expect(codeOf(changed)).toBe('PREDICTIONS_IMMUTABLE');
    expect(changed.errors?.[0].extensions).toMatchObject({ lines: [3], changed: 1 });
    expect(await stored(id)).toEqual(before);
  });

  it('refuses a predictions file for a model version with an ONNX file, whose predictions come from its jobs, and changes none of them', async () => {
    const form = new FormData();
    form.append('manifest', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.manifest.json'))]), 'manifest.json');
    form.append('model', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.onnx'))]), 'model.onnx');
    const registered = await fetch(`${node().url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form });
    const onnxId = ((await registered.json()) as { id: string }).id;
    const joint = (await node().services.patients.jointsByPatientIds(systemContext(), [northPatients[0].id]))[0];
    // What a job's batch writes (the runner's own statement).
    expect(
      await insertPredictions(node().dataSource.manager, onnxId, [
        { joint_id: joint.id, modality: 'CT' as never, feature: 'OSTEOPHYTES', p: [0.7, 0.1, 0.1, 0.1], grade: 0 },
      ]),
    ).toBe(1);
    const before = await stored(onnxId);
    const answer = await importCsv(onnxId, [`NORTH,${northPatients[0].pseudonym},${joint.level},${joint.side},CT,OSTEOPHYTES,0.1,0.1,0.1,0.7`]);
    expect(codeOf(answer)).toBe('MODEL_VERSION_NOT_EXTERNAL');
    expect(await stored(onnxId)).toEqual(before);
    // A job writes a cell once: a rerun with other values (another provider's rounding) leaves the first.
    expect(
      await insertPredictions(node().dataSource.manager, onnxId, [
        { joint_id: joint.id, modality: 'CT' as never, feature: 'OSTEOPHYTES', p: [0.1, 0.1, 0.1, 0.7], grade: 3 },
      ]),
    ).toBe(0);
    expect(await stored(onnxId)).toEqual(before);
  });

  it('never lets a job write into an external model version', async () => {
    const id = await externalModel();
    const joint = (await node().services.patients.jointsByPatientIds(systemContext(), [northPatients[1].id]))[0];
    const written = await insertPredictions(node().dataSource.manager, id, [
      { joint_id: joint.id, modality: 'CT' as never, feature: 'OSTEOPHYTES', p: [0.7, 0.1, 0.1, 0.1], grade: 0 },
    ]);
    expect(written).toBe(0);
    expect(await stored(id)).toEqual([]);
  });

  it('answers rows naming pseudonyms of another site byte for byte as rows naming invented ones (generated files)', async () => {
    const id = await externalModel();
    const random = seededRandom(99);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const invented = () => `S-${randomBytes(3).toString('hex')}`;
    for (let file = 0; file < 20; file++) {
      // The same file shape twice: valid rows of NORTH's own patients, bad-content rows, duplicates, and rows naming
      // a pseudonym that is not NORTH's (one of SOUTH's real ones, or an invented one) at NORTH or at no site.
      // Distinct real pseudonyms per file, as the invented ones are: a repeat would be a duplicate only on one side.
      const reals = [...southPatients].sort(() => random() - 0.5).map((p) => p.pseudonym);
      const shape = Array.from({ length: 4 + Math.floor(random() * 8) }, (_, i) => ({
        kind: pick(['own', 'foreign', 'foreign', 'bad-content', 'duplicate'] as const),
        level: pick(LEVELS),
        p1: Math.round(random() * 1000) / 1000,
        site: pick(['NORTH', 'NORTH', 'NOWHERE']),
        own: pick(northPatients).pseudonym,
        real: reals[i],
        fake: invented(),
      }));
      const render = (foreign: 'real' | 'fake') => {
        const lines: string[] = [];
        for (const s of shape) {
          const line =
            s.kind === 'own'
              ? row('NORTH', s.own, s.level, s.p1)
              : s.kind === 'bad-content'
                ? row(s.site, s[foreign], s.level, s.p1 + 0.5)
                : row(s.site, s[foreign], s.level, s.p1);
          lines.push(line);
          if (s.kind === 'duplicate') lines.push(line);
        }
        return lines;
      };
      const real = await importCsv(id, render('real'));
      const fake = await importCsv(id, render('fake'));
      expect(real.data?.importPredictions.stored).toBe(false);
      expect(JSON.stringify(real)).toBe(JSON.stringify(fake));
    }
    expect(await stored(id)).toEqual([]);
  });

  it('accepts rounding residue, clips and renormalises it and says how many rows; rejects real errors by line and stores nothing', async () => {
    const id = await externalModel();
    const [a, b, c, d] = northPatients;
    const residue = [
      `NORTH,${a.pseudonym},L1_L2,LEFT,CT,OSTEOPHYTES,-0.000001,0.500001,0.25,0.25`,
      `NORTH,${b.pseudonym},L1_L2,LEFT,CT,OSTEOPHYTES,0.1,0.2,0.3,0.400002`,
      `NORTH,${c.pseudonym},L1_L2,LEFT,CT,JOINT_SPACE_NARROWING,0.25,0.75,,`,
    ];
    const bad = [`NORTH,${d.pseudonym},L1_L2,LEFT,CT,OSTEOPHYTES,-0.2,0.7,0.25,0.25`, `NORTH,${d.pseudonym},L2_L3,LEFT,CT,OSTEOPHYTES,0.1,0.1,0.1,0.1`];
    const refused = await importCsv(id, [...residue, ...bad]);
    expect(refused.data?.importPredictions).toEqual({
      stored: false,
      rows: 5,
      created: 0,
      unchanged: 0,
      clipped: 2,
      rejected: [
        { source: 'line 5', code: 'INVALID_VALUE', reason: 'p0 = -0.2 lies outside [0, 1] by more than 0.0001' },
        { source: 'line 6', code: 'INVALID_VALUE', reason: 'p0..p3 sum to 0.4, not 1 within 0.0001' },
      ],
    });
    expect(await stored(id)).toEqual([]);
    const accepted = await importCsv(id, residue);
    expect(accepted.data?.importPredictions).toEqual({ stored: true, rows: 3, created: 3, unchanged: 0, clipped: 2, rejected: [] });
    for (const r of await stored(id)) {
      expect(Math.min(...r.probabilities)).toBeGreaterThanOrEqual(0);
      expect(Math.abs(r.probabilities.reduce((s: number, p: number) => s + p, 0) - 1)).toBeLessThan(1e-12);
    }
    // The repaired rows are what is stored: the same file again changes nothing.
    expect((await importCsv(id, residue)).data?.importPredictions).toMatchObject({ stored: true, created: 0, unchanged: 3, clipped: 2 });
  });
});
