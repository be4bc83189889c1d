import type { ExecutionResult } from 'graphql';
import { ErrorCode } from '../domain';
import { AppError } from '../errors/app-error';
import type { RequestContext, TokenLifetimeService } from '../services';
import { untilTokenEnds } from '../services/token-lifetime.service';

const isAsyncIterable = (value: unknown): value is AsyncIterable<ExecutionResult> => typeof Object(value)[Symbol.asyncIterator] === 'function';

/**
 * A subscription's results for as long as its token authenticates: when the token is revoked or expires, one
 * last result carrying UNAUTHENTICATED (`extensions.reason`: REVOKED or EXPIRED), then the subscription completes.
 * Queries and mutations, and operations without a token, pass through unchanged.
 */
export function boundToToken<R>(lifetimes: TokenLifetimeService, ctx: RequestContext | undefined, result: R): R {
  if (!isAsyncIterable(result) || !ctx?.actor?.tokenId) return result;
  const watch = lifetimes.watch(ctx.actor);
  return untilTokenEnds(result, watch, (end) => ({
    errors: [
      new AppError(ErrorCode.UNAUTHENTICATED, end === 'REVOKED' ? 'The subscription’s token was revoked' : 'The subscription’s token expired', { reason: end }),
    ],
  })) as R;
}
