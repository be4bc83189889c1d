import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type ErrorRequestHandler } from 'express';
import { GraphQLError, validate, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import { WebSocketServer } from 'ws';
import type { Config } from '../config/config';
import { assertWellFormedArguments } from '../graphql/argument-guard';
import { bearerSecret, buildContext, type GraphQLContext } from '../graphql/context';
import { formatError } from '../graphql/error-formatter';
import { assertQueryLimits } from '../graphql/limits';
import { assertAnonymousDocumentSize, parseDocument } from '../graphql/parse-limits';
import { boundToToken } from '../graphql/token-bound-subscription';
import type { Services } from '../services';
import { dicomwebRouter } from './dicomweb';
import { graphiqlRouter } from './graphiql';
import { authenticatedActor, graphqlAuthGate } from './graphql-auth';
import { modelUploadRouter } from './model-upload';
import { log } from './log';
import { clientRequestId } from './request-id';

/** An error without a request-level code: a server fault whose cause is logged, never sent. */
const isUnexpected = (error: GraphQLError): boolean => !error.extensions?.code || error.extensions.code === 'INTERNAL_SERVER_ERROR';

function withRequestId(formatted: GraphQLFormattedError, error: GraphQLError, requestId: string | undefined): GraphQLFormattedError {
  if (formatted.extensions?.code !== 'INTERNAL_SERVER_ERROR') return formatted;
  log.error('graphql error', { requestId, transport: 'graphql-ws', error });
  return { ...formatted, extensions: { ...formatted.extensions, requestId } };
}

/**
 * Malformed JSON or an oversized body answers like any GraphQL error (JSON, a code, no stack) instead of
 * Express's default HTML page, which shows a stack trace outside production.
 */
const rejectUnreadableBody: ErrorRequestHandler = (error: { type?: string; status?: number }, _req, res, _next) => {
  if (error.type === 'entity.parse.failed') {
    res.status(400).json({ errors: [{ message: 'The request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
  } else if (error.type === 'entity.too.large') {
    res.status(413).json({ errors: [{ message: 'The request body is too large', extensions: { code: 'BAD_REQUEST' } }] });
  } else if (error.status && error.status >= 400 && error.status < 500) {
    res.status(error.status).json({ errors: [{ message: 'The request body could not be read', extensions: { code: 'BAD_REQUEST' } }] });
  } else {
    log.error('http error', { error });
    res.status(500).json({ errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
  }
};

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * One HTTP port: POST /graphql (Apollo), GET /graphql upgraded to graphql-ws, /graphiql, /healthz, /readyz.
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
  >,
  services: Services,
  schema: GraphQLSchema,
  dataSource: DataSource,
): Promise<RunningServer> {
  const app = express();
  app.disable('x-powered-by');
  const httpServer: Server = createServer(app);
  // Idle keep-alive sockets outlive the clients' own idle timeouts (undici 4 s, load balancers 60 s), so the client
  // closes first and never sends on a socket the server is closing (ECONNRESET under load).
  httpServer.keepAliveTimeout = 65_000;
  httpServer.headersTimeout = 66_000;

  // A message is at most an authenticated HTTP body (ws's own default is 100 MiB).
  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: config.maxBodyBytes });
  const wsCleanup = useServer<Record<string, unknown>, { anonymous?: boolean }>(
    {
      schema,
      // Once per connection, for the document size check below; each operation still authenticates on its own.
      onConnect: async (ctx) => {
        const secret = bearerSecret(ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization);
        ctx.extra.anonymous = !(secret && (await services.tokens.authenticate(secret)));
      },
      // The body, token and query limits apply here as they do over HTTP (graphql-ws then validates and executes as usual).
      onSubscribe: (ctx, _id, payload) => {
        try {
          assertAnonymousDocumentSize(payload.query, ctx.extra.anonymous !== false, config.maxAnonymousBodyBytes);
          const document = parseDocument(payload.query, config.maxQueryTokens);
          const errors = validate(schema, document);
          if (errors.length) return errors;
          assertQueryLimits(schema, document, config, payload.variables ?? {}, payload.operationName ?? undefined);
          assertWellFormedArguments(schema, document, payload.variables ?? {}, payload.operationName ?? undefined);
          return undefined;
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
      },
      // Per operation, not per connection: a revoked token stops working on open sockets too, and each
      // operation gets fresh DataLoaders.
      context: (ctx) => buildContext(services, ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization),
      // A subscription ends when its token is revoked or expires.
      onOperation: (_ctx, _id, _payload, args, result) => boundToToken(services.tokenLifetimes, args.contextValue as GraphQLContext | undefined, result),
      onNext: (_ctx, _id, _payload, args, result) => {
        if (!result.errors) return result;
        const requestId = (args.contextValue as GraphQLContext | undefined)?.requestId;
        return { ...result, errors: result.errors.map((error) => withRequestId(formatError(error.toJSON(), error), error, requestId)) };
      },
    },
    wsServer,
  );

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection: config.introspection,
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    formatError,
    // The parser stops after this many tokens: a document's parse cost is bounded whatever its length.
    parseOptions: { maxTokens: config.maxQueryTokens },
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      { serverWillStart: async () => ({ drainServer: async () => wsCleanup.dispose() }) },
      {
        requestDidStart: async () => ({
          didResolveOperation: async ({ document, request }) => {
            assertQueryLimits(schema, document, config, request.variables ?? {}, request.operationName ?? undefined);
            assertWellFormedArguments(schema, document, request.variables ?? {}, request.operationName ?? undefined);
          },
          didEncounterErrors: async ({ contextValue, errors }) => {
            for (const error of errors) {
              if (isUnexpected(error)) log.error('graphql error', { requestId: contextValue.requestId, clientRequestId: contextValue.clientRequestId, error });
            }
          },
          willSendResponse: async ({ contextValue, response }) => {
            response.http.headers.set('x-request-id', contextValue.requestId);
            if (response.body.kind !== 'single') return;
            for (const error of response.body.singleResult.errors ?? []) {
              if (error.extensions?.code === 'INTERNAL_SERVER_ERROR') (error.extensions as Record<string, unknown>).requestId = contextValue.requestId;
            }
          },
        }),
      },
    ],
  });
  await apollo.start();
  services.pubSub.onListenerLost = (error) => log.warn('LISTEN connection lost; reconnecting', { error: error.message });
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
  app.use('/dicomweb', dicomwebRouter(services, config.maxStowBytes));
  app.use('/api', modelUploadRouter(services, config.maxStowBytes));
  app.use(
    '/graphql',
    // The token is looked up before the body is read: anonymous bodies are cut at a few KB.
    ...graphqlAuthGate(services, { limit: config.maxBodyBytes, anonymousLimit: config.maxAnonymousBodyBytes }),
    rejectUnreadableBody,
    expressMiddleware(apollo, {
      // The request id is always the server's own; a client's x-request-id is recorded beside it.
      context: async ({ req, res }) =>
        buildContext(services, req.headers.authorization, randomUUID(), {
          actor: authenticatedActor(res),
          clientRequestId: clientRequestId(req.headers['x-request-id']),
        }),
    }),
  );
  app.get('/', (_req, res) => {
    res.redirect('/graphiql');
  });

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
