import express, { type Request, type Response, type Router } from 'express';
import { ErrorCode } from '../domain';
import type { Services } from '../services';
import type { Actor } from '../services/request-context';
import { requestIdOf, sendProblem } from './problem';
import { requireBearer } from './require-bearer';
import { mediaTypeParameters, parseMultipartRelated } from './multipart-related';

/**
 * `POST /api/model-versions`: multipart/form-data with a `manifest` part (JSON) and a `model` part (the ONNX
 * file), ENGINEER or ADMIN token. 201 with the version, or an error with a code (400, 409, 422 for a model that
 * does not match its manifest); other errors go to the app's error middleware (problem.ts).
 */
export function modelUploadRouter(services: Services, maxBytes: number): Router {
  const router = express.Router();
  router.post('/model-versions', requireBearer(services), express.raw({ type: () => true, limit: maxBytes }), async (req: Request, res: Response) => {
    const { type, params } = mediaTypeParameters(req.headers['content-type'] ?? '');
    if (type !== 'multipart/form-data')
      return sendProblem(res, ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'Send multipart/form-data with the parts "manifest" and "model"');
    const parts = parseMultipartRelated(params.boundary ?? '', Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
    const named = (name: string) => parts.find((p) => new RegExp(`name="?${name}"?(;|$)`).test(p.headers['content-disposition'] ?? ''));
    const manifestPart = named('manifest');
    const modelPart = named('model');
    if (!manifestPart || !modelPart) return sendProblem(res, ErrorCode.BAD_USER_INPUT, 'The request needs a "manifest" part and a "model" part');
    let manifest: unknown;
    try {
      manifest = JSON.parse(manifestPart.body.toString('utf8'));
    } catch {
      return sendProblem(res, ErrorCode.BAD_USER_INPUT, 'The manifest part is not JSON');
    }
    const version = await services.models.registerModelVersion({ requestId: requestIdOf(res), actor: res.locals.actor as Actor }, modelPart.body, manifest);
    res.status(201).json({ id: version.id, name: version.name, version: version.version, sha256: version.sha256 });
  });
  return router;
}
