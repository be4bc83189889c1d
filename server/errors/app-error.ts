import { GraphQLError } from 'graphql';
import { ErrorCode } from '../domain';

/**
 * The one error class services throw for expected failures. Its `extensions.code` is stable and
 * documented; the message is safe to show a user (never PHI, SQL or header values).
 */
export class AppError extends GraphQLError {
  constructor(
    readonly code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(message, { extensions: { code, ...details } });
    this.name = 'AppError';
  }
}

export const notFound = (entity: string, id: string): AppError => new AppError(ErrorCode.NOT_FOUND, `${entity} ${id} was not found`, { entity, id });

export const forbidden = (message: string): AppError => new AppError(ErrorCode.FORBIDDEN, message);

export const badInput = (message: string, details: Record<string, unknown> = {}): AppError => new AppError(ErrorCode.BAD_USER_INPUT, message, details);

export const conflict = (message: string, details: Record<string, unknown> = {}): AppError => new AppError(ErrorCode.CONFLICT, message, details);
