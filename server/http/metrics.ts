import type { ApolloServerPlugin } from '@apollo/server';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, Role } from '../domain';
import { log } from '../log';
import { systemContext, type Services } from '../services';
import { graphqlDuration, graphqlOperations, httpDuration, httpRequests, operationLabel, registry } from '../telemetry/metrics';
import { sendProblem } from './problem';

/** Where app.ts mounts routers. */
const MOUNTS = ['/dicomweb', '/api', '/graphiql', '/metrics', '/graphql'];

/**
 * The route pattern of a request once answered: the router's mount path and the route's path (`/dicomweb` +
 * `/studies/:study/metadata`), so UIDs and ids never become label values; requests no route took are `unmatched`
 * (unknown paths, the web app's files), mounted middleware without a route (Apollo at /graphql) its mount path.
 */
function routeOf(req: Request): string {
  const route = (req as Request & { route?: { path?: unknown } }).route;
  // Express restores baseUrl when an error leaves a router, so the mount is also found from the URL (a fixed list).
  const path = req.originalUrl.split('?')[0];
  const mount = req.baseUrl || MOUNTS.find((m) => path === m || path.startsWith(`${m}/`)) || '';
  if (route && typeof route.path === 'string') return `${mount}${route.path}`;
  if (route && Array.isArray(route.path)) return route.path.map((p: unknown) => `${mount}${String(p)}`).join('|');
  return mount || 'unmatched';
}

/** Counts and times every HTTP request, labelled by method, route pattern and status. */
export function httpMetrics(req: Request, res: Response, next: NextFunction): void {
  const stop = httpDuration.startTimer();
  res.once('finish', () => {
    const route = routeOf(req);
    const method = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'].includes(req.method) ? req.method : 'other';
    stop({ method, route });
    httpRequests.inc({ method, route, status: String(res.statusCode) });
  });
  next();
}

/** Counts and times GraphQL operations over HTTP by type and (bounded) name; one that failed to parse or validate is `invalid`. */
export const graphqlMetricsPlugin: ApolloServerPlugin = {
  requestDidStart: async () => {
    const stop = graphqlDuration.startTimer();
    let labels = { type: 'unknown', operation: 'invalid' };
    return {
      didResolveOperation: async ({ operation, operationName }) => {
        if (!operation) return;
        labels = { type: operation.operation, operation: operationLabel(operationName ?? operation.name?.value) };
      },
      willSendResponse: async ({ response }) => {
        const failed = response.body.kind === 'single' && Boolean(response.body.singleResult.errors?.length);
        stop(labels);
        graphqlOperations.inc({ ...labels, outcome: failed ? 'error' : 'ok' });
      },
    };
  },
};

const digest = (secret: string) => createHash('sha256').update(secret).digest();

/**
 * Who may scrape /metrics on the API port: the scrape token (FACET_METRICS_TOKEN, compared in constant time) or
 * an ADMIN token. Answers whether to go on, having sent 401 or 403 otherwise.
 */
async function mayScrape(req: Request, res: Response, services: Services, scrapeToken: string | null): Promise<boolean> {
  const header = req.headers.authorization ?? '';
  const secret = /^Bearer (\S+)$/i.exec(header)?.[1];
  if (secret && scrapeToken && timingSafeEqual(digest(secret), digest(scrapeToken))) return true;
  const actor = await services.tokens.authenticateAuthorization(header);
  if (!actor) {
    sendProblem(res, ErrorCode.UNAUTHENTICATED, 'The metrics need the scrape token (FACET_METRICS_TOKEN) or an ADMIN token');
    return false;
  }
  if (actor.role !== Role.ADMIN) {
    sendProblem(res, ErrorCode.FORBIDDEN, 'The metrics need the scrape token (FACET_METRICS_TOKEN) or an ADMIN token');
    return false;
  }
  return true;
}

/** The exposition (text format 0.0.4) after the shared-state gauges are read. */
async function exposition(services: Services): Promise<string> {
  await services.monitoring.refreshGauges(systemContext('metrics'));
  return registry.metrics();
}

/** GET /metrics on the API port, behind the scrape token or an ADMIN token. */
export function metricsRouter(services: Services, scrapeToken: string | null): Router {
  const router = express.Router();
  router.get('/', async (req: Request, res: Response) => {
    if (!(await mayScrape(req, res, services, scrapeToken))) return;
    res
      .status(200)
      .type(registry.contentType)
      .send(await exposition(services));
  });
  return router;
}

/**
 * A listener of its own for /metrics (FACET_METRICS_PORT), without a token: for a scraper on a network the API
 * port is not exposed to, and for workers, which serve no API. Bound to FACET_METRICS_HOST (127.0.0.1 by default).
 */
export async function startMetricsServer(host: string, port: number, services: Services): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Only GET /metrics here\n');
      return;
    }
    exposition(services).then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => {
        log.warn('metrics scrape failed', { error });
        res.writeHead(503, { 'content-type': 'text/plain' }).end('The metrics could not be read (is the database up?)\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
