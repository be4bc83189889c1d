import type { NextFunction, Request, Response } from 'express';
import { ErrorCode } from '../domain';
import type { Services } from '../services';
import { sendProblem } from './problem';

/**
 * Authenticates the bearer token before anything reads the body (an anonymous client cannot make the server
 * buffer an upload); the actor goes to `res.locals.actor`. Only an unknown or revoked token is UNAUTHENTICATED:
 * a failed lookup (the database is down) goes to the error middleware, which answers 503 for an outage.
 */
export function requireBearer(services: Services) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    let actor;
    try {
      actor = await services.tokens.authenticateAuthorization(req.headers.authorization);
    } catch (error) {
      return next(error);
    }
    if (!actor) return sendProblem(res, ErrorCode.UNAUTHENTICATED, 'A valid bearer token is required');
    res.locals.actor = actor;
    next();
  };
}
