import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  drawFacetSlice,
  GRADE_COUNTS,
  PHANTOM_FEATURES,
  phantomPart10,
  PHANTOM_UID_ROOT,
  prng,
  sampleJointGrades,
  type FacetSlice,
  type JointGrades,
  type JointSide,
  type PhantomModality,
} from '../../server/demo/phantoms';
import { readPart10 } from '../../server/dicom/reader';
import { parseManifest, type ModelManifest } from '../../server/inference/manifest';
import { decodeFrame, preprocess } from '../../server/inference/pixels';

/**
 * Training, validation and test sets for the reference model: phantom slices (server/demo/phantoms.ts) with
 * known grades, each encoded as a DICOM file and read back through the serving path (readPart10, decodeFrame,
 * preprocess with the manifest's settings for its modality and the joint's region), so the tensors are exactly
 * what inference sees.
 *
 *   node dist/model-registry/train/make-dataset.js --out .facet-train/train --seed 1 --slices 1200
 *
 * writes <out>/images.f32 (float32 little-endian, N x 1 x H x W, two joints per slice) and <out>/labels.json.
 */

/** The nearest folder above this file with a package.json: works from model-registry/train (ts) and dist/… (js). */
function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}
export const REPO_ROOT = repoRoot();
export const REFERENCE_MANIFEST = path.join(REPO_ROOT, 'model-registry/reference/manifest.json');
export const MODALITIES: readonly PhantomModality[] = ['CT', 'MR', 'XR'];

export interface PhantomJoint {
  modality: PhantomModality;
  side: JointSide;
  grades: JointGrades;
  /** The model input: manifest.input.shape without the batch dimension. */
  input: Float32Array;
}

export const loadReferenceManifest = (): ModelManifest => parseManifest(JSON.parse(readFileSync(REFERENCE_MANIFEST, 'utf8')));

/** One stream per (seed, modality): adding slices to a set leaves the earlier ones unchanged. */
const streamSeed = (seed: number, modality: PhantomModality) => (Math.imul(seed >>> 0, 0x9e3779b1) ^ ((MODALITIES.indexOf(modality) + 1) * 0x85ebca6b)) >>> 0;

/** `slices` phantom slices per modality, each joint through the serving path; `onSlice` sees each slice. */
export async function phantomJoints(
  seed: number,
  slices: number,
  manifest: ModelManifest,
  onSlice?: (slice: FacetSlice, file: Buffer, index: number) => void,
): Promise<PhantomJoint[]> {
  const joints: PhantomJoint[] = [];
  for (const modality of MODALITIES) {
    const spec = manifest.preprocessing[modality];
    if (!spec) throw new Error(`The manifest has no preprocessing for ${modality}`);
    const random = prng(streamSeed(seed, modality));
    for (let i = 0; i < slices; i++) {
      const grades = { LEFT: sampleJointGrades(random), RIGHT: sampleJointGrades(random) };
      const slice = drawFacetSlice(modality, grades.LEFT, grades.RIGHT, random);
      const series = `${PHANTOM_UID_ROOT}.9.${seed}.${MODALITIES.indexOf(modality) + 1}`;
      const file = phantomPart10({
        patientId: `PHANTOM-${seed}-${modality}-${i + 1}`,
        patientName: `Phantom^${modality}${i + 1}`,
        studyInstanceUid: `${series}.${i + 1}`,
        seriesInstanceUid: `${series}.${i + 1}.1`,
        sopInstanceUid: `${series}.${i + 1}.1.1`,
        seriesNumber: 1,
        instanceNumber: 1,
        slice,
      });
      onSlice?.(slice, file, joints.length / 2);
      const frame = await decodeFrame(readPart10(file), 0);
      for (const side of ['LEFT', 'RIGHT'] as const) joints.push({ modality, side, grades: grades[side], input: preprocess(frame, slice.rois[side], spec) });
    }
  }
  return joints;
}

/** A slice windowed to 8 bits as a binary PGM, with the two regions outlined: to look at the phantoms. */
export function slicePgm(slice: FacetSlice): Buffer {
  const { rows, columns, pixels, window } = slice;
  const out = Buffer.alloc(rows * columns);
  const low = window.center - window.width / 2;
  for (let i = 0; i < rows * columns; i++) {
    const v = pixels[i] * slice.rescaleSlope + slice.rescaleIntercept;
    out[i] = Math.round(255 * Math.min(1, Math.max(0, (v - low) / window.width)));
  }
  for (const roi of Object.values(slice.rois)) {
    for (let x = roi.x; x < roi.x + roi.width; x++) out[roi.y * columns + x] = out[(roi.y + roi.height - 1) * columns + x] = 255;
    for (let y = roi.y; y < roi.y + roi.height; y++) out[y * columns + roi.x] = out[y * columns + roi.x + roi.width - 1] = 255;
  }
  return Buffer.concat([Buffer.from(`P5\n${columns} ${rows}\n255\n`, 'latin1'), out]);
}

function argument(args: string[], name: string, fallback?: string): string {
  const i = args.indexOf(`--${name}`);
  const value = i >= 0 ? args[i + 1] : fallback;
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
}

async function main(args: string[]): Promise<void> {
  const out = path.resolve(argument(args, 'out'));
  const seed = Number.parseInt(argument(args, 'seed'), 10);
  const slices = Number.parseInt(argument(args, 'slices', '1000'), 10);
  const previews = Number.parseInt(argument(args, 'preview', '0'), 10);
  const manifest = loadReferenceManifest();
  mkdirSync(out, { recursive: true });
  const started = Date.now();
  const joints = await phantomJoints(seed, slices, manifest, (slice, _file, index) => {
    if (index % slices < previews) writeFileSync(path.join(out, `preview-${slice.modality}-${(index % slices) + 1}.pgm`), slicePgm(slice));
  });
  const size = joints[0].input.length;
  const images = new Float32Array(joints.length * size);
  joints.forEach((j, i) => images.set(j.input, i * size));
  const bytes = Buffer.from(images.buffer, images.byteOffset, images.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) bytes.swap32();
  writeFileSync(path.join(out, 'images.f32'), bytes);
  const labels = {
    seed,
    slicesPerModality: slices,
    count: joints.length,
    inputShape: manifest.input.shape.slice(1),
    features: PHANTOM_FEATURES,
    gradeCounts: PHANTOM_FEATURES.map((f) => GRADE_COUNTS[f]),
    modality: joints.map((j) => j.modality),
    side: joints.map((j) => j.side),
    grades: joints.map((j) => PHANTOM_FEATURES.map((f) => j.grades[f])),
  };
  writeFileSync(path.join(out, 'labels.json'), JSON.stringify(labels));
  console.log(
    `${joints.length} joints (${slices} slices x ${MODALITIES.length} modalities, seed ${seed}) in ${out}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
