import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadDemoCohort, REFERENCE_MODEL_DIR, type DemoSummary } from '../../server/demo/demo-cohort';
import { readPart10 } from '../../server/dicom/reader';
import { Role } from '../../server/domain';
import { parseManifest } from '../../server/inference/manifest';
import { decodeFrame, preprocess } from '../../server/inference/pixels';
import { softmax } from '../../server/inference/session-cache';
import { Factory } from '../helpers/factories';
import { gqlOk, subscribe } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const FEATURES = ['JOINT_SPACE_NARROWING', 'OSTEOPHYTES', 'HYPERTROPHY', 'EROSION', 'SUBCHONDRAL_CYSTS'];

describe('the synthetic demo study', () => {
  const node = useTestNode();
  let summary: DemoSummary;
  let statistician: string;
  let engineer: string;

  beforeAll(async () => {
    summary = await loadDemoCohort(node().services);
    const factory = new Factory(node().services);
    statistician = await factory.token(Role.STATISTICIAN);
    engineer = await factory.token(Role.ENGINEER);
  });

  it('holds three sites of phantoms for XR, CT and MR with joint regions, and one finished inference job', async () => {
    // 3 sites x 5 eligible patients x 3 modalities x 5 levels: one slice per level holds both facet joints.
    expect(summary).toMatchObject({ sites: 3, patients: 18, instances: 225, readings: 3 * 5 * 10 * 3 * 5 * 2 });
    const [counts] = await node().dataSource.query(
      `SELECT (SELECT count(*)::int FROM joint_image) AS images, (SELECT count(DISTINCT modality)::int FROM series) AS modalities,
              (SELECT count(*)::int FROM reference_grade WHERE confirmed_at IS NULL) AS unconfirmed`,
    );
    expect(counts).toEqual({ images: 450, modalities: 3, unconfirmed: 0 });
    const job = await gqlOk(node().url, engineer, `query ($id: ID!) { job(id: $id) { status total done failed provider } }`, { id: summary.jobId });
    expect(job.job).toEqual({ status: 'SUCCEEDED', total: 450, done: 450, failed: 0, provider: 'cpu' });
    expect(summary.predictions).toBe(450 * 5);
  });

  it("stores predictions equal (1e-5) to ONNX Runtime run directly on every demo image's preprocessed tensor", async () => {
    const manifest = parseManifest(JSON.parse(readFileSync(path.join(REFERENCE_MODEL_DIR, 'manifest.json'), 'utf8')));
    const session = await ort.InferenceSession.create(readFileSync(path.join(REFERENCE_MODEL_DIR, 'model.onnx')));
    const images: Array<{ jointId: string; modality: 'XR' | 'CT' | 'MR'; frame: number; x: number; y: number; width: number; height: number; sha256: string }> =
      await node().dataSource.query(
        `SELECT ji.joint_id AS "jointId", se.modality, ji.frame, ji.roi_x AS x, ji.roi_y AS y, ji.roi_width AS width, ji.roi_height AS height, trim(i.sha256) AS sha256
       FROM joint_image ji JOIN instance i ON i.id = ji.instance_id JOIN series se ON se.id = i.series_id`,
      );
    const stored: Array<{ jointId: string; modality: string; feature: string; probabilities: number[] }> = await node().dataSource.query(
      `SELECT joint_id AS "jointId", modality, feature, probabilities FROM prediction`,
    );
    const byCell = new Map(stored.map((p) => [`${p.jointId}:${p.modality}:${p.feature}`, p.probabilities.map(Number)]));
    expect(images).toHaveLength(450);
    let worst = 0;
    for (const image of images) {
      const frame = await decodeFrame(readPart10(await node().services.objects.read(image.sha256)), image.frame);
      const tensor = new ort.Tensor('float32', preprocess(frame, image, manifest.preprocessing[image.modality]!), [1, 1, 64, 64]);
      const result = await session.run({ [manifest.input.name]: tensor });
      for (const output of manifest.outputs) {
        const expected = softmax(Array.from((result[output.name] as ort.Tensor).data as Float32Array));
        const actual = byCell.get(`${image.jointId}:${image.modality}:${output.feature}`)!;
        expected.forEach((p, g) => (worst = Math.max(worst, Math.abs(p - actual[g]))));
      }
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it('has two readers who disagree realistically (quadratic kappa 0.4-0.8 per modality), every disagreement adjudicated', async () => {
    const data = await gqlOk(
      node().url,
      statistician,
      `{ agreement(bySite: false) { modality feature readers { quadratic { value } } adjudicationRate { value } } }`,
    );
    expect(summary.adjudications).toBeGreaterThan(0);
    for (const modality of ['XR', 'CT', 'MR']) {
      const groups = data.agreement.filter((g: any) => g.modality === modality);
      const kappa = groups.reduce((s: number, g: any) => s + g.readers.quadratic.value, 0) / groups.length;
      expect(kappa).toBeGreaterThanOrEqual(0.4);
      expect(kappa).toBeLessThanOrEqual(0.8);
    }
  });

  it("rates the reference model's predictions on the demo clearly above chance for every feature", async () => {
    const data = await gqlOk(
      node().url,
      statistician,
      `query ($id: ID!) { metrics(input: { rater: { modelVersionId: $id }, groupBy: [FEATURE], bootstrapReplicates: 200 }) { groups { pooled feature cases auc { value } } } }`,
      { id: (await node().dataSource.query(`SELECT model_version_id AS id FROM inference_job`))[0].id },
    );
    for (const feature of FEATURES) {
      const group = data.metrics.groups.find((g: any) => g.feature === feature);
      expect(group.cases).toBe(450);
      expect(group.auc.value).toBeGreaterThan(0.7);
    }
  });

  it('answers a jobs subscription with the finished job only after it changes (no active job is left over)', async () => {
    const live = await subscribe<{ jobs: { id: string } }>(node().url, engineer, `subscription { jobs { id status } }`);
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(live.events).toEqual([]);
    } finally {
      await live.close();
    }
  });
});
