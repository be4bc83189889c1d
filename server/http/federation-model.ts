import express, { type Request, type Response, type Router } from 'express';
import type { Services } from '../services';
import { requestIdOf } from './problem';

/**
 * `GET /federation/models/<sha256>` at a hub: the ONNX file of a federated inference task, for a node that claimed
 * the task. No bearer token: the Authorization header holds a signed MODEL_REQUEST envelope (`Facet-Envelope
 * <base64url JSON>`), checked like every federation message (signature against `sites/`, audience, replay), and
 * the site must hold a running INFERENCE task naming that file. The node checks the bytes against the sha256 the
 * hub's signed task names before it registers them. Refusals: 401 (envelope), 403 (not its task), 404 (no file).
 */
export function federationModelRouter(services: Services): Router {
  const router = express.Router();
  router.get('/models/:sha256', async (req: Request, res: Response) => {
    const sha256 = String(req.params.sha256);
    const download = await services.federatedInference.authorizeModelDownload({ requestId: requestIdOf(res), actor: null }, req.headers.authorization, sha256);
    res.status(200).type('application/octet-stream').set('x-facet-model-sha256', download.sha256).set('cache-control', 'no-store').send(download.bytes);
  });
  return router;
}
