import { keywordOfTag, tagOfKeyword } from '../../dicom/dictionary';
import { ErrorCode } from '../../domain';
import { AppError } from '../../errors/app-error';

/** The level a QIDO-RS search answers at (PS3.18 10.6): studies, series or instances. */
export type QidoLevel = 'study' | 'series' | 'instance';

/** A wildcard pattern (PS3.4 C.2.2.2.4): `*` any run of characters, `?` one character; literal otherwise. */
export interface TextMatch {
  pattern: string;
  /** The pattern as a SQL LIKE pattern (escape character `\`). */
  like: string;
}

/** Everything a QIDO-RS request asks, checked: matching keys, the attributes to return, the page. */
export interface QidoQuery {
  level: QidoLevel;
  studyInstanceUids?: string[];
  seriesInstanceUids?: string[];
  sopInstanceUids?: string[];
  sopClassUids?: string[];
  patientId?: TextMatch;
  patientName?: TextMatch;
  accessionNumber?: TextMatch;
  studyDescription?: TextMatch;
  seriesDescription?: TextMatch;
  /** ISO dates (YYYY-MM-DD), either end open. */
  studyDate?: { from: string | null; to: string | null };
  /** Modality at series and instance level, Modalities in Study at study level. */
  modalities?: string[];
  seriesNumber?: number;
  instanceNumber?: number;
  /** `includefield=all`. */
  includeAll: boolean;
  /** The keywords `includefield` named. */
  includeFields: string[];
  /** The matching keys the request gave (each is returned, PS3.18 8.3.4.1). */
  matchedKeywords: string[];
  limit: number;
  offset: number;
  /** PS3.18 8.3.4.x Warning texts: what was asked and not done as asked (fuzzy matching, unsupported return keys, a capped limit). */
  warnings: string[];
}

/** The most results one request answers; a larger `limit` is capped with a warning (PS3.18 8.3.4.4). */
export const QIDO_MAX_LIMIT = 1000;

type Kind = 'uid' | 'text' | 'date' | 'cs' | 'integer';
interface MatchingKey {
  kind: Kind;
  /** The lowest level the key can match at (a study key matches at every level). */
  level: QidoLevel;
  /** Longest value (PS3.5 Table 6.2-1, by VR). */
  max: number;
}

/** The matching keys Facet supports, by keyword (PS3.18 Tables 10.6.1-5 to -7). */
const MATCHING_KEYS: Record<string, MatchingKey> = {
  StudyInstanceUID: { kind: 'uid', level: 'study', max: 64 },
  PatientID: { kind: 'text', level: 'study', max: 64 },
  PatientName: { kind: 'text', level: 'study', max: 64 },
  AccessionNumber: { kind: 'text', level: 'study', max: 16 },
  StudyDescription: { kind: 'text', level: 'study', max: 64 },
  StudyDate: { kind: 'date', level: 'study', max: 17 },
  ModalitiesInStudy: { kind: 'cs', level: 'study', max: 16 },
  SeriesInstanceUID: { kind: 'uid', level: 'series', max: 64 },
  Modality: { kind: 'cs', level: 'series', max: 16 },
  SeriesNumber: { kind: 'integer', level: 'series', max: 12 },
  SeriesDescription: { kind: 'text', level: 'series', max: 64 },
  SOPInstanceUID: { kind: 'uid', level: 'instance', max: 64 },
  SOPClassUID: { kind: 'uid', level: 'instance', max: 64 },
  InstanceNumber: { kind: 'integer', level: 'instance', max: 12 },
};
const RANK: Record<QidoLevel, number> = { study: 0, series: 1, instance: 2 };
const LEVEL_NAMES: Record<QidoLevel, string> = { study: 'studies', series: 'series', instance: 'instances' };

/** The keys a search at `level` matches on: its own and those of the levels above; Modalities in Study only for studies (below it, Modality). */
const matchingKeysOf = (level: QidoLevel): string[] =>
  Object.keys(MATCHING_KEYS).filter((k) => RANK[MATCHING_KEYS[k].level] <= RANK[level] && !(k === 'ModalitiesInStudy' && level !== 'study'));
const CONTROL_PARAMETERS = new Set(['limit', 'offset', 'fuzzymatching', 'includefield']);

