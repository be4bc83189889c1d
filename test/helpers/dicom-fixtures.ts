import { readFileSync } from 'node:fs';
import path from 'node:path';

/** test/fixtures/dicom (scripts/make-dicom-fixtures.py) and the identifying values its identified-* files carry. */
export const FIXTURES = path.resolve(__dirname, '../fixtures/dicom');
export const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));
export const IDENTIFIERS: Record<string, string> = JSON.parse(readFileSync(path.join(FIXTURES, 'IDENTIFIERS.json'), 'utf8'));

/** One identified file per transfer syntax and modality the fixtures cover. */
export const IDENTIFIED = [
  'identified-explicit-le.dcm',
  'identified-implicit-le.dcm',
  'identified-explicit-be.dcm',
  'identified-mr.dcm',
  'identified-dx-8bit.dcm',
  'identified-rle.dcm',
  'identified-jpeg-baseline.dcm',
  'identified-jpeg-lossless.dcm',
  'identified-jpeg-ls.dcm',
  'identified-jpeg2000.dcm',
];

/** The identified files of each transfer syntax the reader reads and the writer writes back, with the syntax's name. */
export const READABLE = [
  ['identified-explicit-le.dcm', 'Explicit VR Little Endian'],
  ['identified-implicit-le.dcm', 'Implicit VR Little Endian'],
  ['identified-explicit-be.dcm', 'Explicit VR Big Endian (retired)'],
  ['identified-rle.dcm', 'RLE Lossless'],
  ['identified-jpeg-baseline.dcm', 'JPEG Baseline (Process 1)'],
  ['identified-jpeg-lossless.dcm', 'JPEG Lossless, First-Order Prediction'],
  ['identified-jpeg-ls.dcm', 'JPEG-LS Lossless'],
  ['identified-jpeg2000.dcm', 'JPEG 2000 Lossless'],
] as const;
