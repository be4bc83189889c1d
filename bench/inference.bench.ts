/**
 * Inference throughput: joint images per second of a full job over the demo study (450 XR/CT/MR phantom joint
 * images, the reference model, CPU) at batch sizes 1, 16 and 64: the worker's whole path (read each stored
 * object, decode, preprocess, session.run, write predictions and counters in one transaction per batch),
 * printed as a ratio to a bare session.run loop over the same already-preprocessed tensors in this process
 * (the platform's overhead over ONNX Runtime alone).
 *
 *   npm run bench:inference        # needs PostgreSQL at TEST_DATABASE_URL (default 127.0.0.1:5432)
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadDemoCohort, REFERENCE_MODEL_DIR } from '../server/demo/demo-cohort';
import { readPart10 } from '../server/dicom/reader';
import { parseManifest } from '../server/inference/manifest';
import { decodeFrame, preprocess } from '../server/inference/pixels';
import { systemContext } from '../server/services';
import { workItems } from '../server/services/inference-job/work-items';
import { withBenchNode } from './bench-node';

const BATCH_SIZES = [1, 16, 64];

async function main(): Promise<void> {
  await withBenchNode({}, async (node) => {
    const loaded = await loadDemoCohort(node.services);
    const ctx = systemContext('bench');
    const [{ id: modelId }] = await node.dataSource.query(`SELECT id FROM model_version WHERE sha256 IS NOT NULL`);
    const manifest = parseManifest(JSON.parse(readFileSync(path.join(REFERENCE_MODEL_DIR, 'manifest.json'), 'utf8')));
    const [, channels, height, width] = manifest.input.shape as [null, number, number, number];

    // The job's own images, preprocessed once, for the bare loop.
    const items = await workItems(node.services.db, ctx, { siteIds: [], modalities: [] }, manifest);
    const tensors: Float32Array[] = [];
    for (const item of items) {
      const frame = await decodeFrame(readPart10(await node.services.objects.read(item.sha256)), item.frame);
      tensors.push(preprocess(frame, item.region, manifest.preprocessing[item.modality]!));
    }
    const session = await ort.InferenceSession.create(readFileSync(path.join(REFERENCE_MODEL_DIR, 'model.onnx')), { executionProviders: ['cpu'] });

    console.log(
      `Inference over the demo study: ${items.length} joint images (${loaded.instances} DICOM phantoms), ${manifest.name} ${manifest.version}, CPU, ${os.cpus().length} cores`,
    );
    console.log('  batch   bare session.run   full job            job / bare');
    for (const size of BATCH_SIZES) {
      const batches: ort.Tensor[] = [];
      for (let i = 0; i < tensors.length; i += size) {
        const slice = tensors.slice(i, i + size);
        const data = new Float32Array(slice.length * channels * height * width);
        slice.forEach((t, k) => data.set(t, k * t.length));
        batches.push(new ort.Tensor('float32', data, [slice.length, channels, height, width]));
      }
      const bareLoop = async () => {
        const started = performance.now();
        for (const batch of batches) await session.run({ [manifest.input.name]: batch });
        return (performance.now() - started) / 1000;
      };
      await bareLoop(); // warm-up
      const bare = await bareLoop();

      const services = node.servicesWith({ inferenceBatchSize: size, jobSliceSeconds: 3600 });
      const fullJob = async () => {
        await node.dataSource.query('DELETE FROM prediction');
        const job = await node.services.inference.startInferenceJob(ctx, { modelVersionId: modelId });
        const started = performance.now();
        const outcome = await services.inferenceRunner.runSlice(systemContext('bench worker'), job.id);
        const seconds = (performance.now() - started) / 1000;
        const done = await services.inference.getJob(ctx, job.id);
        if (outcome !== 'done' || done.done !== items.length) throw new Error(`job ended ${outcome} with ${done.done}/${items.length} done`);
        return seconds;
      };
      await fullJob(); // warm-up: opens this worker's session
      const job = await fullJob();
      const rate = (s: number) => `${(items.length / s).toFixed(0).padStart(6)} images/s`;
      console.log(`  ${String(size).padStart(5)}   ${rate(bare)}      ${rate(job)}   ${(job / bare).toFixed(1).padStart(8)}x`);
    }
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
