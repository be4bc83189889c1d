import { isTextVr, textBytes, textElement, textOf, type DicomDataset, type DicomElement } from './dataset';
import { isKnownTag, isPrivate, TAGS } from './dictionary';
import table from './ps3.15-table-e1-1.json';
import type { Part10File } from './reader';
import { storageSyntax } from './transfer-syntax';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, replaceUid } from './uid';
import { binaryValueSize, vrProblem } from './vr';

/** One action of PS3.15 Table E.1-1 after the options Facet applies are resolved. */
type Action = 'D' | 'Z' | 'X' | 'K' | 'C' | 'U';

interface ProfileRow {
  tag: string;
  basic: string;
  patchars: string;
  longmod: string;
}

/**
 * Combined codes depend on the attribute's type in the IOD; the stricter action that keeps any IOD valid is
 * the one that leaves a value in place (a dummy, an empty value, a new UID), never removal.
 */
const COMBINED: Record<string, Action> = { 'X/Z': 'Z', 'X/D': 'D', 'Z/D': 'D', 'X/Z/D': 'D', 'X/Z/U*': 'U', 'X/Z/U\\*': 'U' };

function resolve(row: ProfileRow): Action {
  // Options in effect: Retain Patient Characteristics, Retain Longitudinal Temporal Information (Modified Dates).
  const code = (row.patchars || row.longmod || row.basic).trim();
  const action = COMBINED[code] ?? code;
  if (!['D', 'Z', 'X', 'K', 'C', 'U'].includes(action)) throw new Error(`Unknown PS3.15 action ${code} for ${row.tag}`);
  return action as Action;
}

interface MaskedRule {
  value: number;
  mask: number;
  action: Action;
}

/** The table as exact tags plus masked ones such as (50xx,xxxx) curves and (60xx,4000) overlay comments. */
function loadProfile(): { exact: Map<number, Action>; masked: MaskedRule[] } {
  const exact = new Map<number, Action>();
  const masked: MaskedRule[] = [];
  for (const row of table as ProfileRow[]) {
    // The row for all private attributes ("(gggg,eeee) where gggg is odd", X) is applied by isPrivate().
    if (row.tag.includes('gggg')) continue;
    const hex = row.tag.replace(/[(),\s]/g, '').toLowerCase();
    if (!/^[0-9a-fx]{8}$/.test(hex)) throw new Error(`Unreadable tag ${row.tag} in the PS3.15 table`);
    const action = resolve(row);
    if (hex.includes('x')) {
      masked.push({
        value: Number.parseInt(hex.replace(/x/g, '0'), 16) >>> 0,
        mask: Number.parseInt(hex.replace(/[0-9a-f]/g, 'f').replace(/x/g, '0'), 16) >>> 0,
        action,
      });
    } else {
      exact.set(Number.parseInt(hex, 16) >>> 0, action);
    }
  }
  return { exact, masked };
}

const PROFILE = loadProfile();

export function profileAction(t: number): Action | undefined {
  return PROFILE.exact.get(t) ?? PROFILE.masked.find((r) => (t & r.mask) >>> 0 === r.value)?.action;
}

export interface DeidentifyOptions {
  /** The node's key for UID replacement (see uid.ts). */
  uidKey: Buffer;
  /** Written as Patient's Name and Patient ID. */
  pseudonym: string;
  /** Days added to every date (negative: earlier), the same for all of a patient's objects. */
  dateShiftDays: number;
}

/** Written as De-identification Method (0012,0063), an LO: at most 64 characters. */
export const DEIDENTIFICATION_METHOD = 'Facet: PS3.15 Basic Profile; Retain Pat Chars; Modified Dates';

const DUMMY_TEXT: Record<string, string> = {
  DA: '19000101',
  TM: '000000',
  DT: '19000101000000',
  AS: '000Y',
  DS: '0',
  IS: '0',
  UR: 'urn:facet:removed',
};

