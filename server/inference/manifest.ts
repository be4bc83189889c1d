import { Modality } from '../domain';

/** How a modality's pixels become the model's input. */
export interface Preprocessing {
  /** Window (center/width in rescaled units) applied before scaling to 0..1; null: min-max of the region. */
  window: { center: number; width: number } | null;
  /** Height and width the joint region is resized to. */
  resize: [number, number];
  /** (x - mean) / std after scaling to 0..1. */
  normalize: { mean: number; std: number };
}

export interface ModelOutput {
  /** Output name in the ONNX graph. */
  name: string;
  /** Grading feature code. */
  feature: string;
  /** Number of grades (the output's last dimension). */
  grades: number;
}

/** What a model version declares about itself (model-registry/manifest.schema.json documents it for users). */
export interface ModelManifest {
  name: string;
  version: string;
  /** shape: [batch (null), channels, height, width]. */
  input: { name: string; shape: Array<number | null> };
  activation: 'logits' | 'probabilities';
  preprocessing: Partial<Record<Modality, Preprocessing>>;
  outputs: ModelOutput[];
}

export class ManifestError extends Error {
  constructor(readonly problems: string[]) {
    super(`The manifest is not valid: ${problems.join('; ')}`);
    this.name = 'ManifestError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const positiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

/** Checks the manifest's structure; every problem is listed, with the path to it. */
export function parseManifest(value: unknown): ModelManifest {
  const problems: string[] = [];
  if (!isObject(value)) throw new ManifestError(['the manifest must be a JSON object']);
  for (const key of ['name', 'version'] as const) if (typeof value[key] !== 'string' || !value[key]) problems.push(`${key} must be a non-empty string`);
  const input = value.input;
  if (!isObject(input) || typeof input.name !== 'string' || !Array.isArray(input.shape) || input.shape.length !== 4) {
    problems.push('input must be { name, shape: [null, channels, height, width] }');
  } else if (input.shape[0] !== null || !input.shape.slice(1).every(positiveInt)) {
    problems.push('input.shape must be [null, channels, height, width] with positive integers after the batch dimension');
  }
  if (value.activation !== 'logits' && value.activation !== 'probabilities') problems.push('activation must be "logits" or "probabilities"');
  if (!isObject(value.preprocessing) || Object.keys(value.preprocessing).length === 0) {
    problems.push('preprocessing must name at least one modality (XR, CT, MR)');
  } else {
    for (const [modality, p] of Object.entries(value.preprocessing)) {
      const where = `preprocessing.${modality}`;
      if (!(modality in Modality)) problems.push(`${where}: unknown modality`);
      if (!isObject(p)) {
        problems.push(`${where} must be an object`);
        continue;
      }
      if (!(p.window === null || (isObject(p.window) && typeof p.window.center === 'number' && typeof p.window.width === 'number' && p.window.width > 0))) {
        problems.push(`${where}.window must be null or { center, width > 0 }`);
      }
      if (!Array.isArray(p.resize) || p.resize.length !== 2 || !p.resize.every(positiveInt)) problems.push(`${where}.resize must be [height, width]`);
      if (!isObject(p.normalize) || typeof p.normalize.mean !== 'number' || !(typeof p.normalize.std === 'number' && p.normalize.std > 0)) {
        problems.push(`${where}.normalize must be { mean, std > 0 }`);
      }
    }
  }
  if (!Array.isArray(value.outputs) || value.outputs.length === 0) {
    problems.push('outputs must list one output per feature');
  } else {
    value.outputs.forEach((o, i) => {
      if (!isObject(o) || typeof o.name !== 'string' || typeof o.feature !== 'string' || !positiveInt(o.grades) || (o.grades as number) < 2) {
        problems.push(`outputs[${i}] must be { name, feature, grades >= 2 }`);
      }
    });
    const features = value.outputs.filter(isObject).map((o) => o.feature);
    if (new Set(features).size !== features.length) problems.push('outputs name a feature twice');
  }
  if (problems.length) throw new ManifestError(problems);
  return value as unknown as ModelManifest;
}
