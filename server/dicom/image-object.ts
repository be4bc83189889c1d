import { textOf, uintOf, type DicomDataset } from './dataset';
import { TAGS } from './dictionary';
import type { Part10File } from './reader';

/** Why an object that parsed is still not accepted. */
export type ImageRejectionCode = 'UNSUPPORTED_SOP_CLASS' | 'UNSUPPORTED_MODALITY' | 'MISSING_ATTRIBUTE' | 'PIXEL_LENGTH_MISMATCH' | 'BURNED_IN_ANNOTATION';

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

function required(dataset: DicomDataset, tag: number, name: string): string {
  const value = textOf(dataset, tag);
  if (!value) throw new ImageRejection('MISSING_ATTRIBUTE', `${name} is missing`);
  return value;
}

function requiredUint(dataset: DicomDataset, tag: number, name: string, littleEndian: boolean): number {
  const value = uintOf(dataset, tag, littleEndian);
  if (value === undefined || !Number.isFinite(value) || value <= 0) throw new ImageRejection('MISSING_ATTRIBUTE', `${name} is missing or zero`);
  return value;
}

const optionalInt = (dataset: DicomDataset, tag: number): number | null => {
  const text = textOf(dataset, tag);
  const value = text ? Number.parseInt(text, 10) : NaN;
  return Number.isFinite(value) ? value : null;
};

/**
 * Checks that a parsed object is an image Facet can grade: an image SOP class, a radiograph, CT or MR, the
 * geometry attributes, and (for native pixel data) exactly rows x columns x samples x frames x bits/8 bytes.
 */
export function inspectImage(file: Part10File): ImageSummary {
  const { dataset, transferSyntax } = file;
  const le = transferSyntax.littleEndian;
  const sopClassUid = required(dataset, TAGS.sopClassUid, 'SOP Class UID');
  if (!IMAGE_SOP_CLASSES.has(sopClassUid)) {
    throw new ImageRejection('UNSUPPORTED_SOP_CLASS', `SOP Class ${sopClassUid} is not an image storage class Facet grades`);
  }
  const dicomModality = required(dataset, TAGS.modality, 'Modality');
  const modality = MODALITIES[dicomModality];
  if (!modality) throw new ImageRejection('UNSUPPORTED_MODALITY', `Modality ${dicomModality} is not a radiograph, CT or MR`);
  const rows = requiredUint(dataset, TAGS.rows, 'Rows', le);
  const columns = requiredUint(dataset, TAGS.columns, 'Columns', le);
  const bitsAllocated = requiredUint(dataset, TAGS.bitsAllocated, 'Bits Allocated', le);
  const samplesPerPixel = uintOf(dataset, TAGS.samplesPerPixel, le) ?? 1;
  const numberOfFrames = optionalInt(dataset, TAGS.numberOfFrames) ?? 1;
  if (numberOfFrames < 1) throw new ImageRejection('MISSING_ATTRIBUTE', 'Number of Frames is 0');
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
    const expected = Math.ceil((rows * columns * samplesPerPixel * numberOfFrames * bitsAllocated) / 8);
    const actual = pixelData.bytes?.length ?? 0;
    // One byte of padding is allowed: values have even lengths.
    if (actual !== expected && actual !== expected + (expected % 2)) {
      throw new ImageRejection(
        'PIXEL_LENGTH_MISMATCH',
        `Pixel Data holds ${actual} bytes; ${rows} rows x ${columns} columns x ${samplesPerPixel} samples x ${numberOfFrames} frames x ${bitsAllocated} bits needs ${expected}`,
      );
    }
  }
  return {
    sopClassUid,
    sopInstanceUid: required(dataset, TAGS.sopInstanceUid, 'SOP Instance UID'),
    studyInstanceUid: required(dataset, TAGS.studyInstanceUid, 'Study Instance UID'),
    seriesInstanceUid: required(dataset, TAGS.seriesInstanceUid, 'Series Instance UID'),
    modality,
    rows,
    columns,
    numberOfFrames,
    bitsAllocated,
    samplesPerPixel,
    photometricInterpretation: textOf(dataset, TAGS.photometricInterpretation) ?? 'MONOCHROME2',
    transferSyntaxUid: transferSyntax.uid,
    studyDate: isoDate(textOf(dataset, TAGS.studyDate)),
    seriesNumber: optionalInt(dataset, TAGS.seriesNumber),
    instanceNumber: optionalInt(dataset, TAGS.instanceNumber),
  };
}

/** DICOM DA (YYYYMMDD) to ISO (YYYY-MM-DD), or null. */
export function isoDate(da: string | undefined): string | null {
  const match = da ? /^(\d{4})(\d{2})(\d{2})$/.exec(da.trim()) : null;
  return match ? `${match[1]}-${match[2]}-${match[3]}` : null;
}
