import { GraphQLError, parse, type DocumentNode } from 'graphql';
import { ErrorCode } from '../domain';
import { AppError } from '../errors/app-error';

/**
 * Parses a graphql-ws document as Apollo parses one over HTTP (`parseOptions: { maxTokens }`): the parser stops
 * after `maxTokens` tokens, so a document's parse cost is bounded whatever its length. Syntax errors, the token
 * limit among them, carry GRAPHQL_PARSE_FAILED as they do over HTTP.
 */
export function parseDocument(query: string, maxTokens: number): DocumentNode {
  try {
    return parse(query, { maxTokens });
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    throw new GraphQLError(error.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      extensions: { code: 'GRAPHQL_PARSE_FAILED' },
    });
  }
}

/** Refuses an anonymous graphql-ws document longer than an anonymous HTTP body may be (PAYLOAD_TOO_LARGE, before parsing). */
export function assertAnonymousDocumentSize(query: string, anonymous: boolean, limit: number): void {
  if (anonymous && Buffer.byteLength(query, 'utf8') > limit) {
    throw new AppError(ErrorCode.PAYLOAD_TOO_LARGE, `Without a valid token a document may be at most ${limit} bytes`);
  }
}
