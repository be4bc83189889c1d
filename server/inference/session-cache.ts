import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import type { ModelManifest } from './manifest';
import { openSession } from './onnx-model';

/** Sessions by the sha256 of their model: loading one costs far more than a batch. */
export class SessionCache {
  private readonly sessions = new Map<string, Promise<{ session: ort.InferenceSession; provider: string }>>();

  constructor(private readonly providers: readonly string[]) {}

  /** Refuses a file whose hash is not the one the job names (the object store was tampered with or is wrong). */
  get(sha256: string, bytes: () => Promise<Buffer>): Promise<{ session: ort.InferenceSession; provider: string }> {
    let entry = this.sessions.get(sha256);
    if (!entry) {
      entry = bytes().then((b) => {
        const actual = createHash('sha256').update(b).digest('hex');
        if (actual !== sha256) throw new Error(`The stored model's sha256 is ${actual}, not ${sha256}`);
        return openSession(b, this.providers);
      });
      entry.catch(() => this.sessions.delete(sha256));
      this.sessions.set(sha256, entry);
    }
    return entry;
  }
}

/**
 * Runs one batch: `inputs` are preprocessed images of the manifest's input size; answers, per output (feature),
 * each image's probabilities (softmax of logits when the manifest says logits).
 */
export async function runBatch(session: ort.InferenceSession, manifest: ModelManifest, inputs: Float32Array[]): Promise<Map<string, number[][]>> {
  const [, channels, height, width] = manifest.input.shape as [null, number, number, number];
  const size = channels * height * width;
  const batch = new Float32Array(inputs.length * size);
  inputs.forEach((x, i) => batch.set(x, i * size));
  const result = await session.run({ [manifest.input.name]: new ort.Tensor('float32', batch, [inputs.length, channels, height, width]) });
  const out = new Map<string, number[][]>();
  for (const o of manifest.outputs) {
    const data = (result[o.name] as ort.Tensor).data as Float32Array;
    const rows: number[][] = [];
    for (let i = 0; i < inputs.length; i++) {
      const row = Array.from(data.subarray(i * o.grades, (i + 1) * o.grades));
      rows.push(manifest.activation === 'logits' ? softmax(row) : row);
    }
    out.set(o.feature, rows);
  }
  return out;
}

export function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / total);
}
