import { data } from 'dcmjs';

/** `gggg,eeee` as one number: group in the high 16 bits. */
export const tag = (group: number, element: number): number => ((group << 16) | element) >>> 0;
export const groupOf = (t: number): number => t >>> 16;
export const elementOf = (t: number): number => t & 0xffff;
export const formatTag = (t: number): string =>
  `(${groupOf(t).toString(16).padStart(4, '0').toUpperCase()},${elementOf(t).toString(16).padStart(4, '0').toUpperCase()})`;

export const isPrivate = (t: number): boolean => (groupOf(t) & 1) === 1;

/** dcmjs writes ambiguous VRs as lower-case pseudo-VRs. */
const PSEUDO_VRS: Record<string, string> = { xs: 'US', ox: 'OW', lt: 'OW', up: 'UL', ot: 'OW' };

/** True for attributes of the PS3.6 dictionary (standard or retired). */
export function isKnownTag(t: number): boolean {
  return elementOf(t) === 0 || Boolean((data.DicomMetaDictionary.dictionary as Record<string, unknown>)[formatTag(t)]);
}

/**
 * The VR of a standard attribute, for Implicit VR files (which do not carry VRs), from dcmjs's copy of the
 * PS3.6 data dictionary. Unknown and private attributes are UN.
 */
export function vrOf(t: number): string {
  if (elementOf(t) === 0) return 'UL'; // group lengths
  const entry = (data.DicomMetaDictionary.dictionary as Record<string, { vr?: string } | undefined>)[formatTag(t)];
  const vr = entry?.vr ?? 'UN';
  // Dictionary entries such as "US or SS" or "OB or OW", and dcmjs's pseudo-VRs for those: the usual encoding.
  const first = vr.split(/\s+or\s+|\|/)[0].trim();
  return PSEUDO_VRS[first] ?? (first || 'UN');
}

/** Tags used by the ingest pipeline. */
export const TAGS = {
  itemStart: tag(0xfffe, 0xe000),
  itemEnd: tag(0xfffe, 0xe00d),
  sequenceEnd: tag(0xfffe, 0xe0dd),
  fileMetaGroupLength: tag(0x0002, 0x0000),
  fileMetaVersion: tag(0x0002, 0x0001),
  mediaStorageSopClassUid: tag(0x0002, 0x0002),
  mediaStorageSopInstanceUid: tag(0x0002, 0x0003),
  transferSyntaxUid: tag(0x0002, 0x0010),
  implementationClassUid: tag(0x0002, 0x0012),
  implementationVersionName: tag(0x0002, 0x0013),
  sopClassUid: tag(0x0008, 0x0016),
  sopInstanceUid: tag(0x0008, 0x0018),
  studyDate: tag(0x0008, 0x0020),
  modality: tag(0x0008, 0x0060),
  studyDescription: tag(0x0008, 0x1030),
  seriesDescription: tag(0x0008, 0x103e),
  patientName: tag(0x0010, 0x0010),
  patientId: tag(0x0010, 0x0020),
  patientIdentityRemoved: tag(0x0012, 0x0062),
  deidentificationMethod: tag(0x0012, 0x0063),
  deidentificationMethodCodeSequence: tag(0x0012, 0x0064),
  codeValue: tag(0x0008, 0x0100),
  codingSchemeDesignator: tag(0x0008, 0x0102),
  codeMeaning: tag(0x0008, 0x0104),
  studyInstanceUid: tag(0x0020, 0x000d),
  seriesInstanceUid: tag(0x0020, 0x000e),
  seriesNumber: tag(0x0020, 0x0011),
  instanceNumber: tag(0x0020, 0x0013),
  samplesPerPixel: tag(0x0028, 0x0002),
  photometricInterpretation: tag(0x0028, 0x0004),
  numberOfFrames: tag(0x0028, 0x0008),
  rows: tag(0x0028, 0x0010),
  columns: tag(0x0028, 0x0011),
  bitsAllocated: tag(0x0028, 0x0100),
  longitudinalTemporalInformationModified: tag(0x0028, 0x0303),
  burnedInAnnotation: tag(0x0028, 0x0301),
  specificCharacterSet: tag(0x0008, 0x0005),
  pixelData: tag(0x7fe0, 0x0010),
  floatPixelData: tag(0x7fe0, 0x0008),
  doubleFloatPixelData: tag(0x7fe0, 0x0009),
} as const;

/** The tag of a PS3.6 keyword (`PatientID`), from dcmjs's dictionary; undefined for a word that names no attribute. */
export function tagOfKeyword(keyword: string): number | undefined {
  const entry = Object.hasOwn(data.DicomMetaDictionary.nameMap, keyword) ? data.DicomMetaDictionary.nameMap[keyword] : undefined;
  const m = entry ? /^\(([0-9A-F]{4}),([0-9A-F]{4})\)$/i.exec(entry.tag) : null;
  return m ? tag(Number.parseInt(m[1], 16), Number.parseInt(m[2], 16)) : undefined;
}

/** The PS3.6 keyword of a tag (`PatientID` for 0x00100020); undefined for a tag the dictionary does not name. */
export function keywordOfTag(t: number): string | undefined {
  return data.DicomMetaDictionary.dictionary[formatTag(t)]?.name || undefined;
}
