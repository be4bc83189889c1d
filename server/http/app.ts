import { ApolloServer, type GraphQLResponse } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type Response } from 'express';
import type { GraphQLError, GraphQLSchema } from 'graphql';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import type { Config } from '../config/config';
import { ErrorCode } from '../domain';
import { RETRY_AFTER_SECONDS, serviceUnavailable, unavailableCause } from '../errors/database-unavailable';
import { buildContext, type GraphQLContext } from '../graphql/context';
import { formatError } from '../graphql/error-formatter';
import { assertWellFormedArguments } from '../graphql/argument-guard';
import { assertQueryLimits } from '../graphql/limits';
import { HUB_ANONYMOUS_BODY_BYTES, type Services } from '../services';
import { dicomwebRouter } from './dicomweb';
import { graphiqlRouter } from './graphiql';
import { authenticatedActor, graphqlAuthGate } from './graphql-auth';
import { startGraphQLWebSocket } from './graphql-ws';
import { webAppRouter } from './web-app';
import { modelUploadRouter } from './model-upload';
import { federationModelRouter } from './federation-model';
import { assertHubOperation, refuseOnHub } from './hub-mode';
import { log } from '../log';
import { HTTP_STATUS, notFoundHandler, problemHandler, requestIdOf } from './problem';
import { clientRequestId } from './request-id';
import { graphqlMetricsPlugin, httpMetrics, metricsRouter } from './metrics';
import { listenReconnects } from '../telemetry/metrics';

/** An error without a request-level code: a server fault whose cause is logged, never sent. */
const isUnexpected = (error: GraphQLError): boolean => !error.extensions?.code || error.extensions.code === 'INTERNAL_SERVER_ERROR';

/**
 * The GraphQL context of an HTTP request. A token lookup that fails because the database is unavailable answers
 * 503 with Retry-After (Apollo takes status and headers from `extensions.http`), not 500 with the driver's text.
 */
async function httpContext(services: Services, authorization: unknown, requestId: string, known: Parameters<typeof buildContext>[3]): Promise<GraphQLContext> {
  try {
    return services.audit.deferUntilAnswered(await buildContext(services, authorization, requestId, known));
  } catch (error) {
    const cause = unavailableCause(error);
    if (!cause) throw error;
    log.warn('database unavailable', { requestId, transport: 'http', cause });
    const unavailable = serviceUnavailable();
    unavailable.extensions.http = { status: HTTP_STATUS.SERVICE_UNAVAILABLE, headers: new Map([['retry-after', String(RETRY_AFTER_SECONDS)]]) };
    throw unavailable;
  }
}

/**
 * Writes the audit rows of the request's reads before its answer leaves (group-committed with other requests'). If
 * they cannot be written, nothing read is sent: the answer becomes a SERVICE_UNAVAILABLE (or internal) error alone.
 */
async function auditBeforeAnswering(services: Services, ctx: GraphQLContext, response: GraphQLResponse): Promise<void> {
  try {
    await services.audit.flushDeferred(ctx);
  } catch (error) {
    const cause = unavailableCause(error);
    if (cause) log.warn('database unavailable', { requestId: ctx.requestId, transport: 'http', stage: 'audit', cause });
    else log.error('audit write failed', { requestId: ctx.requestId, error });
    const code = cause ? ErrorCode.SERVICE_UNAVAILABLE : ErrorCode.INTERNAL_SERVER_ERROR;
    const message = cause ? serviceUnavailable().message : 'Unexpected error';
    response.body = { kind: 'single', singleResult: { errors: [{ message, extensions: { code } }] } };
    response.http.status = cause ? HTTP_STATUS.SERVICE_UNAVAILABLE : HTTP_STATUS.INTERNAL_SERVER_ERROR;
  }
}

/** Aborts when the response's connection closes before the response was sent (the client gave up or went away). */
function clientGone(res: Response): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * One HTTP port: POST /graphql (Apollo), GET /graphql upgraded to graphql-ws, /graphiql, /healthz, /readyz, and the
 * web app at `/`.
 */
