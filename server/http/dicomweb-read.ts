import type { Request, Response, Router } from 'express';
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../domain';
import { AppError } from '../errors/app-error';
import type { Services } from '../services';
import type { QidoLevel } from '../services/dicomweb/qido-query';
import { parseFrameList, parseRenderParams } from '../services/dicomweb/retrieve-params';
import type { Actor, RequestContext } from '../services/request-context';
import { acceptedRanges, covers, negotiate, type MediaRange } from './accept';
import { requestIdOf } from './problem';
import { requireBearer } from './require-bearer';

const DICOM_JSON = ['application/dicom+json', 'application/json'] as const;
const RENDERED = ['image/jpeg', 'image/png'] as const;

const contextOf = (res: Response): RequestContext => ({ requestId: requestIdOf(res), actor: res.locals.actor as Actor });
/** The DICOMweb root as the client reached it, for Retrieve URLs and Bulk Data URIs. */
const baseUrlOf = (req: Request): string => `${req.protocol}://${req.get('host')}${req.baseUrl}`;
const notAcceptable = (what: string) => new AppError(ErrorCode.NOT_ACCEPTABLE, `Facet answers ${what}`);

/** The JSON media type the Accept header allows (DICOM JSON first), or NOT_ACCEPTABLE. */
function jsonType(req: Request): string {
  const type = negotiate(acceptedRanges(req.headers.accept), DICOM_JSON);
  if (!type) throw notAcceptable('application/dicom+json here (XML is not offered)');
  return type;
}

function sendJson(res: Response, type: string, body: unknown, warnings: string[] = []): void {
  // PS3.18 8.3.4.4 and RFC 7234 5.5: `299 <agent> "<text>"`, one header per warning; quotes and backslashes cannot appear in the text.
  if (warnings.length)
    res.set(
      'warning',
      warnings.map((w) => `299 facet "${w.replace(/["\\\r\n]/g, ' ')}"`),
    );
  res.status(200).type(type).send(JSON.stringify(body));
}

const params = (req: Request) => req.params as Record<string, string>;

/**
 * The media type stored frames travel as, by the Accept of a frames request (PS3.18 8.7.3.5), or null: any part
 * type (`*\/*`, `multipart/related` without `type`) takes them as stored; a part type they have takes them in their
 * transfer syntax or any (`transfer-syntax=*`); `application/octet-stream` with `transfer-syntax=*` (what
 * cornerstone's loader sends) or with their syntax takes compressed frames too, labelled with it. Native frames
 * are octets, which `application/octet-stream` alone takes.
 */
export function framePartType(ranges: MediaRange[], mediaType: string, transferSyntaxUid: string): string | null {
  for (const r of ranges) {
    if (r.type === '*/*') return mediaType;
    if (!covers(r.type, 'multipart/related')) continue;
    const partType = r.params.type?.toLowerCase();
    const syntax = r.params['transfer-syntax'];
    if (partType === undefined || partType === '*/*') return mediaType;
    const anySyntax = syntax === '*' || syntax === transferSyntaxUid;
    if (covers(partType, mediaType) && (anySyntax || syntax === undefined)) return mediaType;
    if (partType === 'application/octet-stream' && anySyntax) return partType;
  }
  return null;
}

/**
 * DICOMweb reads beside STOW-RS and the instance retrieve: QIDO-RS search (PS3.18 10.6) at every level,
 * WADO-RS metadata (10.4.1.1.2), rendered instances and frames (10.4.1.1.3) and frames (10.4.1.1.2), each
 * behind the bearer token; scope, audit and the DICOM rules are DicomwebService's.
 */
export function addDicomwebReadRoutes(router: Router, services: Services): void {
  const auth = requireBearer(services);
  // One route per path (not an array): the route's pattern labels its metrics (metrics.ts).
  const getEach = (paths: string[], handler: (req: Request, res: Response) => Promise<void>) => paths.forEach((p) => router.get(p, auth, handler));
  const search = (level: QidoLevel) => async (req: Request, res: Response) => {
    const type = jsonType(req);
    const { study, series } = params(req);
    const { results, warnings } = await services.dicomweb.search(
      contextOf(res),
      level,
      { study, series },
      req.query as Record<string, unknown>,
      baseUrlOf(req),
    );
    sendJson(res, type, results, warnings);
  };
  getEach(['/studies'], search('study'));
  getEach(['/series', '/studies/:study/series'], search('series'));
  getEach(['/instances', '/studies/:study/instances', '/studies/:study/series/:series/instances'], search('instance'));

  getEach(
    ['/studies/:study/metadata', '/studies/:study/series/:series/metadata', '/studies/:study/series/:series/instances/:instance/metadata'],
    async (req: Request, res: Response) => {
      const type = jsonType(req);
      const { study, series, instance } = params(req);
      sendJson(res, type, await services.dicomweb.metadata(contextOf(res), { study, series, instance }, baseUrlOf(req)));
    },
  );

  getEach(
    ['/studies/:study/series/:series/instances/:instance/rendered', '/studies/:study/series/:series/instances/:instance/frames/:frame/rendered'],
    async (req: Request, res: Response) => {
      const { study, series, instance, frame } = params(req);
      const { accept, ...rest } = req.query as Record<string, unknown>;
      const options = parseRenderParams({ ...rest, ...(accept === undefined ? {} : { accept }) });
      // The `accept` parameter stands in for the Accept header (PS3.18 8.3.3.1), for links that cannot set headers.
      const mediaType = negotiate(acceptedRanges(typeof accept === 'string' ? accept : req.headers.accept), RENDERED);
      if (!mediaType) throw notAcceptable('rendered images as image/jpeg or image/png');
      let frameNumber: number | null = null;
      if (frame !== undefined) {
        const frames = parseFrameList(frame);
        if (frames.length !== 1) throw new AppError(ErrorCode.BAD_REQUEST, 'A rendered frame is one frame number', { parameter: 'frames' });
        frameNumber = frames[0];
      }
      const image = await services.dicomweb.rendered(contextOf(res), { study, series, instance }, frameNumber, mediaType, options);
      res.status(200).type(mediaType).send(image);
    },
  );

  getEach(['/studies/:study/series/:series/instances/:instance/frames/:frames'], async (req: Request, res: Response) => {
    const { study, series, instance, frames } = params(req);
    const numbers = parseFrameList(frames);
    const ranges = acceptedRanges(req.headers.accept);
    const result = await services.dicomweb.frames(contextOf(res), { study, series, instance }, numbers, (mediaType, syntax) =>
      framePartType(ranges, mediaType, syntax),
    );
    const boundary = `facet-${randomUUID()}`;
    const head = `Content-Type: ${result.mediaType}; transfer-syntax=${result.transferSyntaxUid}\r\n\r\n`;
    const chunks = result.frames.flatMap((f) => [Buffer.from(`--${boundary}\r\n${head}`), f, Buffer.from('\r\n')]);
    res
      .status(200)
      .type(`multipart/related; type="${result.mediaType}"; boundary=${boundary}`)
      .send(Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]));
  });
}
