import { readFileSync } from 'node:fs';
import path from 'node:path';
import { textElement, type DicomElement } from '../../server/dicom/dataset';
import { tag, TAGS } from '../../server/dicom/dictionary';
import { readPart10 } from '../../server/dicom/reader';
import { writePart10 } from '../../server/dicom/writer';

const TEMPLATE = readPart10(readFileSync(path.resolve(__dirname, '../fixtures/dicom/identified-explicit-le.dcm')));

export interface ImageSpec {
  patientId: string;
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  modality: 'CT' | 'MR';
  studyDate: string;
  seriesNumber: number;
  instanceNumber: number;
  /** Stored values row by row (size x size, 16-bit unsigned), modality values equal (slope 1, intercept 0). */
  pixels: number[];
  size: number;
  window?: { center: number; width: number };
  /** A VOI LUT: [entries, first mapped, bits] and 16-bit data. */
  voiLut?: { descriptor: [number, number, number]; data: number[] };
  photometric?: 'MONOCHROME1' | 'MONOCHROME2';
}

const us = (...values: number[]) => {
  const b = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => b.writeUInt16LE(v, 2 * i));
  return b;
};

/** An identified CT or MR object of the fixture's kind, with the UIDs, dates, VOI attributes and pixel values asked. */
export function dicomwebImage(spec: ImageSpec): Buffer {
  const dataset = new Map(TEMPLATE.dataset);
  const text = (t: number, vr: string, value: string) => dataset.set(t, textElement(t, vr, value));
  text(TAGS.patientId, 'LO', spec.patientId);
  text(TAGS.studyInstanceUid, 'UI', spec.studyUid);
  text(TAGS.seriesInstanceUid, 'UI', spec.seriesUid);
  text(TAGS.sopInstanceUid, 'UI', spec.sopUid);
  text(TAGS.sopClassUid, 'UI', spec.modality === 'CT' ? '1.2.840.10008.5.1.4.1.1.2' : '1.2.840.10008.5.1.4.1.1.4');
  text(TAGS.modality, 'CS', spec.modality);
  text(TAGS.studyDate, 'DA', spec.studyDate);
  text(TAGS.seriesNumber, 'IS', String(spec.seriesNumber));
  text(TAGS.instanceNumber, 'IS', String(spec.instanceNumber));
  text(TAGS.photometricInterpretation, 'CS', spec.photometric ?? 'MONOCHROME2');
  text(tag(0x0028, 0x1052), 'DS', '0');
  text(tag(0x0028, 0x1053), 'DS', '1');
  dataset.set(TAGS.rows, { tag: TAGS.rows, vr: 'US', bytes: us(spec.size) });
  dataset.set(TAGS.columns, { tag: TAGS.columns, vr: 'US', bytes: us(spec.size) });
  if (spec.window) {
    text(tag(0x0028, 0x1050), 'DS', String(spec.window.center));
    text(tag(0x0028, 0x1051), 'DS', String(spec.window.width));
  }
  if (spec.voiLut) {
    const item = new Map<number, DicomElement>([
      [tag(0x0028, 0x3002), { tag: tag(0x0028, 0x3002), vr: 'US', bytes: us(...spec.voiLut.descriptor) }],
      [tag(0x0028, 0x3006), { tag: tag(0x0028, 0x3006), vr: 'OW', bytes: us(...spec.voiLut.data) }],
    ]);
    dataset.set(tag(0x0028, 0x3010), { tag: tag(0x0028, 0x3010), vr: 'SQ', items: [item] });
  }
  dataset.set(TAGS.pixelData, { tag: TAGS.pixelData, vr: 'OW', bytes: us(...spec.pixels) });
  const meta = new Map(TEMPLATE.meta);
  meta.set(
    TAGS.mediaStorageSopClassUid,
    textElement(TAGS.mediaStorageSopClassUid, 'UI', spec.modality === 'CT' ? '1.2.840.10008.5.1.4.1.1.2' : '1.2.840.10008.5.1.4.1.1.4'),
  );
  meta.set(TAGS.mediaStorageSopInstanceUid, textElement(TAGS.mediaStorageSopInstanceUid, 'UI', spec.sopUid));
  return writePart10(meta, dataset, TEMPLATE.transferSyntax);
}
