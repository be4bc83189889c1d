import { data } from 'dcmjs';
import { textOf } from '../../server/dicom/dataset';
import { deidentify, profileAction } from '../../server/dicom/deidentify';
import { tag, TAGS } from '../../server/dicom/dictionary';
import { inspectImage, ImageRejection } from '../../server/dicom/image-object';
import { readPart10 } from '../../server/dicom/reader';
import { replaceUid } from '../../server/dicom/uid';
import { writePart10 } from '../../server/dicom/writer';
import { fixture, IDENTIFIED, IDENTIFIERS } from '../helpers/dicom-fixtures';

const KEY = Buffer.from('a node key of thirty-two bytes!!');
const OPTIONS = { uidKey: KEY, pseudonym: 'EAST-P001', dateShiftDays: -137 };

const pixelsOf = (file: ReturnType<typeof readPart10>): Buffer => {
  const e = file.dataset.get(TAGS.pixelData);
  return e?.fragments ? Buffer.concat(e.fragments) : (e?.bytes as Buffer);
};

describe('PS3.15 de-identification', () => {
  it.each(IDENTIFIED)('leaves no identifying value of any Basic Profile category in the bytes of %s', (name) => {
    const original = readPart10(fixture(name));
    const stored = writePart10(...(Object.values(deidentify(original, OPTIONS)) as Parameters<typeof writePart10>));
    const text = stored.toString('latin1');
    for (const [category, value] of Object.entries(IDENTIFIERS)) {
      expect({ category, found: text.includes(value) }).toEqual({ category, found: false });
    }
    // The original dates (acquisition and birth) are gone: dates are shifted, the birth date removed.
    expect(text).not.toContain('20240117');
    expect(text).not.toContain('19480312');
    expect(text).not.toContain('HOFFMANN PRIVATE');
  });

  it.each(IDENTIFIED)('keeps %s a valid image with the same pixel data, readable by dcmjs', (name) => {
    const original = readPart10(fixture(name));
    const stored = writePart10(...(Object.values(deidentify(original, OPTIONS)) as Parameters<typeof writePart10>));
    const back = readPart10(stored);
    expect(back.transferSyntax.uid).toBe(original.transferSyntax.uid);
    expect(pixelsOf(back).equals(pixelsOf(original))).toBe(true);
    expect(inspectImage(back).rows).toBe(inspectImage(original).rows);
    const viaDcmjs = data.DicomMetaDictionary.naturalizeDataset(
      data.DicomMessage.readFile(stored.buffer.slice(stored.byteOffset, stored.byteOffset + stored.length) as ArrayBuffer).dict,
    );
    expect(viaDcmjs.PatientIdentityRemoved).toBe('YES');
    expect(viaDcmjs.PatientName?.[0]?.Alphabetic ?? viaDcmjs.PatientName).toBe('EAST-P001');
  });

  it('records the method, keeps patient characteristics, shifts dates and replaces UIDs consistently', () => {
    const original = readPart10(fixture('identified-explicit-le.dcm'));
    const result = deidentify(original, OPTIONS);
    const d = result.dataset;
    expect(textOf(d, TAGS.patientIdentityRemoved)).toBe('YES');
    expect(textOf(d, TAGS.longitudinalTemporalInformationModified)).toBe('MODIFIED');
    const codes = d.get(TAGS.deidentificationMethodCodeSequence)?.items?.map((item) => textOf(item, TAGS.codeValue));
    expect(codes).toEqual(['113100', '113107', '113108']);
    expect(textOf(d, tag(0x0010, 0x0040))).toBe('F'); // Patient's Sex kept
    expect(textOf(d, tag(0x0010, 0x1010))).toBe('076Y'); // Patient's Age kept
    expect(d.get(tag(0x0010, 0x0030))?.bytes?.length).toBe(0); // Patient's Birth Date: Z, emptied
    expect(textOf(d, TAGS.studyDate)).toBe('20230902'); // 2024-01-17 minus 137 days
    expect(textOf(d, TAGS.studyInstanceUid)).toBe(replaceUid(KEY, IDENTIFIERS.StudyInstanceUID));
    expect(textOf(d, TAGS.sopClassUid)).toBe('1.2.840.10008.5.1.4.1.1.2'); // SOP Class kept
    expect(textOf(result.meta, TAGS.mediaStorageSopInstanceUid)).toBe(textOf(d, TAGS.sopInstanceUid));
    expect([...d.keys()].some((t) => (t >>> 16) % 2 === 1)).toBe(false); // no private attribute
    expect(deidentify(original, OPTIONS).dataset.get(TAGS.sopInstanceUid)?.bytes).toEqual(d.get(TAGS.sopInstanceUid)?.bytes);
    expect(replaceUid(Buffer.from('another key'), IDENTIFIERS.StudyInstanceUID)).not.toBe(textOf(d, TAGS.studyInstanceUid));
    expect(replaceUid(KEY, IDENTIFIERS.StudyInstanceUID)).toMatch(/^2\.25\.\d{1,39}$/);
  });

  it('reads the whole table, masked tags included', () => {
    expect(profileAction(TAGS.patientName)).toBe('Z');
    expect(profileAction(TAGS.sopInstanceUid)).toBe('U');
    expect(profileAction(tag(0x0010, 0x0040))).toBe('K'); // Retain Patient Characteristics
    expect(profileAction(TAGS.studyDate)).toBe('C'); // Modified Dates
    expect(profileAction(tag(0x0008, 0x0080))).toBe('D'); // X/Z/D resolved to a dummy
    expect(profileAction(tag(0x5010, 0x3000))).toBe('X'); // (50xx,xxxx) curve data
    expect(profileAction(tag(0x6002, 0x4000))).toBe('X'); // (60xx,4000) overlay comments
    expect(profileAction(TAGS.rows)).toBeUndefined();
  });
});

describe('image checks', () => {
  it.each([
    ['rt-plan.dcm', 'UNSUPPORTED_SOP_CLASS'],
    ['structured-report.dcm', 'UNSUPPORTED_SOP_CLASS'],
    ['waveform.dcm', 'UNSUPPORTED_SOP_CLASS'],
    ['pixel-length-mismatch.dcm', 'PIXEL_LENGTH_MISMATCH'],
  ])('rejects %s as %s', (name, code) => {
    let caught: unknown;
    try {
      inspectImage(readPart10(fixture(name)));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ImageRejection);
    expect((caught as ImageRejection).code).toBe(code);
  });

  it('summarises geometry and transfer syntax', () => {
    expect(inspectImage(readPart10(fixture('identified-jpeg-ls.dcm')))).toMatchObject({
      modality: 'CT',
      rows: 64,
      columns: 64,
      bitsAllocated: 16,
      numberOfFrames: 1,
      transferSyntaxUid: '1.2.840.10008.1.2.4.80',
    });
  });
});
