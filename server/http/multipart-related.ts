/** One body part of a multipart/related message. */
export interface BodyPart {
  headers: Record<string, string>;
  body: Buffer;
}

export class MultipartError extends Error {}

/** The parameters of a Content-Type header, keys lower-cased, quotes removed. */
export function mediaTypeParameters(contentType: string): { type: string; params: Record<string, string> } {
  const [type, ...rest] = contentType.split(';');
  const params: Record<string, string> = {};
  for (const piece of rest) {
    const at = piece.indexOf('=');
    if (at < 0) continue;
    params[piece.slice(0, at).trim().toLowerCase()] = piece
      .slice(at + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
  }
  return { type: type.trim().toLowerCase(), params };
}

/**
 * Parts one request may hold. The body's size alone does not bound the work: 64 MB of empty parts are a million
 * parts, each answered with a rejection (about 10 times the body in memory). 10,000 is five times a large CT study.
 */
export const MAX_PARTS = 10_000;

/**
 * Splits a multipart/related body (RFC 2387, framed as RFC 2046) into its parts. The whole body is in memory;
 * the caller bounds its size, and `maxParts` the number of parts.
 */
export function parseMultipartRelated(boundary: string, body: Buffer, maxParts = MAX_PARTS): BodyPart[] {
  if (!boundary || boundary.length > 70) throw new MultipartError('The multipart boundary is missing or longer than 70 characters');
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const parts: BodyPart[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) throw new MultipartError('The body holds no multipart boundary');
  for (;;) {
    at += delimiter.length;
    if (body[at] === 0x2d && body[at + 1] === 0x2d) return parts; // closing "--boundary--"
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) throw new MultipartError('A multipart boundary line does not end');
    // RFC 2046: only linear whitespace may follow a delimiter on its line ("--XYZZY" is not the delimiter "--XYZ").
    if (!/^[ \t]*$/.test(body.toString('latin1', at, lineEnd))) throw new MultipartError('A line starting like the boundary is not the boundary');
    const headerEnd = body.indexOf('\r\n\r\n', lineEnd);
    if (headerEnd < 0) throw new MultipartError('A body part has no end of headers');
    const headers: Record<string, string> = {};
    for (const line of body.toString('latin1', lineEnd + 2, headerEnd).split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n', 'latin1'), delimiter]), headerEnd + 4);
    if (next < 0) throw new MultipartError('The body ends inside a part (no closing boundary)');
    if (parts.length === maxParts) throw new MultipartError(`The request holds more than ${maxParts} parts: send them in several requests`);
    parts.push({ headers, body: body.subarray(headerEnd + 4, next) });
    at = next + 2;
  }
}
