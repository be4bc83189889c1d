import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export interface GraphQLResponse<T = Record<string, any>> {
  data?: T | null;
  errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, any> }>;
}

/** POST /graphql as a real client would, with an optional bearer token. */
export async function gql<T = Record<string, any>>(
  url: string,
  token: string | null,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse<T>;
}

/** The error code of the first error, or undefined. */
export const codeOf = (response: GraphQLResponse): string | undefined => response.errors?.[0]?.extensions?.code;

/** Expects data; fails the test with the errors otherwise. */
export async function gqlOk<T = Record<string, any>>(url: string, token: string | null, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await gql<T>(url, token, query, variables);
  if (response.errors?.length || !response.data) throw new Error(`GraphQL errors: ${JSON.stringify(response.errors)}`);
  return response.data;
}

/** One operation over graphql-ws (the same URL, upgraded), with the token as a connection parameter. */
export async function gqlOverWebSocket<T = Record<string, any>>(
  url: string,
  token: string | null,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GraphQLResponse<T>> {
  const client = createClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
  try {
    return await new Promise<GraphQLResponse<T>>((resolve, reject) => {
      let result: GraphQLResponse<T> = {};
      client.subscribe<T>(
        { query, variables },
        {
          next: (value) => {
            result = value as GraphQLResponse<T>;
          },
          error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)),
          complete: () => resolve(result),
        },
      );
    });
  } finally {
    await client.dispose();
  }
}

/** A live graphql-ws subscription: the events so far, a wait for one that matches, and a close. */
export interface LiveSubscription<T> {
  events: T[];
  errors: unknown[];
  waitFor(predicate: (event: T) => boolean, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

export async function subscribe<T = Record<string, any>>(
  url: string,
  token: string | null,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<LiveSubscription<T>> {
  const client = createClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
  const events: T[] = [];
  const errors: unknown[] = [];
  const waiters: Array<() => void> = [];
  const acknowledged = new Promise<void>((resolve) => client.on('connected', () => resolve()));
  client.subscribe<T>(
    { query, variables },
    {
      next: (value) => {
        if (value.errors?.length) errors.push(...value.errors);
        if (value.data) events.push(value.data as T);
        waiters.splice(0).forEach((w) => w());
      },
      error: (error) => {
        errors.push(...(Array.isArray(error) ? error : [error]));
        waiters.splice(0).forEach((w) => w());
      },
      complete: () => undefined,
    },
  );
  await acknowledged;
  // The server registers the subscription after the socket is acknowledged; give it a moment so the test's
  // next step (which publishes) cannot overtake it.
  await new Promise((resolve) => setTimeout(resolve, 150));
  return {
    events,
    errors,
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = events.find(predicate);
        if (found) return found;
        if (errors.length) throw new Error(`subscription error: ${JSON.stringify(errors)}`);
        if (Date.now() > deadline) throw new Error(`no matching event in ${timeoutMs} ms; got ${JSON.stringify(events)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
    close: () => client.dispose() as Promise<void>,
  };
}
