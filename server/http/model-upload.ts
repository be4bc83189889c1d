import express, { type Request, type Response, type Router } from 'express';
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../domain';
import { AppError } from '../errors/app-error';
import type { Services } from '../services';
import type { Actor } from '../services/request-context';
import { log } from './log';
import { requireBearer } from './require-bearer';
import { mediaTypeParameters, MultipartError, parseMultipartRelated } from './multipart-related';

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.BAD_USER_INPUT]: 400,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.MODEL_MANIFEST_MISMATCH]: 422,
};

const problem = (res: Response, status: number, code: string, message: string, extra: Record<string, unknown> = {}) =>
  res.status(status).json({ errors: [{ message, extensions: { code, ...extra } }] });

/**
 * `POST /api/model-versions`: multipart/form-data with a `manifest` part (JSON) and a `model` part (the ONNX
 * file), ENGINEER or ADMIN token. 201 with the version, or an error with a code (400, 409, 422 for a model that
 * does not match its manifest).
 */
export function modelUploadRouter(services: Services, maxBytes: number): Router {
  const router = express.Router();
  router.post('/model-versions', requireBearer(services), express.raw({ type: () => true, limit: maxBytes }), async (req: Request, res: Response) => {
    const requestId = randomUUID();
    try {
      const { type, params } = mediaTypeParameters(req.headers['content-type'] ?? '');
      if (type !== 'multipart/form-data') return problem(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'Send multipart/form-data with the parts "manifest" and "model"');
      const parts = parseMultipartRelated(params.boundary ?? '', Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
      const named = (name: string) => parts.find((p) => new RegExp(`name="?${name}"?(;|$)`).test(p.headers['content-disposition'] ?? ''));
      const manifestPart = named('manifest');
      const modelPart = named('model');
      if (!manifestPart || !modelPart) return problem(res, 400, 'BAD_USER_INPUT', 'The request needs a "manifest" part and a "model" part');
      let manifest: unknown;
      try {
        manifest = JSON.parse(manifestPart.body.toString('utf8'));
      } catch {
        return problem(res, 400, 'BAD_USER_INPUT', 'The manifest part is not JSON');
      }
      const version = await services.models.registerModelVersion({ requestId, actor: res.locals.actor as Actor }, modelPart.body, manifest);
      res.status(201).json({ id: version.id, name: version.name, version: version.version, sha256: version.sha256 });
    } catch (error) {
      if (error instanceof MultipartError) return problem(res, 400, 'BAD_REQUEST', error.message);
      if (error instanceof AppError) {
        const { code: _code, ...details } = error.extensions as Record<string, unknown>;
        return problem(res, STATUS[error.code] ?? 400, error.code, error.message, details);
      }
      log.error('model upload failed', { requestId, error });
      problem(res, 500, 'INTERNAL_SERVER_ERROR', `Internal server error (request ${requestId})`);
    }
  });
  return router;
}
