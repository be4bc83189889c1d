import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { ErrorCode } from '../domain';
import type { Actor, Services } from '../services';
import { sendProblem } from './problem';

/** Where the gate leaves the caller for the GraphQL context: `res.locals[AUTHENTICATED_ACTOR]`. */
const AUTHENTICATED_ACTOR = 'graphqlActor';

/** The actor the gate found (null: anonymous); undefined where the gate did not run, and the context looks it up. */
export function authenticatedActor(res: Response): Actor | null | undefined {
  return res.locals[AUTHENTICATED_ACTOR] as Actor | null | undefined;
}

/**
 * /graphql (POST, and GET, which has no body), before anything reads the body: looks the bearer token up, then reads the JSON body with the
 * limit the caller has earned. A request without a valid token (none, unknown, revoked or expired) is anonymous:
 * it may still run what anonymous callers may (`__typename`, introspection) and gets UNAUTHENTICATED from
 * everything else, but its body is cut at `anonymousLimit` bytes (413), so an anonymous client cannot make the
 * server read, JSON-parse and GraphQL-parse megabytes. Authenticated requests get `limit`.
 */
export function graphqlAuthGate(services: Services, limits: { limit: number; anonymousLimit: number }): RequestHandler[] {
  const authenticatedBody = express.json({ limit: limits.limit });
  const anonymousBody = express.json({ limit: limits.anonymousLimit });
  return [
    async (req: Request, res: Response, next: NextFunction) => {
      try {
        const actor = await services.tokens.authenticateAuthorization(req.headers.authorization);
        res.locals[AUTHENTICATED_ACTOR] = actor;
        // Announced too large: answered from the headers alone and the connection closed, so not one byte of the
        // body is read (express.json would read the whole body to discard it before answering).
        if (!actor && Number(req.headers['content-length']) > limits.anonymousLimit) {
          res.set('connection', 'close');
          sendProblem(res, ErrorCode.PAYLOAD_TOO_LARGE, 'The request body is too large for a request without a valid token');
          return;
        }
        next();
      } catch (error) {
        next(error);
      }
    },
    (req, res, next) => (authenticatedActor(res) ? authenticatedBody : anonymousBody)(req, res, next),
  ];
}
