import { GraphQLError, validate, type ExecutionArgs, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import type { Disposable } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { WebSocketServer } from 'ws';
import type { Config } from '../config/config';
import { serviceUnavailable, unavailableCause } from '../errors/database-unavailable';
import { assertWellFormedArguments } from '../graphql/argument-guard';
import { buildContext, type GraphQLContext } from '../graphql/context';
import { formatError } from '../graphql/error-formatter';
import { assertQueryLimits } from '../graphql/limits';
import { assertHubOperation } from './hub-mode';
import { assertAnonymousDocumentSize, parseDocument } from '../graphql/parse-limits';
import { boundToToken } from '../graphql/token-bound-subscription';
import type { Services } from '../services';
import { log } from '../log';

/** The error a client sees, and the log line when it is a server fault (logged with the request id, never sent). */
function clientError(error: GraphQLError, requestId: string | undefined): GraphQLFormattedError {
  const formatted = formatError(error.toJSON(), error);
  const cause = unavailableCause(error);
  if (cause) log.warn('database unavailable', { requestId, transport: 'graphql-ws', path: error.path?.join('.'), cause });
  if (formatted.extensions?.code !== 'INTERNAL_SERVER_ERROR') return formatted;
  log.error('graphql error', { requestId, transport: 'graphql-ws', path: error.path?.join('.'), error });
  return { ...formatted, extensions: { ...formatted.extensions, requestId } };
}

const asGraphQLError = (error: unknown): GraphQLError =>
  error instanceof GraphQLError ? error : new GraphQLError(error instanceof Error ? error.message : String(error), { originalError: error as Error });

/**
 * graphql-ws on `GET /graphql` (the same port, upgraded). Every failure reaches the client as an error message
 * with a code, formatted like HTTP's (a database outage is SERVICE_UNAVAILABLE), never as a socket closed with
 * the driver's text: the context is built in onSubscribe, where an error can be answered per operation.
 */
export function startGraphQLWebSocket(
  httpServer: Server,
  config: Pick<Config, 'maxQueryDepth' | 'maxAliases' | 'maxQueryCost' | 'maxBodyBytes' | 'maxAnonymousBodyBytes' | 'maxQueryTokens'>,
  services: Services,
  schema: GraphQLSchema,
): Disposable {
  // A message is at most an authenticated HTTP body (ws's own default is 100 MiB).
  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: config.maxBodyBytes });
  // Operation ids are per socket: each connection's own map from operation id to request id.
  const requestIds = new WeakMap<object, Map<string, string>>();
  const requestIdsOf = (ctx: object) => requestIds.get(ctx) ?? requestIds.set(ctx, new Map()).get(ctx)!;
  return useServer<Record<string, unknown>, { anonymous?: boolean }>(
    {
      schema,
      // Once per connection, for the document size check below; each operation still authenticates on its own. A
      // lookup that fails (database unavailable) leaves it unknown: the operation's own lookup then answers 503.
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        ctx.extra.anonymous = await services.tokens.authenticateAuthorization(authorization).then(
          (actor) => !actor,
          () => undefined,
        );
      },
      onSubscribe: async (ctx, id, payload): Promise<ExecutionArgs | readonly GraphQLError[]> => {
        const requestId = randomUUID();
        requestIdsOf(ctx).set(id, requestId);
        let document;
        try {
          // The body and token limits apply here as they do over HTTP.
          assertAnonymousDocumentSize(payload.query, ctx.extra.anonymous === true, config.maxAnonymousBodyBytes);
          document = parseDocument(payload.query, config.maxQueryTokens);
        } catch (error) {
          return [asGraphQLError(error)];
        }
        const errors = validate(schema, document);
        if (errors.length) return errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }));
        try {
          // The query limits apply here as they do over HTTP.
          assertQueryLimits(schema, document, config, payload.variables ?? {}, payload.operationName ?? undefined);
          assertWellFormedArguments(schema, document, payload.variables ?? {}, payload.operationName ?? undefined);
          if (services.federationHub.isHub) assertHubOperation(document, payload.operationName ?? undefined);
          // Per operation, not per connection: a revoked token stops working on open sockets too, and each
          // operation gets fresh DataLoaders.
          const authorization = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
          const contextValue: GraphQLContext = await buildContext(services, authorization, requestId);
          return { schema, document, variableValues: payload.variables, operationName: payload.operationName, contextValue };
        } catch (error) {
          const cause = unavailableCause(error);
          if (!cause) return [asGraphQLError(error)];
          log.warn('database unavailable', { requestId, transport: 'graphql-ws', cause });
          return [serviceUnavailable()];
        }
      },
      // A subscription ends when its token is revoked or expires.
      onOperation: (_ctx, _id, _payload, args, result) => boundToToken(services.tokenLifetimes, args.contextValue as GraphQLContext | undefined, result),
      onNext: (ctx, id, _payload, _args, result) => {
        if (!result.errors) return result;
        const requestId = requestIdsOf(ctx).get(id);
        return { ...result, errors: result.errors.map((error) => clientError(error, requestId)) };
      },
      // Errors that end an operation: onSubscribe refused it, or its stream failed (a re-read during an outage).
      onError: (ctx, id, _payload, errors) => {
        const requestId = requestIdsOf(ctx).get(id);
        requestIdsOf(ctx).delete(id);
        return errors.map((error) => clientError(error, requestId));
      },
      onComplete: (ctx, id) => {
        requestIdsOf(ctx).delete(id);
      },
    },
    wsServer,
  );
}
