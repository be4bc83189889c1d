import { readToken } from '../auth';

/** The UIDs WADO-RS names an instance by (the de-identified ones the API answers). */
export interface InstanceUids {
  study: string;
  series: string;
  instance: string;
}

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

/**
 * The instance's DICOM Part 10 bytes by WADO-RS (`GET /dicomweb/studies/…/series/…/instances/…`, the token as a
 * bearer header): the de-identified object as stored, whatever its transfer syntax. The read is audited by the
 * server like every other.
 */
export async function retrievePart10(uids: InstanceUids, origin = window.location.origin): Promise<Uint8Array> {
  const url = `${origin}/dicomweb/studies/${encodeURIComponent(uids.study)}/series/${encodeURIComponent(uids.series)}/instances/${encodeURIComponent(uids.instance)}`;
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${readToken() ?? ''}`, accept: 'multipart/related; type="application/dicom"' },
  });
  if (!response.ok) {
    // The server's errors have the shape of a GraphQL error: { errors: [{ message, extensions: { code } }] }.
    const problem = (await response.json().catch(() => null)) as { errors?: Array<{ message?: string; extensions?: { code?: string } }> } | null;
    const error = problem?.errors?.[0];
    throw new RetrieveError(error?.extensions?.code ?? `HTTP_${response.status}`, error?.message ?? response.statusText);
  }
  const boundary = /boundary="?([^";]+)"?/i.exec(response.headers.get('content-type') ?? '')?.[1];
  if (!boundary) throw new RetrieveError('BAD_RESPONSE', 'The WADO-RS answer is not multipart/related');
  return firstPart(new Uint8Array(await response.arrayBuffer()), boundary);
}