function shiftDate(yyyymmdd: string, days: number): string {
  const y = Number(yyyymmdd.slice(0, 4));
  const m = Number(yyyymmdd.slice(4, 6));
  const d = Number(yyyymmdd.slice(6, 8));
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(y, m - 1, d);
  if (y < 1 || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return DUMMY_TEXT.DA;
  date.setUTCDate(date.getUTCDate() + days);
  // A DA holds years 1 to 9999; a shift past either end has no date to write.
  const year = date.getUTCFullYear();
  if (year < 1 || year > 9999) return DUMMY_TEXT.DA;
  const pad = (n: number, width: number) => String(n).padStart(width, '0');
  return `${pad(year, 4)}${pad(date.getUTCMonth() + 1, 2)}${pad(date.getUTCDate(), 2)}`;
}

/** What may follow the date in a DT (PS3.5 Table 6.2-1): HHMMSS.FFFFFF, each part optional from the right, and a UTC offset. */
const DT_TIME = /^(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?([+-]\d{4})?$/;

/**
 * Every date of a DA or DT value shifted by `days` (multiple values, ranges and the retired "YYYY.MM.DD" form
 * too); a value that is not a date becomes the dummy date, so no true date can survive by being malformed.
 */
export function shiftDateValue(vr: 'DA' | 'DT', text: string, days: number): string {
  return text
    .split('\\')
    .map((value) =>
      value
        .split('-')
        .map((token) => {
          const t = token.trim();
          if (t === '') return t;
          const compact = /^\d{4}\.\d{2}\.\d{2}$/.test(t) ? t.replace(/\./g, '') : t;
          const match = /^(\d{8})(.*)$/.exec(compact);
          if (!match || (vr === 'DA' && match[2] !== '') || !DT_TIME.test(match[2])) return vr === 'DA' ? DUMMY_TEXT.DA : DUMMY_TEXT.DT;
          return shiftDate(match[1], days) + (vr === 'DT' ? match[2] : '');
        })
        .join('-'),
    )
    .join('\\');
}

/** UIDs of the DICOM standard itself (SOP classes, transfer syntaxes, coding schemes) identify nothing. */
const STANDARD_UID = /^1\.2\.840\.10008\./;

/**
 * Applies the Basic Application Level Confidentiality Profile (PS3.15 Annex E) with the Retain Patient
 * Characteristics and Retain Longitudinal Temporal Information with Modified Dates options, to every level of
 * nesting; removes all private attributes; replaces UIDs by keyed hashes; rebuilds the File Meta; records the
 * method in (0012,0062-0064) and (0028,0303). Pixel data is not touched; a deflated data set comes out inflated
 * (see storageSyntax).
 */
export function deidentify(file: Part10File, options: DeidentifyOptions): Part10File {
  const uid = (text: string) =>
    text
      .split('\\')
      .map((u) => (u && !STANDARD_UID.test(u) ? replaceUid(options.uidKey, u) : u))
      .join('\\');

  const cleanElement = (e: DicomElement): DicomElement | null => {
    const group = e.tag >>> 16;
    // Private attributes; group lengths (stale once elements go); overlays, whose text and planes may name the patient;
    // attributes outside the data dictionary and UN values, whose content cannot be known to be safe.
    if (isPrivate(e.tag) || (e.tag & 0xffff) === 0 || (group >= 0x6000 && group <= 0x60ff)) return null;
    if (e.fromUnknown || e.vr === 'UN' || !isKnownTag(e.tag)) return null;
    const action = profileAction(e.tag);
    if (e.items) {
      if (action === 'X') return null;
      // A sequence to be replaced by a dummy keeps nothing of the original: its items may hold any text.
      if (action === 'Z' || action === 'D') return { tag: e.tag, vr: 'SQ', items: [] };
      return { tag: e.tag, vr: 'SQ', items: e.items.map(cleanDataset) };
    }
    if (e.fragments) return e;
    const text = e.bytes && isTextVr(e.vr) ? e.bytes.toString('latin1').replace(/[\0 ]+$/, '') : null;
    const shifted = () => {
      const bytes = textBytes(e.vr, shiftDateValue(e.vr as 'DA' | 'DT', text ?? '', options.dateShiftDays));
      // A range (query syntax, not a stored value) or a date of an over-long value stays invalid once shifted: the dummy instead.
      return { tag: e.tag, vr: e.vr, bytes: vrProblem(e.vr, bytes) ? textBytes(e.vr, DUMMY_TEXT[e.vr]) : bytes };
    };
    if (!action || action === 'K') {
      // Attributes the table keeps, or does not list, still carry dates and instance UIDs: shift and replace them.
      if (text !== null && (e.vr === 'DA' || e.vr === 'DT')) return shifted();
      if (text !== null && e.vr === 'UI') return { tag: e.tag, vr: e.vr, bytes: textBytes('UI', uid(text)) };
      return e;
    }
    switch (action) {
      case 'X':
        return null;
      case 'Z':
        return { tag: e.tag, vr: e.vr, bytes: Buffer.alloc(0) };
      case 'U':
        return text === null ? null : { tag: e.tag, vr: e.vr, bytes: textBytes(e.vr, uid(text)) };
      case 'C':
        if (text !== null && (e.vr === 'DA' || e.vr === 'DT')) return shifted();
        if (e.vr === 'TM') return e;
        // Cleaning free text automatically is not possible; removing it is the safe reading of "clean".
        return null;
      case 'D':
        // A binary dummy: zeros, as long as the value was, or one value of the VR.
        if (text === null) return { tag: e.tag, vr: e.vr, bytes: Buffer.alloc(e.bytes?.length || binaryValueSize(e.vr)) };
        if (e.vr === 'UI') return { tag: e.tag, vr: e.vr, bytes: textBytes('UI', uid(text)) };
        return { tag: e.tag, vr: e.vr, bytes: textBytes(e.vr, DUMMY_TEXT[e.vr] ?? 'ANONYMIZED') };
    }
  };

  function cleanDataset(dataset: DicomDataset): DicomDataset {
    const out: DicomDataset = new Map();
    for (const [t, e] of dataset) {
      const cleaned = cleanElement(e);
      if (cleaned) out.set(t, cleaned);
    }
    return out;
  }

  const dataset = cleanDataset(file.dataset);
  dataset.set(TAGS.patientName, textElement(TAGS.patientName, 'PN', options.pseudonym));
  dataset.set(TAGS.patientId, textElement(TAGS.patientId, 'LO', options.pseudonym));
  dataset.set(TAGS.patientIdentityRemoved, textElement(TAGS.patientIdentityRemoved, 'CS', 'YES'));
  dataset.set(TAGS.deidentificationMethod, textElement(TAGS.deidentificationMethod, 'LO', DEIDENTIFICATION_METHOD));
  const code = (value: string, meaning: string): DicomDataset =>
    new Map([
      [TAGS.codeValue, textElement(TAGS.codeValue, 'SH', value)],
      [TAGS.codingSchemeDesignator, textElement(TAGS.codingSchemeDesignator, 'SH', 'DCM')],
      [TAGS.codeMeaning, textElement(TAGS.codeMeaning, 'LO', meaning)],
    ]);
  dataset.set(TAGS.deidentificationMethodCodeSequence, {
    tag: TAGS.deidentificationMethodCodeSequence,
    vr: 'SQ',
    items: [
      code('113100', 'Basic Application Confidentiality Profile'),
      code('113107', 'Retain Longitudinal Temporal Information Modified Dates Option'),
      code('113108', 'Retain Patient Characteristics Option'),
    ],
  });
  dataset.set(TAGS.longitudinalTemporalInformationModified, textElement(TAGS.longitudinalTemporalInformationModified, 'CS', 'MODIFIED'));

  const sopClassUid = textOf(dataset, TAGS.sopClassUid) ?? '';
  const sopInstanceUid = textOf(dataset, TAGS.sopInstanceUid) ?? '';
  const meta: DicomDataset = new Map<number, DicomElement>([
    [TAGS.fileMetaVersion, { tag: TAGS.fileMetaVersion, vr: 'OB', bytes: Buffer.from([0, 1]) }],
    [TAGS.mediaStorageSopClassUid, textElement(TAGS.mediaStorageSopClassUid, 'UI', sopClassUid)],
    [TAGS.mediaStorageSopInstanceUid, textElement(TAGS.mediaStorageSopInstanceUid, 'UI', sopInstanceUid)],
    [TAGS.transferSyntaxUid, textElement(TAGS.transferSyntaxUid, 'UI', storageSyntax(file.transferSyntax).uid)],
    [TAGS.implementationClassUid, textElement(TAGS.implementationClassUid, 'UI', IMPLEMENTATION_CLASS_UID)],
    [TAGS.implementationVersionName, textElement(TAGS.implementationVersionName, 'SH', IMPLEMENTATION_VERSION_NAME)],
  ]);
  return { meta, dataset, transferSyntax: storageSyntax(file.transferSyntax) };
}
