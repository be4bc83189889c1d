import { randomBytes } from 'node:crypto';

export interface StowFile {
  bytes: Buffer;
  contentType?: string;
}

/** A STOW-RS request body: multipart/related; type="application/dicom". */
export function multipartRelated(files: StowFile[]): { contentType: string; body: Buffer } {
  const boundary = `facet-${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const f of files) {
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Type: ${f.contentType ?? 'application/dicom'}\r\n\r\n`, 'latin1'),
      f.bytes,
      Buffer.from('\r\n', 'latin1'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return { contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

export interface StowAnswer {
  status: number;
  body: Record<string, any>;
  /** (0008,1199) items. */
  stored: Array<Record<string, any>>;
  /** (0008,1198) items. */
  failed: Array<Record<string, any>>;
}

/** POST /dicomweb/studies with a bearer token, parsed. */
export async function stow(url: string, token: string | null, files: StowFile[], query = ''): Promise<StowAnswer> {
  const { contentType, body } = multipartRelated(files);
  const response = await fetch(`${url}/dicomweb/studies${query}`, {
    method: 'POST',
    headers: { 'content-type': contentType, accept: 'application/dicom+json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  });
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as Record<string, any>) : {};
  return { status: response.status, body: parsed, stored: parsed['00081199']?.Value ?? [], failed: parsed['00081198']?.Value ?? [] };
}

/** The Facet code at the start of a failed item's Error Comment. */
export const failureCode = (item: Record<string, any>): string => String(item['00000902']?.Value?.[0] ?? '').split(' ')[0];
