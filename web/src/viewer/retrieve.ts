import { readToken } from '../auth';
import { firstPart, RetrieveError } from './wado-answer';

/** The UIDs WADO-RS names an instance by (the de-identified ones the API answers). */
export interface InstanceUids {
  study: string;
  series: string;
  instance: string;
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
