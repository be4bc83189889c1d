import { deflateRawSync, deflateSync } from 'node:zlib';
import { data } from 'dcmjs';
import { syntheticImage } from '../helpers/synthetic-dicom';
import { textBytes, textOf, type DicomDataset } from '../../server/dicom/dataset';
import { tag, TAGS } from '../../server/dicom/dictionary';
import { inspectImage } from '../../server/dicom/image-object';
import { DEFAULT_READ_LIMITS, DicomReadError, readPart10, readPart10Async, type ReadLimits } from '../../server/dicom/reader';
import { writePart10 } from '../../server/dicom/writer';
import { fixture, READABLE } from '../helpers/dicom-fixtures';

import { emptyItemsSequence, insertElement } from '../helpers/dicom-mutations';

const codeOf = (read: () => unknown): string => {
  try {
    read();
    return 'read';
  } catch (error) {
    return error instanceof DicomReadError ? error.code : `${(error as Error).name}: ${(error as Error).message}`;
  }
};
const asyncCodeOf = async (read: () => Promise<unknown>): Promise<string> => {
  try {
    await read();
    return 'read';
  } catch (error) {
    return error instanceof DicomReadError ? error.code : `${(error as Error).name}: ${(error as Error).message}`;
  }
};

/** Elements, items and fragments as the reader counts them: every one at every depth, the File Meta included. */
function countOf(dataset: DicomDataset): number {
  let n = 0;
  for (const e of dataset.values()) {
    n += 1 + (e.fragments?.length ?? 0);
    for (const item of e.items ?? []) n += 1 + countOf(item);
  }
  return n;
}

const REFERENCED_SERIES = tag(0x0008, 0x1115);
const CONTENT_SEQUENCE = tag(0x0040, 0xa730);
const withLimits = (limits: Partial<ReadLimits>): ReadLimits => ({ ...DEFAULT_READ_LIMITS, ...limits });

describe('how much work one object may cause', () => {
  const ct = fixture('identified-explicit-le.dcm');

  it('refuses a sequence of 1,000,000 empty items (8 MB) as TOO_COMPLEX under the default limit, without reading them all', () => {
    const flood = insertElement(ct, REFERENCED_SERIES, emptyItemsSequence(REFERENCED_SERIES, 1_000_000));
    expect(flood.length).toBeGreaterThan(8_000_000);
    expect(codeOf(() => readPart10(flood))).toBe('TOO_COMPLEX');
  });

  it('reads an object of exactly maxElements elements, items and fragments, and refuses one more', () => {
    const file = readPart10(ct);
    const base = countOf(file.meta) + countOf(file.dataset);
    for (const items of [0, 1, 10, 500]) {
      const bytes = insertElement(ct, REFERENCED_SERIES, emptyItemsSequence(REFERENCED_SERIES, items));
      const exact = base + 1 + items;
      expect({ items, code: codeOf(() => readPart10(bytes, withLimits({ maxElements: exact }))) }).toEqual({ items, code: 'read' });
      expect({ items, code: codeOf(() => readPart10(bytes, withLimits({ maxElements: exact - 1 }))) }).toEqual({ items, code: 'TOO_COMPLEX' });
    }
  });

  it('counts elements inside items and fragments of encapsulated pixel data', () => {
    const file = readPart10(ct);
    const item: DicomDataset = new Map();
    for (let e = 0; e < 2000; e++) item.set(tag(0x0011, 0x1000 + e), { tag: tag(0x0011, 0x1000 + e), vr: 'LO', bytes: Buffer.from('AB') });
    const dataset = new Map(file.dataset).set(TAGS.deidentificationMethodCodeSequence, {
      tag: TAGS.deidentificationMethodCodeSequence,
      vr: 'SQ',
      items: [item],
    });
    expect(codeOf(() => readPart10(writePart10(file.meta, dataset, file.transferSyntax), withLimits({ maxElements: 1500 })))).toBe('TOO_COMPLEX');

    const rle = readPart10(fixture('identified-rle.dcm'));
    const pixels = rle.dataset.get(TAGS.pixelData);
    const fragments = { ...pixels, tag: TAGS.pixelData, vr: 'OB', fragments: [Buffer.alloc(0), ...Array.from({ length: 3000 }, () => Buffer.alloc(0))] };
    const bytes = writePart10(rle.meta, new Map(rle.dataset).set(TAGS.pixelData, fragments), rle.transferSyntax);
    expect(codeOf(() => readPart10(bytes, withLimits({ maxElements: 2000 })))).toBe('TOO_COMPLEX');
    expect(codeOf(() => readPart10(bytes, withLimits({ maxElements: 4000 })))).toBe('read');
  });

  it('reads sequences nested maxDepth deep and refuses one level more as TOO_COMPLEX', () => {
    const file = readPart10(ct);
    const nested = (depth: number) => {
      let element = { tag: CONTENT_SEQUENCE, vr: 'SQ', items: [new Map()] as DicomDataset[] };
      for (let i = 1; i < depth; i++) element = { tag: CONTENT_SEQUENCE, vr: 'SQ', items: [new Map([[CONTENT_SEQUENCE, element]])] };
      return writePart10(file.meta, new Map(file.dataset).set(CONTENT_SEQUENCE, element), file.transferSyntax);
    };
    for (const maxDepth of [1, 4, 16]) {
      expect({ maxDepth, code: codeOf(() => readPart10(nested(maxDepth), withLimits({ maxDepth }))) }).toEqual({ maxDepth, code: 'read' });
      expect({ maxDepth, code: codeOf(() => readPart10(nested(maxDepth + 1), withLimits({ maxDepth }))) }).toEqual({ maxDepth, code: 'TOO_COMPLEX' });
    }
    // 5,000 levels, encoded by hand (undefined lengths): deeper than any stack could recurse.
    const open = Buffer.from([0x40, 0x00, 0x30, 0xa7, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]);
    const close = Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0, 0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
    const deep = insertElement(ct, CONTENT_SEQUENCE, Buffer.concat([...Array<Buffer>(5000).fill(open), ...Array<Buffer>(5000).fill(close)]));
    expect(codeOf(() => readPart10(deep))).toBe('TOO_COMPLEX');
  });
});

