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
