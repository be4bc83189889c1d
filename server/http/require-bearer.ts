import type { NextFunction, Request, Response } from 'express';
import { bearerSecret } from '../graphql/context';
import type { Services } from '../services';

/**
 * Authenticates the bearer token before anything reads the body (an anonymous client cannot make the server
 * buffer an upload); the actor goes to `res.locals.actor`.
 */
export function requireBearer(services: Services) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const secret = bearerSecret(req.headers.authorization);
    const actor = secret ? await services.tokens.authenticate(secret).catch(() => null) : null;
    if (!actor) {
      res.status(401).json({ errors: [{ message: 'A valid bearer token is required', extensions: { code: 'UNAUTHENTICATED' } }] });
      return;
    }
    res.locals.actor = actor;
    next();
  };
}
