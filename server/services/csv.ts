import { parse } from 'csv-parse/sync';
import { IngestRejectionCode } from '../domain';
import type { Site } from '../entities';
import type { RejectedItem } from './import-result';

/** One data row of a CSV import, by lower-case column name, with its line number for the answer. */
export interface CsvRow {
  line: number;
  values: Record<string, string>;
}

/** RFC 4180 CSV with a header row (UTF-8, optional BOM); each row keeps its line number for the answer. */
export function readCsv(text: string, required: readonly string[]): { rows: CsvRow[]; rejected: RejectedItem[] } {
  let records: Array<{ record: Record<string, string>; info: { lines: number } }>;
  try {
    records = parse(text, {
      columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()),
      bom: true,
      skip_empty_lines: true,
      trim: true,
      info: true,
    });
  } catch (error) {
    return { rows: [], rejected: [{ source: 'file', code: IngestRejectionCode.MALFORMED_CSV, reason: (error as Error).message }] };
  }
  const header = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/, 1)[0]
    .split(',')
    .map((h) => h.trim().toLowerCase().replace(/^"|"$/g, ''));
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length) {
    return {
      rows: [],
      rejected: [{ source: 'line 1', code: IngestRejectionCode.MALFORMED_CSV, reason: `The header lacks the column(s) ${missing.join(', ')}` }],
    };
  }
  return { rows: records.map((r) => ({ line: r.info.lines, values: r.record })), rejected: [] };
}

/** A cell holding a non-negative whole number, as that number; anything else null. */
export const wholeNumber = (text: string | undefined): number | null => (text !== undefined && /^\d+$/.test(text) ? Number(text) : null);

/** A row's rejection before it is stored: its code and the reason in words. */
export interface RowProblem {
  code: IngestRejectionCode;
  reason: string;
}

/** The site a row names by code, when the caller may import into it (`scope`: siteScope's answer); else why not. */
export function siteOfRow(sites: ReadonlyMap<string, Site>, scope: readonly string[] | null, code: string | undefined): Site | RowProblem {
  const site = sites.get(code ?? '');
  if (!site) return { code: IngestRejectionCode.UNKNOWN_SITE, reason: `No site with code ${JSON.stringify(code ?? '')}` };
  if (scope && !scope.includes(site.id)) return { code: IngestRejectionCode.SITE_OUT_OF_SCOPE, reason: `Site ${site.code} is outside your token’s scope` };
  return site;
}
