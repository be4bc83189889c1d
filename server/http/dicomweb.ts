import express, { type Request, type Response, type Router } from 'express';
import { randomUUID } from 'node:crypto';
import { ErrorCode, IngestRejectionCode } from '../domain';
import type { Services } from '../services';
import type { RejectedItem } from '../services/import-result';
import type { IngestResult } from '../services/ingest/ingest-result';
import type { Actor, RequestContext } from '../services/request-context';
import { requestIdOf, sendProblem } from './problem';
import { requireBearer } from './require-bearer';
import { addDicomwebReadRoutes } from './dicomweb-read';
import { mediaTypeParameters, parseMultipartRelated } from './multipart-related';

/**
 * Failure Reason (0008,1197) for each Facet code (PS3.4 Annex GG and B.2.3, PS3.18 10.5.3): C000 "cannot understand"
 * for what is not valid DICOM, A900 where the data set contradicts its SOP class, A700 "out of resources" where the
 * object exceeds this node's limits, 0122 for a SOP class Facet does not store, 0111 for a SOP Instance stored
 * with other content, and 0110 "processing failure" for Facet's own rules (modality scope, patients, batches).
 */
const FAILURE_REASON: Partial<Record<IngestRejectionCode, number>> = {
  NOT_PART10: 0xc000, // Error: cannot understand
  TRUNCATED: 0xc000,
  IMPOSSIBLE_LENGTH: 0xc000,
  MALFORMED_ELEMENT: 0xc000,
  INVALID_VALUE: 0xc000,
  UNSUPPORTED_TRANSFER_SYNTAX: 0xc122, // Referenced Transfer Syntax not supported
  UNSUPPORTED_MEDIA_TYPE: 0xc122,
  UNSUPPORTED_SOP_CLASS: 0x0122, // Referenced SOP Class not supported
  TOO_COMPLEX: 0xa700, // Refused: out of resources
  MISSING_ATTRIBUTE: 0xa900, // Data Set does not match SOP Class
  PIXEL_LENGTH_MISMATCH: 0xa900,
  STUDY_MISMATCH: 0xa900,
  UNSUPPORTED_MODALITY: 0x0110, // Processing failure: a valid image of a modality outside Facet's scope
  BURNED_IN_ANNOTATION: 0x0110,
  UNKNOWN_PATIENT: 0x0110,
  INSTANCE_CONFLICT: 0x0111, // Duplicate SOP Instance (with other content)
  CONFLICT: 0x0110,
  BATCH_REJECTED: 0x0110,
};
const PROCESSING_FAILURE = 0x0110;
/** Warning: Coercion of Data Elements (de-identification changed the object). */
const COERCION_OF_DATA_ELEMENTS = 0xb000;

const ui = (value: string | undefined) => (value ? { vr: 'UI', Value: [value] } : { vr: 'UI' });

/** The STOW-RS answer: a DICOM JSON data set with the stored and the failed instances. */
function stowResponse(result: IngestResult, baseUrl: string): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (result.accepted.length) {
    body['00081199'] = {
      vr: 'SQ',
      Value: result.accepted.map((a) => ({
        '00081150': ui(a.sopClassUid),
        '00081155': ui(a.sopInstanceUid),
        '00081190': { vr: 'UR', Value: [`${baseUrl}/dicomweb/studies/${a.studyInstanceUid}/series/${a.seriesInstanceUid}/instances/${a.sopInstanceUid}`] },
        '00081196': { vr: 'US', Value: [COERCION_OF_DATA_ELEMENTS] },
      })),
    };
  }
  if (result.rejected.length) {
    body['00081198'] = {
      vr: 'SQ',
      Value: result.rejected.map((r: RejectedItem) => ({
        '00081150': ui(r.sopClassUid),
        '00081155': ui(r.sopInstanceUid),
        '00081197': { vr: 'US', Value: [FAILURE_REASON[r.code] ?? PROCESSING_FAILURE] },
        // Error Comment: Facet's code, the part it refers to, and the reason in words, as an LO (64 characters, no backslash or control character).
        '00000902': { vr: 'LO', Value: [`${r.code} ${r.source}: ${r.reason}`.replace(/[^\x20-\x5b\x5d-\x7e]/g, '?').slice(0, 64)] },
      })),
    };
  }
  return body;
}

