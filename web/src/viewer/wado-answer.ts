// What a WADO-RS answer holds, without the browser's APIs (so the parsing is tested under Node as it runs here).

/** A WADO-RS refusal: the server's problem code (README, Errors) and message, or the HTTP status when it sent none. */
export class RetrieveError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RetrieveError';
  }
}

/**
 * The first part's body of a multipart/related answer (PS3.18 8.6.1.2): after the first `--boundary` line and
 * the part's header block, up to the CRLF before the next delimiter. WADO-RS answers one instance as one part.
 */
export function firstPart(body: Uint8Array, boundary: string): Uint8Array {
  const delimiter = new TextEncoder().encode(`--${boundary}`);
  const find = (needle: Uint8Array, from: number) => {
    outer: for (let i = from; i <= body.length - needle.length; i++) {
      for (let j = 0; j < needle.length; j++) if (body[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  };
  const start = find(delimiter, 0);
  const headersEnd = start < 0 ? -1 : find(new Uint8Array([13, 10, 13, 10]), start);
  if (headersEnd < 0) throw new RetrieveError('BAD_RESPONSE', 'The WADO-RS answer holds no part');
  const bodyStart = headersEnd + 4;
  const next = find(new TextEncoder().encode(`\r\n--${boundary}`), bodyStart);
  if (next < 0) throw new RetrieveError('BAD_RESPONSE', 'The WADO-RS answer ends inside its part');
  return body.subarray(bodyStart, next);
}