describe('Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99)', () => {
  const deflated = syntheticImage({ syntax: 'deflated', frames: 2 });
  const explicit = syntheticImage({ syntax: 'explicit-le', frames: 2 });
  const metaEnd = (file: Buffer) => 132 + 12 + file.readUInt32LE(140);
  /** The deflated file with its data set deflated again by `deflate`. */
  const redeflate = (deflate: (b: Buffer) => Buffer): Buffer => {
    const file = readPart10(deflated);
    const asExplicit = writePart10(file.meta, file.dataset, readPart10(explicit).transferSyntax);
    return Buffer.concat([deflated.subarray(0, metaEnd(deflated)), deflate(asExplicit.subarray(metaEnd(asExplicit)))]);
  };

  it('reads the data set inside the deflate stream: the same elements and pixel data as the explicit file, and dcmjs agrees', async () => {
    const a = readPart10(deflated);
    const b = readPart10(explicit);
    expect(a.transferSyntax.name).toBe('Deflated Explicit VR Little Endian');
    expect([...a.dataset.keys()]).toEqual([...b.dataset.keys()]);
    expect(a.dataset.get(TAGS.pixelData)?.bytes?.equals(b.dataset.get(TAGS.pixelData)?.bytes as Buffer)).toBe(true);
    expect(inspectImage(a)).toMatchObject({ numberOfFrames: 2, rows: 64 });
    expect((await readPart10Async(deflated)).dataset.size).toBe(a.dataset.size);
    const viaDcmjs = data.DicomMetaDictionary.naturalizeDataset(
      data.DicomMessage.readFile(deflated.buffer.slice(deflated.byteOffset, deflated.byteOffset + deflated.length) as ArrayBuffer).dict,
    );
    expect(Buffer.from(viaDcmjs.PixelData[0]).equals(a.dataset.get(TAGS.pixelData)?.bytes as Buffer)).toBe(true);
  });

  it('also reads a stream some writers wrap in a zlib header', () => {
    expect(readPart10(redeflate(deflateSync)).dataset.size).toBe(readPart10(deflated).dataset.size);
  });

  it('refuses a stream that inflates past maxInflatedBytes (TOO_COMPLEX), a cut stream (TRUNCATED) and a corrupt one (MALFORMED_ELEMENT), sync and async', async () => {
    const head = deflated.subarray(0, metaEnd(deflated));
    const bomb = Buffer.concat([head, deflateRawSync(Buffer.alloc(64 * 1024 * 1024))]);
    expect(bomb.length).toBeLessThan(100_000);
    const limits = withLimits({ maxInflatedBytes: 1024 * 1024 });
    expect(codeOf(() => readPart10(bomb, limits))).toBe('TOO_COMPLEX');
    expect(await asyncCodeOf(() => readPart10Async(bomb, limits))).toBe('TOO_COMPLEX');
    const cut = deflated.subarray(0, head.length + Math.floor((deflated.length - head.length) / 2));
    expect(codeOf(() => readPart10(cut))).toBe('TRUNCATED');
    expect(await asyncCodeOf(() => readPart10Async(cut))).toBe('TRUNCATED');
    const corrupt = Buffer.concat([head, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x12])]);
    expect(codeOf(() => readPart10(corrupt))).toBe('MALFORMED_ELEMENT');
    expect(await asyncCodeOf(() => readPart10Async(corrupt))).toBe('MALFORMED_ELEMENT');
  });
});

