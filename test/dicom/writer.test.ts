import { data } from 'dcmjs';
import { textOf } from '../../server/dicom/dataset';
import { TAGS } from '../../server/dicom/dictionary';
import { readPart10 } from '../../server/dicom/reader';
import { writePart10 } from '../../server/dicom/writer';
import { fixture, READABLE } from '../helpers/dicom-fixtures';

const arrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;

describe('writePart10', () => {
  it.each(READABLE)('read %s (%s), write it back, and read the same elements and pixel bytes', (name, syntax) => {
    const original = readPart10(fixture(name));
    expect(original.transferSyntax.name).toBe(syntax);
    expect(textOf(original.dataset, TAGS.patientName)).toBe('Hoffmann^Gertrude^Maria');
    const written = writePart10(original.meta, original.dataset, original.transferSyntax);
    const again = readPart10(written);
    expect([...again.dataset.keys()]).toEqual([...original.dataset.keys()].sort((a, b) => a - b));
    const pixels = (p: typeof original) => {
      const e = p.dataset.get(TAGS.pixelData);
      return e?.fragments ? Buffer.concat(e.fragments) : e?.bytes;
    };
    expect(pixels(again)?.equals(pixels(original) as Buffer)).toBe(true);
    // dcmjs, the field's JavaScript reader, reads the written file to the same pixel data as the original.
    const viaDcmjs = (b: Buffer) => data.DicomMetaDictionary.naturalizeDataset(data.DicomMessage.readFile(arrayBuffer(b)).dict).PixelData;
    const a = viaDcmjs(fixture(name)).map((f: ArrayBuffer) => Buffer.from(f));
    const b = viaDcmjs(written).map((f: ArrayBuffer) => Buffer.from(f));
    expect(Buffer.concat(b).equals(Buffer.concat(a))).toBe(true);
  });
});