const DICOM_UID = /^(?=.{1,64}$)(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;
/** Default repertoire without backslash (PS3.5 6.1.2.1): what LO, SH and PN may hold. */
const TEXT = /^[\x20-\x5b\x5d-\x7e\x80-\uffff]*$/;
const CS = /^[A-Z0-9 _]{1,16}$/;

export const badQuery = (parameter: string, message: string): AppError => new AppError(ErrorCode.BAD_REQUEST, message, { parameter });

/** A keyword, or a tag as eight hex digits (`0020000D`), to the keyword; undefined when it names no attribute. */
export function keywordOf(name: string): string | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(name)) return keywordOfTag(Number.parseInt(name, 16) >>> 0);
  return tagOfKeyword(name) !== undefined ? name : undefined;
}

/** The attributes a search can return, whatever the level (every other attribute is answered with a warning). */
export const RETURN_KEYWORDS = [
  'SpecificCharacterSet',
  'StudyDate',
  'StudyTime',
  'AccessionNumber',
  'InstanceAvailability',
  'ModalitiesInStudy',
  'ReferringPhysicianName',
  'StudyDescription',
  'RetrieveURL',
  'PatientName',
  'PatientID',
  'PatientBirthDate',
  'PatientSex',
  'StudyInstanceUID',
  'StudyID',
  'NumberOfStudyRelatedSeries',
  'NumberOfStudyRelatedInstances',
  'Modality',
  'SeriesDescription',
  'SeriesNumber',
  'SeriesInstanceUID',
  'NumberOfSeriesRelatedInstances',
  'SOPClassUID',
  'SOPInstanceUID',
  'InstanceNumber',
  'Rows',
  'Columns',
  'BitsAllocated',
  'NumberOfFrames',
  'SamplesPerPixel',
  'PhotometricInterpretation',
  'AvailableTransferSyntaxUID',
] as const;

/** `*` and `?` as SQL LIKE wildcards; `%`, `_` and `\` taken literally. */
export function wildcardToLike(pattern: string): string {
  return pattern
    .replace(/[\\%_]/g, (c) => `\\${c}`)
    .replace(/\*/g, '%')
    .replace(/\?/g, '_');
}

/** True when the wildcard pattern matches `value` (for attributes no column holds: an empty Accession Number). */
export function wildcardMatches(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    's',
  );
  return re.test(value);
}

/** A DA value (YYYYMMDD) as an ISO date, checked against the calendar. */
function isoDate(parameter: string, da: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da);
  const iso = m ? `${m[1]}-${m[2]}-${m[3]}` : '';
  const date = m ? new Date(`${iso}T00:00:00Z`) : null;
  if (!date || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== iso) {
    throw badQuery(parameter, `${parameter} takes a date YYYYMMDD or a range YYYYMMDD-YYYYMMDD (either end may be open)`);
  }
  return iso;
}

function single(parameter: string, value: unknown): string {
  if (Array.isArray(value)) throw badQuery(parameter, `${parameter} is given more than once`);
  if (typeof value !== 'string') throw badQuery(parameter, `${parameter} has no value`);
  return value;
}

function nonNegativeInteger(parameter: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw badQuery(parameter, `${parameter} takes a non-negative integer`);
  return Number(value);
}

/** Values separated by commas (PS3.18 8.3.4.1) or backslashes (PS3.4 list matching). */
const list = (value: string): string[] => value.split(/[,\\]/).map((v) => v.trim());

/** One matching key's value into the query; an empty value is universal matching (the attribute is returned, nothing is filtered). */
function applyKey(query: QidoQuery, keyword: string, key: MatchingKey, parameter: string, value: string): void {
  if (value === '' || (key.kind === 'text' && /^\*+$/.test(value))) return;
  if (key.kind === 'uid') {
    const uids = list(value);
    const bad = uids.find((uid) => !DICOM_UID.test(uid));
    if (bad !== undefined) throw badQuery(parameter, `${parameter} takes UIDs (digits and dots, at most 64 characters), separated by commas`);
    const field = (
      {
        StudyInstanceUID: 'studyInstanceUids',
        SeriesInstanceUID: 'seriesInstanceUids',
        SOPInstanceUID: 'sopInstanceUids',
        SOPClassUID: 'sopClassUids',
      } as const
    )[keyword as 'StudyInstanceUID'];
    query[field] = uids;
    return;
  }
  if (key.kind === 'text') {
    if (value.length > key.max || !TEXT.test(value))
      throw badQuery(parameter, `${parameter} takes at most ${key.max} characters, without control characters or a backslash`);
    const match = { pattern: value, like: wildcardToLike(value) };
    const field = (
      {
        PatientID: 'patientId',
        PatientName: 'patientName',
        AccessionNumber: 'accessionNumber',
        StudyDescription: 'studyDescription',
        SeriesDescription: 'seriesDescription',
      } as const
    )[keyword as 'PatientID'];
    query[field] = match;
    return;
  }
  if (key.kind === 'date') {
    const m = /^(\d{8})?(-)?(\d{8})?$/.exec(value);
    if (!m || (!m[2] && (!m[1] || m[3])) || (m[2] && !m[1] && !m[3])) {
      throw badQuery(parameter, `${parameter} takes a date YYYYMMDD or a range YYYYMMDD-YYYYMMDD (either end may be open)`);
    }
    const from = m[1] ? isoDate(parameter, m[1]) : null;
    const to = m[2] ? (m[3] ? isoDate(parameter, m[3]) : null) : from;
    if (from && to && from > to) throw badQuery(parameter, `${parameter}: the range ends before it starts`);
    query.studyDate = { from, to };
    return;
  }
  if (key.kind === 'cs') {
    const codes = list(value);
    if (!codes.every((c) => CS.test(c)))
      throw badQuery(parameter, `${parameter} takes code strings (A-Z, 0-9, space, underscore; at most 16), separated by commas`);
    query.modalities = codes;
    return;
  }
  if (!/^[+-]?\d{1,10}$/.test(value) || Math.abs(Number(value)) > 2 ** 31 - 1) throw badQuery(parameter, `${parameter} takes an integer (IS)`);
  if (keyword === 'SeriesNumber') query.seriesNumber = Number(value);
  else query.instanceNumber = Number(value);
}

