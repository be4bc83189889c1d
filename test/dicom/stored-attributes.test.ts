import { syntheticImage } from '../helpers/synthetic-dicom';
import { textBytes, type DicomElement } from '../../server/dicom/dataset';
import { formatTag, TAGS } from '../../server/dicom/dictionary';
import { ImageRejection, inspectImage, STORED_ATTRIBUTES, type ImageSummary } from '../../server/dicom/image-object';
import { readPart10, type Part10File } from '../../server/dicom/reader';

const us = (v: number) => Buffer.from([v & 0xff, v >>> 8]);
const ul = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};

/** The synthetic CT with some elements replaced. */
function image(changes: Array<[number, string, string | Buffer]>, base: Buffer = syntheticImage()): Part10File {
  const file = readPart10(base);
  for (const [t, vr, value] of changes) {
    const e: DicomElement = { tag: t, vr, bytes: typeof value === 'string' ? textBytes(vr, value) : value };
    file.dataset.set(t, e);
  }
  return file;
}

function outcome(file: Part10File): ImageSummary | string {
  try {
    return inspectImage(file);
  } catch (error) {
    if (error instanceof ImageRejection) return `${error.code} ${error.message}`;
    throw error;
  }
}

const A = STORED_ATTRIBUTES;

describe('every value that reaches a database column is checked against its VR', () => {
  it.each([A.seriesNumber, A.instanceNumber])('$name (IS): accepts -2^31 to 2^31 - 1 and refuses what is past them or not one integer', (a) => {
    const key = a === A.seriesNumber ? 'seriesNumber' : 'instanceNumber';
    for (const [text, value] of [
      ['2147483647', 2147483647],
      ['-2147483648', -2147483648],
      [' +12 ', 12],
      ['', null],
    ] as const) {
      expect({ text, value: (outcome(image([[a.tag, 'IS', text]])) as ImageSummary)[key] }).toEqual({ text, value });
    }
    for (const text of ['2147483648', '-2147483649', '999999999999', '1\\2', '1.5', 'abc', '1\0', '1234567890123']) {
      expect({ text, result: outcome(image([[a.tag, 'IS', text]])) }).toEqual({
        text,
        result: expect.stringMatching(`^INVALID_VALUE ${formatTag(a.tag).replace(/[()]/g, '\\$&')}`),
      });
    }
  });

  it('Number of Frames (IS): refuses a count past IS, and a count the pixel data cannot hold as PIXEL_LENGTH_MISMATCH, never a database error', () => {
    expect(outcome(image([[TAGS.numberOfFrames, 'IS', '3000000000']]))).toMatch(/^INVALID_VALUE \(0028,0008\)/);
    expect(outcome(image([[TAGS.numberOfFrames, 'IS', '-1']]))).toMatch(/^INVALID_VALUE \(0028,0008\)/);
    expect(outcome(image([[TAGS.numberOfFrames, 'IS', '2147483647']]))).toMatch(/^PIXEL_LENGTH_MISMATCH/);
    expect(outcome(image([[TAGS.numberOfFrames, 'IS', '0']]))).toMatch(/^MISSING_ATTRIBUTE Number of Frames is 0/);
  });

  it.each([A.rows, A.columns, A.bitsAllocated, A.samplesPerPixel])(
    '$name (US): refuses another VR, more than one value, or a value that is not 2 bytes',
    (a) => {
      for (const [vr, bytes] of [
        ['UL', ul(0xffffffff)],
        ['UL', ul(64)],
        ['SS', us(64)],
        ['IS', textBytes('IS', '70000')],
        ['US', Buffer.concat([us(64), us(64)])],
        ['SQ', Buffer.alloc(0)],
      ] as const) {
        expect({ vr, result: outcome(image([[a.tag, vr, bytes]])) }).toEqual({ vr, result: expect.stringMatching(/^INVALID_VALUE/) });
      }
      // UN (a VR the sender did not know) is read with the dictionary's VR.
      expect(outcome(image([[a.tag, 'UN', us(a === A.rows || a === A.columns ? 64 : a === A.bitsAllocated ? 16 : 1)]]))).toMatchObject({ rows: 64 });
    },
  );

  it('records Bits Allocated and Samples per Pixel up to 65535 (the columns hold every US value)', () => {
    const wide = image(
      [
        [TAGS.rows, 'US', us(1)],
        [TAGS.columns, 'US', us(1)],
        [TAGS.bitsAllocated, 'US', us(40000)],
        [TAGS.pixelData, 'OB', Buffer.alloc(5000)],
      ],
      syntheticImage({ size: 1 }),
    );
    expect(outcome(wide)).toMatchObject({ bitsAllocated: 40000 });
    const samples = image(
      [
        [TAGS.samplesPerPixel, 'US', us(65535)],
        [TAGS.bitsAllocated, 'US', us(8)],
        [TAGS.pixelData, 'OB', Buffer.alloc(65536)],
      ],
      syntheticImage({ size: 1 }),
    );
    expect(outcome(samples)).toMatchObject({ samplesPerPixel: 65535 });
    expect(outcome(image([[TAGS.samplesPerPixel, 'US', us(0)]]))).toMatch(/^INVALID_VALUE \(0028,0002\) Samples per Pixel is 0/);
  });

  it.each([A.modality, A.photometricInterpretation])('$name (CS): refuses more than 16 characters, lower case, NUL and a second value', (a) => {
    for (const text of ['ABCDEFGHIJKLMNOPQ', 'X'.repeat(40), 'ct', 'C\0T', 'CT\\MR', 'CT-1']) {
      expect({ text, result: outcome(image([[a.tag, 'CS', text]])) }).toEqual({ text, result: expect.stringMatching(/^INVALID_VALUE/) });
    }
  });

  it('Photometric Interpretation: records any valid CS of up to 16 characters', () => {
    expect(outcome(image([[TAGS.photometricInterpretation, 'CS', 'ABCDEFGHIJ_KLMNO']]))).toMatchObject({ photometricInterpretation: 'ABCDEFGHIJ_KLMNO' });
  });

  it.each([A.sopInstanceUid, A.studyInstanceUid, A.seriesInstanceUid, A.sopClassUid])(
    '$name (UI): accepts 64 characters, refuses 65, a backslash, NUL, letters and empty components',
    (a) => {
      const uid64 = `1.2.826.0.1.3680043.9.7134${'.7'.repeat(17)}.123`;
      const uid65 = `${uid64}4`;
      expect([uid64.length, uid65.length]).toEqual([64, 65]);
      if (a !== A.sopClassUid) {
        expect({
          uid: (outcome(image([[a.tag, 'UI', uid64]])) as ImageSummary)[
            a === A.sopInstanceUid ? 'sopInstanceUid' : a === A.studyInstanceUid ? 'studyInstanceUid' : 'seriesInstanceUid'
          ],
        }).toEqual({ uid: uid64 });
      }
      for (const text of [uid65, '1.2.3\\1.2.4', '1.2.3\0.4', '1.2.abc', '1..2', '1.2.840.10008.5.1.4.1.1.2 x']) {
        expect({ text, result: outcome(image([[a.tag, 'UI', text]])) }).toEqual({ text, result: expect.stringMatching(/^INVALID_VALUE/) });
      }
    },
  );

  it('Study Date (DA): records a calendar date (the retired YYYY.MM.DD form too), null when empty, and refuses anything else', () => {
    expect(outcome(image([[TAGS.studyDate, 'DA', '20240229']]))).toMatchObject({ studyDate: '2024-02-29' });
    expect(outcome(image([[TAGS.studyDate, 'DA', '2024.01.17']]))).toMatchObject({ studyDate: '2024-01-17' });
    expect(outcome(image([[TAGS.studyDate, 'DA', '']]))).toMatchObject({ studyDate: null });
    for (const text of ['20230229', '20241399', '00000101', '2024-01-17', '20240117\\20240118', 'UNKNOWN']) {
      expect({ text, result: outcome(image([[TAGS.studyDate, 'DA', text]])) }).toEqual({ text, result: expect.stringMatching(/^INVALID_VALUE \(0008,0020\)/) });
    }
  });

  it('names a modality out of scope without echoing crafted text', () => {
    expect(outcome(image([[TAGS.modality, 'CS', 'PT']]))).toBe('UNSUPPORTED_MODALITY Modality PT is outside XR, CT, MR');
  });
});

