import type { GraphQLFormattedError } from 'graphql';
import { GraphQLError } from 'graphql';
import { ArgumentValidationError } from 'type-graphql';
import { ErrorCode } from '../domain';
import { AppError } from '../errors/app-error';
import { isDatabaseUnavailable, serviceUnavailable } from '../errors/database-unavailable';

/** Codes Apollo and graphql-js assign to malformed requests; they describe the request, not the server. */
const REQUEST_ERROR_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  ErrorCode.QUERY_TOO_COMPLEX,
]);

function unwrap(error: unknown): unknown {
  let current = error;
  while (current instanceof GraphQLError && current.originalError && current.originalError !== current) current = current.originalError;
  return current;
}

/** An AppError's extensions as the client sees them (`http` is Apollo's instruction for the response, not data). */
function publicExtensions(error: AppError): Record<string, unknown> {
  const { http: _http, ...extensions } = error.extensions;
  return extensions;
}

/**
 * AppError and request errors pass through with their code; a database outage (connection refused, terminated,
 * too many clients...) becomes SERVICE_UNAVAILABLE without the driver's text; type-graphql's argument validation
 * becomes BAD_USER_INPUT with the failing properties; anything else is masked as INTERNAL_SERVER_ERROR so no SQL,
 * stack or header value reaches the client (the full error is logged with the request id).
 */
export function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const original = unwrap(error);
  if (original instanceof AppError) return { ...formatted, message: original.message, extensions: publicExtensions(original) };
  if (isDatabaseUnavailable(original)) {
    const unavailable = serviceUnavailable();
    return { message: unavailable.message, locations: formatted.locations, path: formatted.path, extensions: publicExtensions(unavailable) };
  }
  if (original instanceof ArgumentValidationError) {
    // Only property paths and the rules they broke: class-validator's raw output echoes the whole input back.
    return {
      message: formatted.message,
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: ErrorCode.BAD_USER_INPUT, validationErrors: flattenValidation(original.extensions.validationErrors) },
    };
  }
  const code = formatted.extensions?.code;
  if (typeof code === 'string' && REQUEST_ERROR_CODES.has(code)) return formatted;
  return { message: 'Internal server error', locations: formatted.locations, path: formatted.path, extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
}

interface ValidationErrorLike {
  property: string;
  constraints?: Record<string, string>;
  children?: ValidationErrorLike[];
}

function flattenValidation(errors: ValidationErrorLike[], prefix = ''): Array<{ property: string; constraints: string[] }> {
  return errors.flatMap((e) => {
    const property = prefix ? `${prefix}.${e.property}` : e.property;
    const own = e.constraints ? [{ property, constraints: Object.values(e.constraints) }] : [];
    return [...own, ...flattenValidation(e.children ?? [], property)];
  });
}
