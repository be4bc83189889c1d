/** Printable ASCII (space to tilde), 1 to 64 characters: what the audit log's client_request_id column holds. */
const CLIENT_REQUEST_ID = /^[\x20-\x7e]{1,64}$/;

/**
 * A client's `x-request-id`, worth recording beside the server's own request id: printable ASCII of at most 64
 * characters. Anything else (control characters, non-ASCII, longer, repeated headers) is dropped whole rather than
 * cut into a different id.
 */
export function clientRequestId(header: unknown): string | null {
  return typeof header === 'string' && CLIENT_REQUEST_ID.test(header) ? header : null;
}