describe('what the standard allows in native pixel data', () => {
  it('takes YBR_FULL_422 as two samples per pixel (PS3.3 C.7.6.3.1.2): rows x columns x 2 bytes at 8 bits', () => {
    const ybr = readPart10(syntheticImage({ modality: 'DX', photometric: 'YBR_FULL_422', size: 32 }));
    expect(ybr.dataset.get(TAGS.pixelData)?.bytes?.length).toBe(32 * 32 * 2);
    expect(outcome(ybr)).toMatchObject({ samplesPerPixel: 3, photometricInterpretation: 'YBR_FULL_422' });
    const short = image([[TAGS.pixelData, 'OB', Buffer.alloc(32 * 32 * 2 - 2)]], syntheticImage({ modality: 'DX', photometric: 'YBR_FULL_422', size: 32 }));
    expect(outcome(short)).toMatch(/^PIXEL_LENGTH_MISMATCH .* x 2 samples/);
    // RGB stays three samples per pixel.
    const rgb = image(
      [
        [TAGS.photometricInterpretation, 'CS', 'RGB'],
        [TAGS.pixelData, 'OB', Buffer.alloc(32 * 32 * 2)],
      ],
      syntheticImage({ modality: 'DX', photometric: 'YBR_FULL_422', size: 32 }),
    );
    expect(outcome(rgb)).toMatch(/^PIXEL_LENGTH_MISMATCH .* x 3 samples/);
  });

  it('accepts trailing padding after the last frame (PS3.5 8.1.1), single and multi-frame, and refuses pixel data one value short', () => {
    for (const [frames, paddingBytes] of [
      [1, 2],
      [1, 1000],
      [3, 6],
    ]) {
      expect({ frames, paddingBytes, result: outcome(readPart10(syntheticImage({ frames, paddingBytes }))) }).toMatchObject({
        frames,
        paddingBytes,
        result: { numberOfFrames: frames },
      });
    }
    const file = readPart10(syntheticImage({ frames: 2 }));
    const bytes = file.dataset.get(TAGS.pixelData)?.bytes as Buffer;
    expect(outcome(image([[TAGS.pixelData, 'OW', bytes.subarray(0, bytes.length - 2)]], syntheticImage({ frames: 2 })))).toMatch(/^PIXEL_LENGTH_MISMATCH/);
  });
});