/**
 * DICOMweb STOW-RS: `POST /dicomweb/studies` (or `/dicomweb/studies/{StudyInstanceUID}`, then every instance
 * must belong to that study) with `multipart/related; type="application/dicom"`. A COORDINATOR token stores into
 * its own site; an ADMIN names the site with `?site=<code>` (the rule is IngestService.stowSite's). Answers 200
 * when every instance is stored unchanged, 202 when they were stored with coercion warnings (de-identification
 * always coerces), 409 when any instance failed (then none is stored: a batch lands whole or not at all). Other
 * errors (a broken body, an AppError, a database outage) go to the app's error middleware (problem.ts).
 */
export function dicomwebRouter(services: Services, maxBytes: number): Router {
  const router = express.Router();
  addDicomwebReadRoutes(router, services);
  router.get('/studies/:study/series/:series/instances/:instance', requireBearer(services), async (req: Request, res: Response) => {
    const requestId = requestIdOf(res);
    const { study, series, instance } = req.params as Record<string, string>;
    const bytes = await services.imaging.retrieveInstance({ requestId, actor: res.locals.actor as Actor }, { study, series, instance });
    // WADO-RS answers instances as multipart/related; type="application/dicom" (PS3.18 10.4).
    const boundary = `facet-${randomUUID()}`;
    res
      .status(200)
      .type(`multipart/related; type="application/dicom"; boundary=${boundary}`)
      .send(Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]));
  });

  router.post(
    ['/studies', '/studies/:study'],
    requireBearer(services),
    express.raw({ type: () => true, limit: maxBytes }),
    async (req: Request, res: Response) => {
      const requestId = requestIdOf(res);
      const actor = res.locals.actor as NonNullable<RequestContext['actor']>;
      const ctx: RequestContext = { requestId, actor };
      const siteId = await services.ingest.stowSite(ctx, typeof req.query.site === 'string' ? req.query.site : undefined);

      const { type, params } = mediaTypeParameters(req.headers['content-type'] ?? '');
      if (type !== 'multipart/related' || (params.type && params.type.toLowerCase() !== 'application/dicom')) {
        return sendProblem(res, ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'Send multipart/related; type="application/dicom"');
      }
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const parts = parseMultipartRelated(params.boundary ?? '', body);
      if (parts.length === 0) return sendProblem(res, ErrorCode.BAD_REQUEST, 'The request holds no DICOM part');
      const dicomParts = parts.map((p, i) => ({
        source: `part ${i + 1}`,
        bytes: p.body,
        contentType: mediaTypeParameters(p.headers['content-type'] ?? 'application/dicom').type,
      }));
      const study = (req.params as Record<string, string | undefined>).study;
      const wrongType = dicomParts.filter((p) => p.contentType !== 'application/dicom');
      const result = wrongType.length
        ? {
            stored: false,
            accepted: [],
            rejected: dicomParts.map((p) => ({
              source: p.source,
              code: wrongType.includes(p) ? IngestRejectionCode.UNSUPPORTED_MEDIA_TYPE : IngestRejectionCode.BATCH_REJECTED,
              reason: wrongType.includes(p) ? `Part type ${p.contentType} is not application/dicom` : 'Not stored: another part of this batch was rejected',
            })),
          }
        : await services.ingest.ingestDicom(ctx, siteId, dicomParts, study);
      const status = result.stored ? (result.accepted.length ? 202 : 200) : 409;
      res
        .status(status)
        .type('application/dicom+json')
        .send(JSON.stringify(stowResponse(result, `${req.protocol}://${req.get('host')}`)));
    },
  );
  return router;
}