describe('readPart10', () => {
  it.each(READABLE)('reads %s as %s, with its text', (name, syntax) => {
    const file = readPart10(fixture(name));
    expect(file.transferSyntax.name).toBe(syntax);
    expect(textOf(file.dataset, TAGS.patientName)).toBe('Hoffmann^Gertrude^Maria');
  });

  it.each([
    ['not-part10.bin', 'NOT_PART10'],
    ['no-preamble.bin', 'NOT_PART10'],
    ['truncated.dcm', 'TRUNCATED'],
    ['impossible-length.dcm', 'IMPOSSIBLE_LENGTH'],
  ])('rejects %s as %s', (name, code) => {
    expect(() => readPart10(fixture(name))).toThrow(DicomReadError);
    try {
      readPart10(fixture(name));
    } catch (error) {
      expect((error as DicomReadError).code).toBe(code);
    }
  });

  it('reads a file cut anywhere either as a typed error or, cut between elements, as a data set without its pixel data', () => {
    const whole = fixture('identified-explicit-le.dcm');
    for (let cut = 0; cut < whole.length; cut += 7) {
      let result: ReturnType<typeof readPart10> | null = null;
      try {
        result = readPart10(whole.subarray(0, cut));
      } catch (error) {
        expect(error).toBeInstanceOf(DicomReadError);
        expect(['NOT_PART10', 'TRUNCATED']).toContain((error as DicomReadError).code);
      }
      if (result) expect(result.dataset.has(TAGS.pixelData)).toBe(false);
    }
  });
});

describe('the reader refuses what could smuggle identity', () => {
  const file = fixture('identified-explicit-le.dcm');
  const element = (group: number, element: number, vr: string, text: string) => {
    const value = textBytes(vr, text);
    const header = Buffer.alloc(8);
    header.writeUInt16LE(group, 0);
    header.writeUInt16LE(element, 2);
    header.write(vr, 4, 'latin1');
    header.writeUInt16LE(value.length, 6);
    return Buffer.concat([header, value]);
  };
  const code = (bytes: Buffer) => {
    try {
      readPart10(bytes);
      return 'read';
    } catch (error) {
      return (error as DicomReadError).code;
    }
  };

  it('rejects a meta element inside the data set and an element out of order or repeated', () => {
    expect(code(Buffer.concat([file, element(0x0002, 0x0016, 'AE', 'HOSP_PACS_AE')]))).toBe('MALFORMED_ELEMENT');
    expect(code(Buffer.concat([file, element(0x0010, 0x0020, 'LO', 'OTHER-ID')]))).toBe('MALFORMED_ELEMENT');
  });

  it('rejects a VR that does not exist', () => {
    const bytes = Buffer.from(file);
    const at = bytes.indexOf(Buffer.from([0x10, 0x00, 0x10, 0x00, 0x50, 0x4e])); // (0010,0010) PN
    bytes.write('ZZ', at + 4, 'latin1');
    expect(code(bytes)).toBe('MALFORMED_ELEMENT');
  });
});
