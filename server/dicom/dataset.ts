/**
 * A DICOM data set as Facet reads and writes it: elements by tag, values as raw bytes in the file's byte order
 * (so pixel data and anything not touched by de-identification is written back byte for byte), sequences as
 * item lists, encapsulated pixel data as its fragments.
 */
export interface DicomElement {
  tag: number;
  vr: string;
  /** Raw value bytes (not for SQ or encapsulated pixel data). */
  bytes?: Buffer;
  /** SQ items. */
  items?: DicomDataset[];
  /** Encapsulated pixel data: the basic offset table, then one buffer per fragment. */
  fragments?: Buffer[];
  /** A sequence read from a UN value: its inner VRs are dictionary guesses (de-identification drops it). */
  fromUnknown?: boolean;
}

export type DicomDataset = Map<number, DicomElement>;

/** VRs whose values are text (padded with a space, or NUL for UI). */
const TEXT_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT']);
export const isTextVr = (vr: string): boolean => TEXT_VRS.has(vr);

/** The text of an element without padding; multiple values joined by backslash as in the file. */
export function textOf(dataset: DicomDataset, t: number): string | undefined {
  const element = dataset.get(t);
  if (!element?.bytes) return undefined;
  return element.bytes
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
}

/** An unsigned integer value (US or UL) in the data set's byte order. */
export function uintOf(dataset: DicomDataset, t: number, littleEndian: boolean): number | undefined {
  const element = dataset.get(t);
  if (!element?.bytes || element.bytes.length === 0) return undefined;
  const b = element.bytes;
  if (b.length === 4 && (element.vr === 'UL' || element.vr === 'SL' || element.vr === 'UN')) return littleEndian ? b.readUInt32LE(0) : b.readUInt32BE(0);
  if (b.length >= 2 && (element.vr === 'US' || element.vr === 'SS' || element.vr === 'UN' || element.vr === 'OW'))
    return littleEndian ? b.readUInt16LE(0) : b.readUInt16BE(0);
  if (element.vr !== 'IS' && element.vr !== 'DS') return undefined;
  // Implicit VR files may encode IS as text.
  const text = textOf(dataset, t);
  return text ? Number.parseInt(text, 10) : undefined;
}

/** Text padded to an even length as PS3.5 requires (NUL for UI, space otherwise). */
export function textBytes(vr: string, text: string): Buffer {
  const raw = Buffer.from(text, 'latin1');
  return raw.length % 2 === 0 ? raw : Buffer.concat([raw, Buffer.from(vr === 'UI' ? '\0' : ' ', 'latin1')]);
}

export const textElement = (t: number, vr: string, text: string): DicomElement => ({ tag: t, vr, bytes: textBytes(vr, text) });
