import type { Db } from '../../db/transaction';
import { ModelVersion } from '../../entities';
import { badInput } from '../../errors/app-error';
import type { ModelManifest } from '../../inference/manifest';
import type { RequestContext } from '../request-context';

/** A model version a job can run: one registered with its ONNX file and manifest (not one whose predictions were imported). */
export type OnnxModelVersion = ModelVersion & { manifest: ModelManifest; sha256: string };

/** The model version `id`, or NOT_FOUND; BAD_USER_INPUT when it has no ONNX file to run. */
export async function onnxModelVersion(db: Db, ctx: RequestContext, id: string): Promise<OnnxModelVersion> {
  const model = await db.getEntityOrThrow(ctx, ModelVersion, id);
  if (!model.sha256 || !model.manifest) throw badInput('This model version has no ONNX file (its predictions are imported)', { field: 'modelVersionId' });
  return model as OnnxModelVersion;
}
