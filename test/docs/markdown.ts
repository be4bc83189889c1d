import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The repository root. */
export const ROOT = path.resolve(__dirname, '../..');

/** The documents a user reads: the README and every docs/*.md, as paths from the root. */
export function userDocuments(): string[] {
  const docs = readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs];
}

export const readDocument = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

/** The lines outside fenced code blocks (``` or ~~~), each with its 1-based line number. */
export function proseLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let fence: string | null = null;
  text.split('\n').forEach((line, i) => {
    const marker = /^\s*(```|~~~)/.exec(line)?.[1];
    if (marker && (fence === null || fence === marker)) {
      fence = fence === null ? marker : null;
      return;
    }
    if (fence === null) out.push({ line: i + 1, text: line });
  });
  return out;
}

/** The contents of the inline code spans of a prose line. */
export const codeSpans = (line: string): string[] => [...line.matchAll(/(`+)([^`]+?)\1/g)].map((m) => m[2].trim());

export interface Link {
  line: number;
  target: string;
}

/** Every Markdown link of the prose (inline code spans blanked first: a link written inside one does not render). */
export function links(text: string): Link[] {
  return proseLines(text).flatMap(({ line, text: prose }) =>
    [...prose.replace(/(`+)[^`]+?\1/g, '``').matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => ({ line, target: m[1] })),
  );
}

/**
 * A heading's anchor as GitHub makes it: the text without its Markdown (code ticks, emphasis, link targets),
 * lower-cased, every character but letters, digits, marks, `_`, `-` and spaces dropped, spaces made hyphens.
 */
export function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a document's headings; a repeated heading gets `-1`, `-2`… as on GitHub. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { text: line } of proseLines(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.add(count ? `${base}-${count}` : base);
  }
  return out;
}

/** The lines of the Markdown table that starts at the first table line after `heading`, up to the next heading. */
export function tablesUnder(text: string, heading: string): string[][] {
  const lines = proseLines(text);
  const start = lines.findIndex((l) => l.text.trim() === heading);
  if (start < 0) return [];
  const tables: string[][] = [];
  let current: string[] | null = null;
  for (const { text: line } of lines.slice(start + 1)) {
    if (/^#{1,6}\s/.test(line)) break;
    if (line.trim().startsWith('|')) {
      current ??= [];
      current.push(line);
    } else if (current) {
      tables.push(current);
      current = null;
    }
  }
  if (current) tables.push(current);
  return tables;
}

/** The cells of a table row, without the outer pipes. */
export const cells = (row: string): string[] =>
  row
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((cell) => cell.trim());
