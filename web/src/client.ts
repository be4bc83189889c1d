import { Client, fetchExchange, subscriptionExchange } from 'urql';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';

export interface FacetClient {
  urql: Client;
  ws: WsClient;
  /** Called after the socket comes back (a server restart): pages refetch what the outage may have hidden. */
  onReconnect(listener: () => void): () => void;
}

/** Reconnect backoff: quick at first, at most every 5 s, forever (a server restart must not need a reload). */
const retryWait = (retries: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** retries)));

/**
 * urql over POST /graphql and graphql-ws on the same URL, the token as a bearer header and a connection parameter.
 * No cache between answers of different tokens: a client is made per sign-in.
 */
export function createFacetClient(token: string, origin = window.location.origin): FacetClient {
  const authorization = `Bearer ${token}`;
  const listeners = new Set<() => void>();
  let connectedBefore = false;
  const ws = createWsClient({
    url: `${origin.replace(/^http/, 'ws')}/graphql`,
    connectionParams: { authorization },
    lazy: true,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait,
    on: {
      connected: () => {
        if (connectedBefore) for (const listener of listeners) listener();
        connectedBefore = true;
      },
    },
  });
  const urql = new Client({
    url: `${origin}/graphql`,
    // POST always: Apollo's CSRF prevention refuses simple GET requests.
    preferGetMethod: false,
    fetchOptions: { headers: { authorization } },
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });
  return {
    urql,
    ws,
    onReconnect: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
