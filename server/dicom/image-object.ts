import { textOf, type DicomDataset } from './dataset';
import { formatTag, TAGS } from './dictionary';
import { shown, type Part10File } from './reader';
import { IS_MAX, IS_MIN, textValues, vrProblem } from './vr';

/** Why an object that parsed is still not accepted. */
export type ImageRejectionCode =
  'UNSUPPORTED_SOP_CLASS' | 'UNSUPPORTED_MODALITY' | 'MISSING_ATTRIBUTE' | 'INVALID_VALUE' | 'PIXEL_LENGTH_MISMATCH' | 'BURNED_IN_ANNOTATION';

export class ImageRejection extends Error {
  constructor(
    readonly code: ImageRejectionCode,
    message: string,
  ) {
    super(message);
    this.name = 'ImageRejection';
  }
}

/** Image storage SOP classes (PS3.4 B.5) of the radiography, CT and MR families Facet grades. */
const IMAGE_SOP_CLASSES = new Map<string, string>([
  ['1.2.840.10008.5.1.4.1.1.1', 'Computed Radiography Image'],
  ['1.2.840.10008.5.1.4.1.1.1.1', 'Digital X-Ray Image - For Presentation'],
  ['1.2.840.10008.5.1.4.1.1.1.1.1', 'Digital X-Ray Image - For Processing'],
  ['1.2.840.10008.5.1.4.1.1.2', 'CT Image'],
  ['1.2.840.10008.5.1.4.1.1.2.1', 'Enhanced CT Image'],
  ['1.2.840.10008.5.1.4.1.1.2.2', 'Legacy Converted Enhanced CT Image'],
  ['1.2.840.10008.5.1.4.1.1.4', 'MR Image'],
  ['1.2.840.10008.5.1.4.1.1.4.1', 'Enhanced MR Image'],
  ['1.2.840.10008.5.1.4.1.1.4.3', 'Enhanced MR Color Image'],
  ['1.2.840.10008.5.1.4.1.1.4.4', 'Legacy Converted Enhanced MR Image'],
  ['1.2.840.10008.5.1.4.1.1.7', 'Secondary Capture Image'],
  ['1.2.840.10008.5.1.4.1.1.7.2', 'Multi-frame Grayscale Byte Secondary Capture Image'],
  ['1.2.840.10008.5.1.4.1.1.7.3', 'Multi-frame Grayscale Word Secondary Capture Image'],
]);

/** DICOM modality codes and the study modality they count as. */
const MODALITIES: Record<string, 'XR' | 'CT' | 'MR'> = { CR: 'XR', DX: 'XR', DR: 'XR', RG: 'XR', XR: 'XR', CT: 'CT', MR: 'MR' };

/** What the database records of a stored image. */
export interface ImageSummary {
  sopClassUid: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  modality: 'XR' | 'CT' | 'MR';
  rows: number;
  columns: number;
  numberOfFrames: number;
  bitsAllocated: number;
  samplesPerPixel: number;
  photometricInterpretation: string;
  transferSyntaxUid: string;
  studyDate: string | null;
  seriesNumber: number | null;
  instanceNumber: number | null;
}

/** An attribute Facet keeps in a database column: the VR PS3.6 gives it (checked in a test against dcmjs's dictionary). */
export interface StoredAttribute {
  tag: number;
  name: string;
  vr: 'UI' | 'CS' | 'US' | 'IS' | 'DA';
}

/** Every attribute the database records of an image, and its column (entities/instance, series, study). */
export const STORED_ATTRIBUTES = {
  sopClassUid: { tag: TAGS.sopClassUid, name: 'SOP Class UID', vr: 'UI' },
  sopInstanceUid: { tag: TAGS.sopInstanceUid, name: 'SOP Instance UID', vr: 'UI' },
  studyInstanceUid: { tag: TAGS.studyInstanceUid, name: 'Study Instance UID', vr: 'UI' },
  seriesInstanceUid: { tag: TAGS.seriesInstanceUid, name: 'Series Instance UID', vr: 'UI' },
  modality: { tag: TAGS.modality, name: 'Modality', vr: 'CS' },
  photometricInterpretation: { tag: TAGS.photometricInterpretation, name: 'Photometric Interpretation', vr: 'CS' },
  rows: { tag: TAGS.rows, name: 'Rows', vr: 'US' },
  columns: { tag: TAGS.columns, name: 'Columns', vr: 'US' },
  bitsAllocated: { tag: TAGS.bitsAllocated, name: 'Bits Allocated', vr: 'US' },
  samplesPerPixel: { tag: TAGS.samplesPerPixel, name: 'Samples per Pixel', vr: 'US' },
  numberOfFrames: { tag: TAGS.numberOfFrames, name: 'Number of Frames', vr: 'IS' },
  seriesNumber: { tag: TAGS.seriesNumber, name: 'Series Number', vr: 'IS' },
  instanceNumber: { tag: TAGS.instanceNumber, name: 'Instance Number', vr: 'IS' },
  studyDate: { tag: TAGS.studyDate, name: 'Study Date', vr: 'DA' },
} as const satisfies Record<string, StoredAttribute>;

