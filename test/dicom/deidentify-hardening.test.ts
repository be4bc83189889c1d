import { readFileSync } from 'node:fs';
import path from 'node:path';
import { textElement, textOf, type DicomDataset } from '../../server/dicom/dataset';
import { deidentify, shiftDateValue } from '../../server/dicom/deidentify';
import { tag, TAGS } from '../../server/dicom/dictionary';
import { ImageRejection, inspectImage } from '../../server/dicom/image-object';
import { readPart10 } from '../../server/dicom/reader';
import { replaceUid } from '../../server/dicom/uid';
import { writePart10 } from '../../server/dicom/writer';

/** Crafted variants of the explicit-LE fixture, each hiding identity where the table alone would miss it. */
const BASE = readPart10(readFileSync(path.resolve(__dirname, '../fixtures/dicom/identified-explicit-le.dcm')));
const KEY = Buffer.from('another node key of thirty-two!!');
const OPTIONS = { uidKey: KEY, pseudonym: 'P-001', dateShiftDays: -1000 };

function stored(extra: Array<[number, DicomDataset extends Map<number, infer E> ? E : never]>): string {
  const dataset = new Map(BASE.dataset);
  for (const [t, e] of extra) dataset.set(t, e);
  const file = readPart10(writePart10(BASE.meta, dataset, BASE.transferSyntax));
  const clean = deidentify(file, OPTIONS);
  return writePart10(clean.meta, clean.dataset, clean.transferSyntax).toString('latin1');
}

describe('de-identification beyond the table', () => {
  it('drops UN values, which may hold anything (here a nested name and UID)', () => {
    const hidden = Buffer.concat([Buffer.from([0x10, 0, 0x10, 0, 8, 0, 0, 0]), Buffer.from('Doe^John')]);
    const out = stored([[tag(0x0008, 0x9092), { tag: tag(0x0008, 0x9092), vr: 'UN', bytes: hidden }]]);
    expect(out).not.toContain('Doe^John');
  });

  it('shifts dates the table does not list, at any depth, and replaces malformed ones', () => {
    const perFrame = {
      tag: tag(0x5200, 0x9230),
      vr: 'SQ',
      items: [new Map([[tag(0x0018, 0x9074), textElement(tag(0x0018, 0x9074), 'DT', '20230115083000')]])],
    };
    const out = stored([
      [tag(0x0008, 0x0012), textElement(tag(0x0008, 0x0012), 'DA', '20230115')],
      [tag(0x0008, 0x0021), textElement(tag(0x0008, 0x0021), 'DA', '2023.01.15')],
      [tag(0x5200, 0x9230), perFrame],
    ]);
    expect(out).not.toContain('20230115');
    expect(out).not.toContain('2023.01.15');
    expect(out).toContain(shiftDateValue('DA', '20230115', -1000));
    expect(shiftDateValue('DA', 'not a date', 5)).toBe('19000101');
    expect(shiftDateValue('DA', '20240301-20240305', -1)).toBe('20240229-20240304');
  });

  it('empties sequences the table replaces, rather than keeping their items', () => {
    const code = new Map([[TAGS.codeMeaning, textElement(TAGS.codeMeaning, 'LO', 'St Marys Hospital Westside')]]);
    const out = stored([[tag(0x0008, 0x0082), { tag: tag(0x0008, 0x0082), vr: 'SQ', items: [code] }]]);
    expect(out).not.toContain('St Marys Hospital Westside');
  });

  it('replaces every instance UID, listed or not, but keeps the standard’s own UIDs', () => {
    const out = stored([[tag(0x0008, 0x0017), textElement(tag(0x0008, 0x0017), 'UI', '1.2.826.0.1.3680043.9.20240117.555')]]);
    expect(out).not.toContain('1.2.826.0.1.3680043.9.20240117.555');
    expect(out).toContain(replaceUid(KEY, '1.2.826.0.1.3680043.9.20240117.555'));
    expect(out).toContain('1.2.840.10008.5.1.4.1.1.2');
  });

  it('removes overlay groups, whose descriptions and labels may name the patient', () => {
    const out = stored([[tag(0x6000, 0x0022), textElement(tag(0x6000, 0x0022), 'LO', 'Hoffmann annotation')]]);
    expect(out).not.toContain('Hoffmann annotation');
  });

  it('makes replacement UIDs valid UUID-derived UIDs (version 8, RFC 4122 variant)', () => {
    const uid = replaceUid(KEY, '1.2.3');
    const hex = BigInt(uid.slice(5)).toString(16).padStart(32, '0');
    expect(hex[12]).toBe('8');
    expect(['8', '9', 'a', 'b']).toContain(hex[16]);
  });
});

describe('image checks refuse what could smuggle identity', () => {
  it('rejects images with burned-in annotation and zero frames', () => {
    const burned = new Map(BASE.dataset);
    burned.set(tag(0x0028, 0x0301), textElement(tag(0x0028, 0x0301), 'CS', 'YES'));
    expect(() => inspectImage({ ...BASE, dataset: burned })).toThrow(ImageRejection);
    const zero = new Map(BASE.dataset);
    zero.set(TAGS.numberOfFrames, textElement(TAGS.numberOfFrames, 'IS', '0'));
    expect(() => inspectImage({ ...BASE, dataset: zero })).toThrow(/Number of Frames is 0/);
    expect(textOf(BASE.dataset, TAGS.patientId)).toBe('MRN-7734021');
  });
});
