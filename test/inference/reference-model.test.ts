import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadReferenceManifest, MODALITIES, phantomJoints } from '../../model-registry/train/make-dataset';
import { drawFacetSlice, GRADE_COUNTS, PHANTOM_FEATURES, phantomPart10, PHANTOM_UID_ROOT, prng, sampleJointGrades } from '../../server/demo/phantoms';
import { inspectImage } from '../../server/dicom/image-object';
import { readPart10 } from '../../server/dicom/reader';
import { parseManifest } from '../../server/inference/manifest';
import { decodeFrame } from '../../server/inference/pixels';
import { runBatch } from '../../server/inference/session-cache';
import { placements } from '../../server/stats/auc';

const REFERENCE = path.resolve(__dirname, '../../model-registry/reference');
/** Not one of the seeds model-registry/README.md trains, validates or tests with. */
const HELD_OUT_SEED = 20260611;

describe('synthetic facet-joint phantoms', () => {
  it('encode as Part 10 objects that ingest accepts and decode to the drawn pixels, with regions inside the image', async () => {
    const random = prng(99);
    for (const modality of MODALITIES) {
      for (let i = 0; i < 5; i++) {
        const slice = drawFacetSlice(modality, sampleJointGrades(random), sampleJointGrades(random), random);
        const uid = `${PHANTOM_UID_ROOT}.99.${modality.length}.${i + 1}`;
        const file = readPart10(
          phantomPart10({
            patientId: 'PHANTOM-1',
            patientName: 'Phantom^One',
            studyInstanceUid: uid,
            seriesInstanceUid: `${uid}.1`,
            sopInstanceUid: `${uid}.1.1`,
            seriesNumber: 1,
            instanceNumber: i + 1,
            slice,
          }),
        );
        const summary = inspectImage(file);
        expect(summary).toMatchObject({
          modality,
          rows: slice.rows,
          columns: slice.columns,
          sopInstanceUid: `${uid}.1.1`,
          studyInstanceUid: uid,
          numberOfFrames: 1,
        });
        const frame = await decodeFrame(file, 0);
        expect(frame.values[1000]).toBe(slice.pixels[1000] * slice.rescaleSlope + slice.rescaleIntercept);
        for (const roi of Object.values(slice.rois)) {
          expect(roi.x).toBeGreaterThanOrEqual(0);
          expect(roi.y).toBeGreaterThanOrEqual(0);
          expect(roi.x + roi.width).toBeLessThanOrEqual(slice.columns);
          expect(roi.y + roi.height).toBeLessThanOrEqual(slice.rows);
        }
      }
    }
  });

  it("draw grades within each feature's scale, every grade of every feature", () => {
    const random = prng(5);
    const seen = Object.fromEntries(PHANTOM_FEATURES.map((f) => [f, new Set<number>()]));
    for (let i = 0; i < 400; i++) for (const [f, g] of Object.entries(sampleJointGrades(random))) seen[f].add(g);
    for (const f of PHANTOM_FEATURES) expect([...seen[f]].sort()).toEqual([...Array(GRADE_COUNTS[f]).keys()]);
  });
});

describe('the reference model (model-registry/reference)', () => {
  it('is a valid manifest and an ONNX file under 5 MB', () => {
    const manifest = parseManifest(JSON.parse(readFileSync(path.join(REFERENCE, 'manifest.json'), 'utf8')));
    expect(manifest.outputs.map((o) => [o.feature, o.grades])).toEqual(PHANTOM_FEATURES.map((f) => [f, GRADE_COUNTS[f]]));
    expect(statSync(path.join(REFERENCE, 'model.onnx')).size).toBeLessThan(5 * 1024 * 1024);
  });

  it('grades fresh held-out phantoms, through the serving path, well above chance for every feature', async () => {
    const manifest = loadReferenceManifest();
    const joints = await phantomJoints(HELD_OUT_SEED, 60, manifest);
    const session = await ort.InferenceSession.create(path.join(REFERENCE, 'model.onnx'));
    try {
      const probabilities = await runBatch(
        session,
        manifest,
        joints.map((j) => j.input),
      );
      const aucs: Record<string, number> = {};
      for (const feature of PHANTOM_FEATURES) {
        const rows = probabilities.get(feature)!;
        // Grade >= 1 vs grade 0, scored by P(grade >= 1).
        const positives = joints.flatMap((j, i) => (j.grades[feature] >= 1 ? [1 - rows[i][0]] : []));
        const negatives = joints.flatMap((j, i) => (j.grades[feature] === 0 ? [1 - rows[i][0]] : []));
        aucs[feature] = placements(positives, negatives)!.auc;
      }
      // Listed with their values when any falls short.
      expect(Object.entries(aucs).filter(([, auc]) => !(auc > 0.75))).toEqual([]);
    } finally {
      await session.release();
    }
  });
});
