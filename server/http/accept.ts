import { mediaTypeParameters } from './multipart-related';

/** One media range of an Accept header (RFC 9110 12.5.1): type/subtype lower-cased, its parameters, its weight. */
export interface MediaRange {
  type: string;
  params: Record<string, string>;
  q: number;
}

/**
 * The media ranges of an Accept header, best first (by q, then in the order given); ranges with q=0 are refused
 * ranges and left out. An absent or empty header is `*\/*`. Commas inside quoted parameter values are kept.
 */
export function acceptedRanges(header: string | undefined): MediaRange[] {
  if (!header || !header.trim()) return [{ type: '*/*', params: {}, q: 1 }];
  const ranges: MediaRange[] = [];
  for (const part of header.match(/(?:[^,"]|"[^"]*")+/g) ?? []) {
    const { type, params } = mediaTypeParameters(part.trim());
    if (!type) continue;
    const q = params.q === undefined ? 1 : Number(params.q);
    if (!Number.isFinite(q) || q <= 0) continue;
    ranges.push({ type, params, q });
  }
  return ranges
    .map((r, i) => ({ r, i }))
    .sort((a, b) => b.r.q - a.r.q || a.i - b.i)
    .map(({ r }) => r);
}

/** True when `range` covers the media type `type` (`*\/*`, `image/*`, or the type itself). */
export function covers(range: string, type: string): boolean {
  if (range === '*/*' || range === type) return true;
  return range.endsWith('/*') && type.startsWith(range.slice(0, -1));
}

/** The first of `offered` the ranges accept, trying the ranges best first; null when none is acceptable. */
export function negotiate<T extends string>(ranges: MediaRange[], offered: readonly T[]): T | null {
  for (const range of ranges) {
    const match = offered.find((type) => covers(range.type, type));
    if (match) return match;
  }
  return null;
}
