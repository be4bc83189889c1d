import type { AuthChecker } from 'type-graphql';
import { ErrorCode, Role } from '../domain';
import { AppError } from '../errors/app-error';
import type { GraphQLContext } from './context';

/**
 * `@Authorized()` needs any valid token; `@Authorized(Role.X, …)` one of those roles (ADMIN always passes).
 * Throws instead of returning false so the client sees UNAUTHENTICATED or FORBIDDEN, not a generic message.
 */
export const authChecker: AuthChecker<GraphQLContext, Role> = ({ context }, roles) => {
  const actor = context.actor;
  if (!actor) throw new AppError(ErrorCode.UNAUTHENTICATED, 'A valid bearer token is required');
  if (roles.length === 0 || actor.role === Role.ADMIN || roles.includes(actor.role)) return true;
  throw new AppError(ErrorCode.FORBIDDEN, `This needs one of the roles ${[Role.ADMIN, ...roles].join(', ')}`);
};