/**
 * The query string of a QIDO-RS request (PS3.18 8.3.4) at `level`, checked: every parameter is a supported
 * matching key of this level or of a level above (by keyword or tag), `limit`, `offset`, `fuzzymatching` or
 * `includefield`, and every value has the syntax of its VR. Anything else is BAD_REQUEST naming the parameter.
 * Fuzzy matching is not offered: `fuzzymatching=true` is answered with literal matching and a warning.
 */
export function parseQidoQuery(level: QidoLevel, params: Record<string, unknown>): QidoQuery {
  const query: QidoQuery = { level, includeAll: false, includeFields: [], matchedKeywords: [], limit: QIDO_MAX_LIMIT, offset: 0, warnings: [] };
  const seen = new Set<string>();
  for (const [parameter, raw] of Object.entries(params)) {
    if (CONTROL_PARAMETERS.has(parameter)) {
      if (parameter === 'includefield') {
        for (const v of (Array.isArray(raw) ? raw : [raw]).flatMap((x) => (typeof x === 'string' ? x.split(',') : [x]))) {
          if (typeof v !== 'string' || v.trim() === '') throw badQuery('includefield', 'includefield takes keywords or tags separated by commas, or all');
          const name = v.trim();
          if (name === 'all') {
            query.includeAll = true;
            continue;
          }
          const keyword = keywordOf(name);
          if (!keyword) throw badQuery('includefield', `includefield: ${name.slice(0, 64)} names no DICOM attribute`);
          if ((RETURN_KEYWORDS as readonly string[]).includes(keyword)) query.includeFields.push(keyword);
          else query.warnings.push(`${keyword} is not a supported return key; it is not returned`);
        }
        continue;
      }
      const value = single(parameter, raw);
      if (parameter === 'limit') {
        query.limit = nonNegativeInteger(parameter, value);
        if (query.limit === 0) throw badQuery(parameter, 'limit takes an integer from 1');
        if (query.limit > QIDO_MAX_LIMIT) {
          query.warnings.push(`The limit is capped at ${QIDO_MAX_LIMIT} results`);
          query.limit = QIDO_MAX_LIMIT;
        }
      } else if (parameter === 'offset') query.offset = nonNegativeInteger(parameter, value);
      else if (value === 'true') query.warnings.push('The fuzzymatching parameter is not supported. Only literal matching has been performed.');
      else if (value !== 'false') throw badQuery(parameter, 'fuzzymatching takes true or false');
      continue;
    }
    const keyword = keywordOf(parameter);
    if (!keyword) throw badQuery(parameter.slice(0, 64), `${parameter.slice(0, 64)} is neither a DICOM attribute nor a QIDO-RS parameter`);
    const key = MATCHING_KEYS[keyword];
    if (!key || !matchingKeysOf(level).includes(keyword)) {
      throw badQuery(parameter, `${keyword} is not a matching key for a search of ${LEVEL_NAMES[level]}; these are: ${matchingKeysOf(level).join(', ')}`);
    }
    if (seen.has(keyword)) throw badQuery(parameter, `${keyword} is given more than once`);
    seen.add(keyword);
    query.matchedKeywords.push(keyword);
    applyKey(query, keyword, key, parameter, single(parameter, raw));
  }
  return query;
}
