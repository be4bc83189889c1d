import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../domain';
import { AppError } from '../errors/app-error';
import { RETRY_AFTER_SECONDS, serviceUnavailable, unavailableCause } from '../errors/database-unavailable';
import { log } from '../log';
import { MultipartError } from './multipart-related';

/** The HTTP status of each error code, for every route (GraphQL over HTTP sets it through Apollo for the same codes). */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  [ErrorCode.BAD_REQUEST]: 400,
  [ErrorCode.BAD_USER_INPUT]: 400,
  [ErrorCode.QUERY_TOO_COMPLEX]: 400,
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.READER_BLINDED]: 403,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.SPLIT_FROZEN]: 409,
  [ErrorCode.REFERENCE_LOCKED]: 409,
  [ErrorCode.READER_NOT_INDEPENDENT]: 409,
  [ErrorCode.JOB_NOT_CANCELLABLE]: 409,
  [ErrorCode.HUB_HOLDS_NO_PATIENT_DATA]: 409,
  [ErrorCode.NOT_A_HUB]: 409,
  [ErrorCode.MODEL_VERSION_NOT_EXTERNAL]: 409,
  [ErrorCode.PREDICTIONS_IMMUTABLE]: 409,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.NOT_ACCEPTABLE]: 406,
  [ErrorCode.UNSUPPORTED_MEDIA_TYPE]: 415,
  [ErrorCode.MODEL_MANIFEST_MISMATCH]: 422,
  [ErrorCode.INTERNAL_SERVER_ERROR]: 500,
  [ErrorCode.SERVICE_UNAVAILABLE]: 503,
};

/**
 * The request id of this request: always the server's own, made once per request (a client's `x-request-id` is
 * recorded beside it in the audit log, never instead of it: request-id.ts).
 */
export function requestIdOf(res: Response): string {
  if (typeof res.locals.requestId !== 'string') res.locals.requestId = randomUUID();
  return res.locals.requestId as string;
}

/**
 * Answers `{ errors: [{ message, extensions: { code, ...details } }] }`, the shape of a GraphQL error, with the
 * code's status; a 503 also says when to retry.
 */
export function sendProblem(res: Response, code: ErrorCode, message: string, details: Record<string, unknown> = {}): void {
  const status = HTTP_STATUS[code];
  if (status === 503) res.set('retry-after', String(RETRY_AFTER_SECONDS));
  res
    .status(status)
    .type('application/json')
    .send(JSON.stringify({ errors: [{ message, extensions: { ...details, code } }] }));
}

/**
 * The errors body-parser and raw-body raise while reading a body, by their `type`, with a fixed message each
 * (their own messages echo header values). A decompression failure (bad gzip, truncated deflate) has no type.
 */
const BODY_ERRORS: Record<string, [ErrorCode, string]> = {
  'entity.too.large': [ErrorCode.PAYLOAD_TOO_LARGE, 'The request body is too large'],
  'encoding.unsupported': [ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'The request body’s Content-Encoding is not supported (identity, gzip, deflate, br)'],
  'charset.unsupported': [ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'The request body’s charset is not supported'],
  'entity.parse.failed': [ErrorCode.BAD_REQUEST, 'The request body is not valid JSON'],
};

/** The code and message for an error raised while reading the request (status 4xx from http-errors), or null. */
function requestFault(error: { type?: unknown; status?: unknown }): [ErrorCode, string] | null {
  const known = typeof error.type === 'string' ? BODY_ERRORS[error.type] : undefined;
  if (known) return known;
  if (typeof error.status !== 'number' || error.status < 400 || error.status >= 500) return null;
  if (error.status === 404) return [ErrorCode.NOT_FOUND, 'Not found'];
  if (error.status === 413) return BODY_ERRORS['entity.too.large'];
  if (error.status === 415) return [ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'The request body’s media type is not supported'];
  return [ErrorCode.BAD_REQUEST, 'The request body could not be read or decoded'];
}

/**
 * The one error middleware, last on the app: every route's thrown or forwarded error becomes JSON with a code
 * from the catalogue, in any NODE_ENV (Express's own handler answers HTML with a stack outside production).
 * AppError keeps its code and details; a database outage is SERVICE_UNAVAILABLE; anything else is
 * INTERNAL_SERVER_ERROR with a request id, its cause logged under that id and never sent.
 */
export const problemHandler: ErrorRequestHandler = (error: unknown, req: Request, res: Response, next: NextFunction) => {
  // Headers already sent (a stream failed mid-answer): only Express's handler can end it, by closing the socket.
  if (res.headersSent) return next(error);
  const cause = error instanceof AppError ? null : unavailableCause(error);
  if (cause) {
    log.warn('database unavailable', { requestId: requestIdOf(res), route: req.baseUrl + req.path, cause });
    error = serviceUnavailable();
  }
  if (error instanceof AppError) {
    const { code: _code, ...details } = error.extensions as Record<string, unknown>;
    return sendProblem(res, error.code, error.message, details);
  }
  if (error instanceof MultipartError) return sendProblem(res, ErrorCode.BAD_REQUEST, error.message);
  const fault = typeof error === 'object' && error !== null ? requestFault(error as { type?: unknown; status?: unknown }) : null;
  if (fault) return sendProblem(res, fault[0], fault[1]);
  const requestId = requestIdOf(res);
  log.error('http error', { requestId, route: req.baseUrl + req.path, error });
  sendProblem(res, ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error', { requestId });
};

/** Any route nobody answered: JSON 404 with a code, not Express's HTML page. */
export const notFoundHandler: RequestHandler = (req, res) => {
  sendProblem(res, ErrorCode.NOT_FOUND, `No route ${req.method} ${req.path.slice(0, 200)}`);
};