const invalid = (a: StoredAttribute, problem: string): ImageRejection => new ImageRejection('INVALID_VALUE', `${formatTag(a.tag)} ${a.name} ${problem}`);

/**
 * The raw element of a stored attribute, its VR checked against PS3.6: an explicit VR that contradicts the
 * dictionary (Rows as UL, a UID as LO) is refused rather than read another way; UN (a VR the sender did not know)
 * is read as the dictionary's VR.
 */
function rawOf(dataset: DicomDataset, a: StoredAttribute): Buffer | undefined {
  const e = dataset.get(a.tag);
  if (!e) return undefined;
  if ((e.vr !== a.vr && e.vr !== 'UN') || !e.bytes) throw invalid(a, `has VR ${shown(e.vr)}; PS3.6 gives ${a.vr}`);
  return e.bytes;
}

/** The one value of a text attribute, checked against its VR (length, characters, value multiplicity 1), or undefined when absent or empty. */
function textValue(dataset: DicomDataset, a: StoredAttribute): string | undefined {
  const bytes = rawOf(dataset, a);
  if (!bytes) return undefined;
  // The retired ACR-NEMA date form YYYY.MM.DD (PS3.5 6.2, DA), still found in old archives.
  const text = a.vr === 'DA' ? bytes.toString('latin1').replace(/^(\s*\d{4})\.(\d{2})\.(\d{2})/, '$1$2$3') : bytes.toString('latin1');
  const problem = vrProblem(a.vr, Buffer.from(text.length % 2 ? `${text} ` : text, 'latin1'));
  if (problem) throw invalid(a, problem);
  const values = textValues(a.vr, text);
  if (values.length > 1) throw invalid(a, `holds ${values.length} values; it takes one`);
  return values[0].trim() || undefined;
}

/** The one value of a US attribute (0 to 65535 by its VR), or undefined when absent or empty. */
function usValue(dataset: DicomDataset, a: StoredAttribute, littleEndian: boolean): number | undefined {
  const bytes = rawOf(dataset, a);
  if (!bytes || bytes.length === 0) return undefined;
  if (bytes.length !== 2) throw invalid(a, `is ${bytes.length} bytes; one US value is 2`);
  return littleEndian ? bytes.readUInt16LE(0) : bytes.readUInt16BE(0);
}

/** The one value of an IS attribute within IS's range (-2^31 to 2^31 - 1), or undefined when absent or empty. */
function isValue(dataset: DicomDataset, a: StoredAttribute): number | undefined {
  const text = textValue(dataset, a);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < IS_MIN || value > IS_MAX) throw invalid(a, `is ${shown(text)}, outside the range of IS (-2^31 to 2^31 - 1)`);
  return value;
}

function requiredText(dataset: DicomDataset, a: StoredAttribute): string {
  const value = textValue(dataset, a);
  if (value === undefined) throw new ImageRejection('MISSING_ATTRIBUTE', `${a.name} is missing`);
  return value;
}

function requiredUs(dataset: DicomDataset, a: StoredAttribute, littleEndian: boolean): number {
  const value = usValue(dataset, a, littleEndian);
  if (!value) throw new ImageRejection('MISSING_ATTRIBUTE', `${a.name} is missing or zero`);
  return value;
}

/** Photometric interpretations whose native pixel data holds two samples per pixel: Y for each, Cb and Cr for each pair (PS3.3 C.7.6.3.1.2). */
const HORIZONTALLY_SUBSAMPLED = new Set(['YBR_FULL_422', 'YBR_PARTIAL_422']);

/**
 * Checks that a parsed object is an image Facet can grade: an image SOP class, a radiograph, CT or MR, the
 * geometry attributes, and (for native pixel data) at least rows x columns x samples x frames x bits/8 bytes.
 * Each attribute the database records is checked against its VR first (INVALID_VALUE), so every value that
 * reaches a column fits it.
 */
