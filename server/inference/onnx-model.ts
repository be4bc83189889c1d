import * as ort from 'onnxruntime-node';
import type { ModelManifest } from './manifest';

/** Why a model file or its manifest was refused, in words a model engineer can act on. */
export class ModelCheckError extends Error {
  constructor(
    readonly kind: 'NOT_ONNX' | 'MANIFEST_MISMATCH',
    message: string,
  ) {
    super(message);
    this.name = 'ModelCheckError';
  }
}

/**
 * Opens an ONNX model on the first execution provider that loads (e.g. "cuda" then "cpu": a session asked for
 * an unavailable provider throws instead of falling back) and returns it with the provider that ran.
 */
export async function openSession(bytes: Uint8Array, providers: readonly string[]): Promise<{ session: ort.InferenceSession; provider: string }> {
  let last: unknown;
  for (const provider of providers) {
    try {
      return { session: await ort.InferenceSession.create(bytes, { executionProviders: [provider] }), provider };
    } catch (error) {
      last = error;
    }
  }
  throw last;
}

/**
 * Checks a model against its manifest: the file opens as ONNX, the input exists with the declared rank and
 * fixed dimensions, every declared output exists, and one dummy batch runs and gives [1, grades] finite values
 * per output.
 */
export async function checkModel(bytes: Uint8Array, manifest: ModelManifest, providers: readonly string[] = ['cpu']): Promise<{ provider: string }> {
  let opened: { session: ort.InferenceSession; provider: string };
  try {
    opened = await openSession(bytes, providers);
  } catch (error) {
    throw new ModelCheckError('NOT_ONNX', `The file does not load as an ONNX model: ${(error as Error).message.split('\n')[0].slice(0, 300)}`);
  }
  const { session } = opened;
  try {
    if (!session.inputNames.includes(manifest.input.name)) {
      throw new ModelCheckError('MANIFEST_MISMATCH', `The model has no input "${manifest.input.name}"; its inputs are ${session.inputNames.join(', ')}`);
    }
    const meta = session.inputMetadata.find((m) => m.name === manifest.input.name);
    const shape = meta && 'shape' in meta ? (meta.shape as Array<number | string>) : null;
    if (shape) {
      if (shape.length !== manifest.input.shape.length) {
        throw new ModelCheckError(
          'MANIFEST_MISMATCH',
          `Input "${manifest.input.name}" has rank ${shape.length}; the manifest says ${manifest.input.shape.length}`,
        );
      }
      shape.forEach((dim, i) => {
        const declared = manifest.input.shape[i];
        if (typeof dim === 'number' && dim > 0 && declared !== null && dim !== declared) {
          throw new ModelCheckError('MANIFEST_MISMATCH', `Input "${manifest.input.name}" dimension ${i} is ${dim}; the manifest says ${declared}`);
        }
      });
    }
    const missing = manifest.outputs.filter((o) => !session.outputNames.includes(o.name));
    if (missing.length) {
      throw new ModelCheckError(
        'MANIFEST_MISMATCH',
        `The model has no output ${missing.map((o) => `"${o.name}"`).join(', ')}; its outputs are ${session.outputNames.join(', ')}`,
      );
    }
    const dims = manifest.input.shape.map((d) => d ?? 1);
    const size = dims.reduce((a, b) => a * b, 1);
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await session.run({ [manifest.input.name]: new ort.Tensor('float32', new Float32Array(size), dims) });
    } catch (error) {
      throw new ModelCheckError(
        'MANIFEST_MISMATCH',
        `A dummy batch of shape [${dims.join(', ')}] does not run: ${(error as Error).message.split('\n')[0].slice(0, 300)}`,
      );
    }
    for (const o of manifest.outputs) {
      const tensor = result[o.name] as ort.Tensor;
      if (tensor.dims.length !== 2 || tensor.dims[0] !== 1 || tensor.dims[1] !== o.grades) {
        throw new ModelCheckError(
          'MANIFEST_MISMATCH',
          `Output "${o.name}" has shape [${tensor.dims.join(', ')}] for one image; the manifest says [1, ${o.grades}] (${o.feature})`,
        );
      }
      if (!Array.from(tensor.data as Float32Array).every(Number.isFinite)) {
        throw new ModelCheckError('MANIFEST_MISMATCH', `Output "${o.name}" is not finite on a zero image`);
      }
    }
    return { provider: opened.provider };
  } finally {
    await session.release();
  }
}
