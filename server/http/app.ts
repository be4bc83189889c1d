import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { GraphQLError, parse, specifiedRules, validate, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import { WebSocketServer } from 'ws';
import type { Config } from '../config/config';
import { buildContext, type GraphQLContext } from '../graphql/context';
import { formatError } from '../graphql/error-formatter';
import { aliasLimit, assertQueryCost, depthLimit, queryCost } from '../graphql/limits';
import type { Services } from '../services';
import { graphiqlRouter } from './graphiql';
import { log } from './log';

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * One HTTP port: POST /graphql (Apollo), GET /graphql upgraded to graphql-ws, /graphiql, /healthz, /readyz.
 */
export async function startHttpServer(
  config: Pick<Config, 'host' | 'port' | 'introspection' | 'maxQueryDepth' | 'maxAliases' | 'maxQueryCost' | 'maxBodyBytes'>,
  services: Services,
  schema: GraphQLSchema,
  dataSource: DataSource,
): Promise<RunningServer> {
  const app = express();
  app.disable('x-powered-by');
  const httpServer: Server = createServer(app);
  const validationRules = [depthLimit(config.maxQueryDepth), aliasLimit(config.maxAliases)];

  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const wsCleanup = useServer<Record<string, unknown>>(
    {
      schema,
      // graphql-ws validates with the standard rules only; the query limits apply here as they do over HTTP.
      onSubscribe: (_ctx, _id, payload) => {
        try {
          const document = parse(payload.query);
          const errors = validate(schema, document, [...specifiedRules, ...validationRules]);
          if (errors.length) return errors;
          assertQueryCost(queryCost(schema, document, payload.variables ?? {}, payload.operationName ?? undefined), config.maxQueryCost);
          return undefined;
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
      },
      // Per operation, not per connection: a revoked token stops working on open sockets too, and each
      // operation gets fresh DataLoaders.
      context: (ctx) => buildContext(services, ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization),
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors ? { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) } : result,
    },
    wsServer,
  );

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection: config.introspection,
    validationRules,
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    formatError,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      { serverWillStart: async () => ({ drainServer: async () => wsCleanup.dispose() }) },
      {
        requestDidStart: async () => ({
          didResolveOperation: async ({ document, request }) => {
            assertQueryCost(queryCost(schema, document, request.variables ?? {}, request.operationName ?? undefined), config.maxQueryCost);
          },
          didEncounterErrors: async ({ contextValue, errors }) => {
            for (const error of errors) if (!(error.extensions?.code && error.extensions.code !== 'INTERNAL_SERVER_ERROR')) log.error('graphql error', { requestId: contextValue.requestId, error });
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
  app.use(
    '/graphql',
    express.json({ limit: config.maxBodyBytes }),
    expressMiddleware(apollo, {
      context: async ({ req }) => buildContext(services, req.headers.authorization, (req.headers['x-request-id'] as string | undefined)?.slice(0, 64) || randomUUID()),
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
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