export function inspectImage(file: Part10File): ImageSummary {
  const { dataset, transferSyntax } = file;
  const le = transferSyntax.littleEndian;
  const A = STORED_ATTRIBUTES;
  const sopClassUid = requiredText(dataset, A.sopClassUid);
  if (!IMAGE_SOP_CLASSES.has(sopClassUid)) {
    throw new ImageRejection('UNSUPPORTED_SOP_CLASS', `SOP Class ${shown(sopClassUid)} is not an image storage class Facet grades`);
  }
  const dicomModality = requiredText(dataset, A.modality);
  const modality = MODALITIES[dicomModality];
  if (!modality) throw new ImageRejection('UNSUPPORTED_MODALITY', `Modality ${shown(dicomModality)} is outside XR, CT, MR`);
  const rows = requiredUs(dataset, A.rows, le);
  const columns = requiredUs(dataset, A.columns, le);
  const bitsAllocated = requiredUs(dataset, A.bitsAllocated, le);
  const samplesPerPixel = usValue(dataset, A.samplesPerPixel, le) ?? 1;
  if (samplesPerPixel === 0) throw invalid(A.samplesPerPixel, 'is 0');
  const numberOfFrames = isValue(dataset, A.numberOfFrames) ?? 1;
  if (numberOfFrames === 0) throw new ImageRejection('MISSING_ATTRIBUTE', 'Number of Frames is 0');
  if (numberOfFrames < 0) throw invalid(A.numberOfFrames, `is ${numberOfFrames}`);
  const photometricInterpretation = textValue(dataset, A.photometricInterpretation) ?? 'MONOCHROME2';
  // Text burned into the pixels (names, IDs on screenshots and scans) cannot be removed by changing attributes.
  if ((textOf(dataset, TAGS.burnedInAnnotation) ?? '').toUpperCase() === 'YES') {
    throw new ImageRejection('BURNED_IN_ANNOTATION', 'Burned In Annotation is YES: the pixels may show identifying text');
  }
  const pixelData = dataset.get(TAGS.pixelData);
  if (!pixelData) throw new ImageRejection('MISSING_ATTRIBUTE', 'Pixel Data is missing');
  if (transferSyntax.encapsulated) {
    if (!pixelData.fragments || pixelData.fragments.slice(1).every((f) => f.length === 0)) {
      throw new ImageRejection('PIXEL_LENGTH_MISMATCH', 'Encapsulated Pixel Data holds no fragment');
    }
  } else {
    const samplesStored = samplesPerPixel === 3 && HORIZONTALLY_SUBSAMPLED.has(photometricInterpretation) ? 2 : samplesPerPixel;
    // Numbers, not bigints: past 2^53 the product is far above any length a buffer can have, so the comparison holds.
    const expected = Math.ceil((rows * columns * samplesStored * numberOfFrames * bitsAllocated) / 8);
    const actual = pixelData.bytes?.length ?? 0;
    // Values have even lengths, and PS3.5 8.1.1 allows trailing padding after the last frame: at least, not exactly.
    if (actual < expected || pixelData.fragments) {
      throw new ImageRejection(
        'PIXEL_LENGTH_MISMATCH',
        `Pixel Data holds ${actual} bytes; ${rows} rows x ${columns} columns x ${samplesStored} samples x ${numberOfFrames} frames x ${bitsAllocated} bits needs ${expected}`,
      );
    }
  }
  return {
    sopClassUid,
    sopInstanceUid: requiredText(dataset, A.sopInstanceUid),
    studyInstanceUid: requiredText(dataset, A.studyInstanceUid),
    seriesInstanceUid: requiredText(dataset, A.seriesInstanceUid),
    modality,
    rows,
    columns,
    numberOfFrames,
    bitsAllocated,
    samplesPerPixel,
    photometricInterpretation,
    transferSyntaxUid: transferSyntax.uid,
    studyDate: studyDateOf(dataset),
    seriesNumber: isValue(dataset, A.seriesNumber) ?? null,
    instanceNumber: isValue(dataset, A.instanceNumber) ?? null,
  };
}

/** Study Date as ISO, or null when absent or empty; a value that is not a calendar date is INVALID_VALUE. */
function studyDateOf(dataset: DicomDataset): string | null {
  const text = textValue(dataset, STORED_ATTRIBUTES.studyDate);
  if (text === undefined) return null;
  const iso = isoDate(text);
  if (!iso) throw invalid(STORED_ATTRIBUTES.studyDate, `is ${shown(text)}, not a date`);
  return iso;
}

/** DICOM DA (YYYYMMDD) to ISO (YYYY-MM-DD), or null when it is not a calendar date from year 1 to 9999. */
export function isoDate(da: string | undefined): string | null {
  const match = da ? /^(\d{4})(\d{2})(\d{2})$/.exec(da.trim()) : null;
  if (!match) return null;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(0);
  date.setUTCFullYear(y, m - 1, d);
  if (y < 1 || date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return null;
  return `${match[1]}-${match[2]}-${match[3]}`;
}