export async function startHttpServer(
  config: Pick<
    Config,
    | 'host'
    | 'port'
    | 'introspection'
    | 'maxQueryDepth'
    | 'maxAliases'
    | 'maxQueryCost'
    | 'maxBodyBytes'
    | 'maxAnonymousBodyBytes'
    | 'maxQueryTokens'
    | 'maxStowBytes'
  > &
    Partial<Pick<Config, 'metricsToken'>>,
  services: Services,
  schema: GraphQLSchema,
  dataSource: DataSource,
): Promise<RunningServer> {
  const app = express();
  app.disable('x-powered-by');
  app.use(httpMetrics);
  const httpServer: Server = createServer(app);
  // Idle keep-alive sockets outlive the clients' own idle timeouts (undici 4 s, load balancers 60 s), so the client
  // closes first and never sends on a socket the server is closing (ECONNRESET under load).
  httpServer.keepAliveTimeout = 65_000;
  httpServer.headersTimeout = 66_000;

  const isHub = services.federationHub.isHub;
  const wsCleanup = startGraphQLWebSocket(httpServer, config, services, schema);

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection: config.introspection,
    csrfPrevention: true,
    // The process's own SIGINT/SIGTERM handler stops the server (main.ts onShutdown). Apollo's would race it: the second
    // stop() waits on a barrier Apollo resolves only when stopping fails, so whichever handler came second never returned.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    formatError,
    // The parser stops after this many tokens, so a document's parse cost is bounded whatever its length.
    parseOptions: { maxTokens: config.maxQueryTokens },
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      // Facet sends no cache hints; the default plugin would wrap every field's resolver to collect them.
      ApolloServerPluginCacheControlDisabled(),
      graphqlMetricsPlugin,
      { serverWillStart: async () => ({ drainServer: async () => wsCleanup.dispose() }) },
      {
        requestDidStart: async () => ({
          didResolveOperation: async ({ document, request }) => {
            assertQueryLimits(schema, document, config, request.variables ?? {}, request.operationName ?? undefined);
            assertWellFormedArguments(schema, document, request.variables ?? {}, request.operationName ?? undefined);
            if (isHub) assertHubOperation(document, request.operationName ?? undefined);
          },
          didEncounterErrors: async ({ contextValue, errors }) => {
            for (const error of errors) {
              const cause = unavailableCause(error);
              const ids = { requestId: contextValue.requestId, clientRequestId: contextValue.clientRequestId, path: error.path?.join('.') };
              if (cause) log.warn('database unavailable', { ...ids, cause });
              else if (isUnexpected(error)) log.error('graphql error', { ...ids, error });
            }
          },
          willSendResponse: async ({ contextValue, response }) => {
            response.http.headers.set('x-request-id', contextValue.requestId);
            if (response.body.kind !== 'single') return;
            await auditBeforeAnswering(services, contextValue, response);
            for (const error of response.body.singleResult.errors ?? []) {
              if (error.extensions?.code === ErrorCode.INTERNAL_SERVER_ERROR) (error.extensions as Record<string, unknown>).requestId = contextValue.requestId;
              // A resolver that met a database outage: the whole answer is 503, so clients and proxies retry.
              if (error.extensions?.code === ErrorCode.SERVICE_UNAVAILABLE) {
                response.http.status = HTTP_STATUS.SERVICE_UNAVAILABLE;
                response.http.headers.set('retry-after', String(RETRY_AFTER_SECONDS));
              }
            }
          },
        }),
      },
    ],
  });
  await apollo.start();
  services.pubSub.onListenerLost = (error) => log.warn('LISTEN connection lost; reconnecting', { cause: unavailableCause(error) ?? error.message });
  services.pubSub.onListenerRetry = (error, attempt, delayMs) =>
    log.warn('LISTEN reconnect failed', { attempt, retryInMs: Math.round(delayMs), cause: unavailableCause(error) ?? error.message });
  services.pubSub.onListenerRestored = (attempts) => {
    listenReconnects.inc();
    log.info('LISTEN connection restored', { attempts });
  };
  await services.pubSub.listen();

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await dataSource.query('SELECT 1');
      res.json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'unavailable', reason: 'database' });
    }
  });
  app.use('/graphiql', graphiqlRouter());
  app.use('/metrics', metricsRouter(services, config.metricsToken ?? null));
  app.use('/dicomweb', isHub ? refuseOnHub : dicomwebRouter(services, config.maxStowBytes));
  // A hub takes model versions (no patient's data) and hands them to the member sites that run them.
  app.use('/api', modelUploadRouter(services, config.maxStowBytes));
  if (isHub) app.use('/federation', federationModelRouter(services));
  app.use(
    '/graphql',
    // The token is looked up before the body is read: anonymous bodies are cut at a few KB.
    ...graphqlAuthGate(services, {
      limit: config.maxBodyBytes,
      anonymousLimit: isHub ? Math.min(config.maxBodyBytes, Math.max(config.maxAnonymousBodyBytes, HUB_ANONYMOUS_BODY_BYTES)) : config.maxAnonymousBodyBytes,
    }),
    expressMiddleware(apollo, {
      // The request id is always the server's own; a client's x-request-id is recorded beside it.
      context: async ({ req, res }) =>
        httpContext(services, req.headers.authorization, requestIdOf(res), {
          actor: authenticatedActor(res),
          clientRequestId: clientRequestId(req.headers['x-request-id']),
          signal: clientGone(res),
        }),
    }),
  );
  app.use(webAppRouter());
  // Last: every route's errors and every unknown route answer JSON with a code (problem.ts).
  app.use(notFoundHandler);
  app.use(problemHandler);

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, resolve);
  });
  const { port } = httpServer.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    port,
    close: async () => {
      await apollo.stop();
      await services.pubSub.close();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
