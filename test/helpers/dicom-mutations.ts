import { textBytes, type DicomDataset, type DicomElement } from '../../server/dicom/dataset';
import { tag, TAGS } from '../../server/dicom/dictionary';
import { readPart10, type Part10File } from '../../server/dicom/reader';
import { writePart10 } from '../../server/dicom/writer';

/**
 * Seeded mutations of valid DICOM files, for the ingest property test: byte flips, truncation at element
 * boundaries, length fields and VR codes overwritten, deep nesting, item and fragment floods, frame counts, and
 * values at and past the range of every attribute Facet records in a column.
 */
export type Random = () => number;

export const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)];
const int = (random: Random, lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));

/** Where one element of a file is: its header, where its length field sits and how wide it is. */
export interface ElementAt {
  offset: number;
  explicitVr: boolean;
  littleEndian: boolean;
  /** Offset and size of the length field. */
  lengthAt: number;
  lengthSize: 2 | 4;
  /** Offset of the two VR characters (explicit VR only). */
  vrAt: number | null;
  valueAt: number;
}

const LONG = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);

/**
 * The elements of a file's File Meta and top-level data set (and of defined-length sequence items), found by
 * walking the encoding; the walk stops at the first undefined length it cannot follow (good enough to aim mutations).
 */
export function elementsOf(file: Buffer): ElementAt[] {
  const out: ElementAt[] = [];
  if (file.length < 132) return out;
  let ts = '1.2.840.10008.1.2.1';
  const walk = (start: number, end: number, explicitVr: boolean, littleEndian: boolean, metaOnly: boolean): number => {
    let pos = start;
    while (pos + 8 <= end) {
      const group = littleEndian ? file.readUInt16LE(pos) : file.readUInt16BE(pos);
      if (metaOnly && group !== 0x0002) break;
      const vr = explicitVr ? file.toString('latin1', pos + 4, pos + 6) : null;
      const long = vr === null || LONG.has(vr);
      const lengthAt = vr === null ? pos + 4 : long ? pos + 8 : pos + 6;
      if (lengthAt + (long ? 4 : 2) > end) break;
      const length = long
        ? littleEndian
          ? file.readUInt32LE(lengthAt)
          : file.readUInt32BE(lengthAt)
        : littleEndian
          ? file.readUInt16LE(lengthAt)
          : file.readUInt16BE(lengthAt);
      const valueAt = lengthAt + (long ? 4 : 2);
      out.push({ offset: pos, explicitVr, littleEndian, lengthAt, lengthSize: long ? 4 : 2, vrAt: explicitVr ? pos + 4 : null, valueAt });
      if (metaOnly && (littleEndian ? file.readUInt16LE(pos + 2) : file.readUInt16BE(pos + 2)) === 0x0010) {
        ts = file.toString('latin1', valueAt, valueAt + length).replace(/[\0 ]+$/, '');
      }
      if (length === 0xffffffff) break;
      if (vr === 'SQ' && valueAt + length <= end) {
        // Items of a defined-length sequence: each item header, then its elements.
        let item = valueAt;
        while (item + 8 <= valueAt + length) {
          const itemLength = littleEndian ? file.readUInt32LE(item + 4) : file.readUInt32BE(item + 4);
          if (itemLength === 0xffffffff || item + 8 + itemLength > valueAt + length) break;
          walk(item + 8, item + 8 + itemLength, explicitVr, littleEndian, false);
          item += 8 + itemLength;
        }
      }
      pos = valueAt + length;
    }
    return pos;
  };
  const metaEnd = walk(132, file.length, true, true, true);
  if (ts === '1.2.840.10008.1.2.1.99') return out; // the rest is a deflate stream
  walk(metaEnd, file.length, ts !== '1.2.840.10008.1.2', ts !== '1.2.840.10008.1.2.2', false);
  return out;
}

const VR_CODES = [
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FD',
  'FL',
  'IS',
  'LO',
  'LT',
  'OB',
  'OW',
  'PN',
  'SH',
  'SL',
  'SQ',
  'SS',
  'ST',
  'TM',
  'UI',
  'UL',
  'UN',
  'US',
  'UT',
  'ZZ',
  '\0\0',
  'us',
];
const LENGTHS = [1, 3, 0xfffe, 0xffff, 0x7fffffff, 0xfffffffe, 0xffffffff, 0];

/** Byte-level mutations: they make files the reader must refuse (or read) without any trust in their lengths. */
export const BYTE_MUTATIONS: Record<string, (file: Buffer, random: Random) => Buffer> = {
  flipBytes(file, random) {
    const out = Buffer.from(file);
    // Most of the structure is in the first 2 KB; flips in pixel data are harmless and boring.
    const span = Math.min(out.length, random() < 0.8 ? 2048 : out.length);
    for (let i = int(random, 1, 8); i > 0; i--) out[int(random, 0, span - 1)] ^= 1 << int(random, 0, 7);
    return out;
  },
  truncateAtBoundary(file, random) {
    const elements = elementsOf(file);
    if (!elements.length) return file.subarray(0, int(random, 0, file.length));
    const e = pick(random, elements);
    const cut = pick(random, [
      e.offset,
      e.offset + 2,
      e.offset + 4,
      e.vrAt ?? e.offset + 4,
      e.lengthAt,
      e.lengthAt + 1,
      e.valueAt,
      e.valueAt + 1,
      e.valueAt + 2,
    ]);
    return file.subarray(0, Math.min(cut, file.length));
  },
  truncateAnywhere(file, random) {
    return file.subarray(0, int(random, 0, file.length - 1));
  },
  setLength(file, random) {
    const elements = elementsOf(file);
    if (!elements.length) return file;
    const e = pick(random, elements);
    const out = Buffer.from(file);
    const current =
      e.lengthSize === 2
        ? e.littleEndian
          ? out.readUInt16LE(e.lengthAt)
          : out.readUInt16BE(e.lengthAt)
        : e.littleEndian
          ? out.readUInt32LE(e.lengthAt)
          : out.readUInt32BE(e.lengthAt);
    const value = pick(random, [...LENGTHS, current + 1, current + 2, Math.max(0, current - 2), current * 2]) >>> 0;
    if (e.lengthSize === 2) {
      const v = value & 0xffff;
      if (e.littleEndian) out.writeUInt16LE(v, e.lengthAt);
      else out.writeUInt16BE(v, e.lengthAt);
    } else if (e.littleEndian) out.writeUInt32LE(value, e.lengthAt);
    else out.writeUInt32BE(value, e.lengthAt);
    return out;
  },
  swapVr(file, random) {
    const elements = elementsOf(file).filter((e) => e.vrAt !== null);
    if (!elements.length) return file;
    const e = pick(random, elements);
    const out = Buffer.from(file);
    out.write(pick(random, VR_CODES), e.vrAt as number, 'latin1');
    return out;
  },
  appendGarbage(file, random) {
    const extra = Buffer.alloc(int(random, 1, 64));
    for (let i = 0; i < extra.length; i++) extra[i] = int(random, 0, 255);
    return Buffer.concat([file, extra]);
  },
};

/** An attribute Facet records, with values at and past what its column and VR hold. */
const AT_AND_PAST: Array<{ tag: number; vr: string; values: string[] }> = [
  ...[TAGS.sopInstanceUid, TAGS.studyInstanceUid, TAGS.seriesInstanceUid, TAGS.sopClassUid].map((t) => ({
    tag: t,
    vr: 'UI',
    values: [`1.2.3${'.4'.repeat(29)}.5`, `1.2.3${'.4'.repeat(30)}`, `1.2.3${'.4'.repeat(31)}`, '1.2\\3.4', '1.2.3\0.4', '1.2.abc', '1..2', '.1.2', '', '0'],
  })),
  ...[TAGS.modality, TAGS.photometricInterpretation].map((t) => ({
    tag: t,
    vr: 'CS',
    values: ['ABCDEFGHIJKLMNOP', 'ABCDEFGHIJKLMNOPQ', 'X'.repeat(40), 'ct', 'C\0T', 'CT\\MR', 'MONOCHROME2', 'YBR_FULL_422', 'RGB', 'PT', ''],
  })),
  ...[TAGS.seriesNumber, TAGS.instanceNumber, TAGS.numberOfFrames].map((t) => ({
    tag: t,
    vr: 'IS',
    values: ['2147483647', '2147483648', '-2147483648', '-2147483649', '99999999999999999999', '1\\2', '1.5', 'abc', '+12', ' 7 ', '0', '-1', '1\0'],
  })),
  { tag: TAGS.studyDate, vr: 'DA', values: ['20241399', '00000101', '99991231', '2024.01.17', '2024-01-17', '20240117\\20240118', '', '2024011'] },
];

const US_ATTRIBUTES = [TAGS.rows, TAGS.columns, TAGS.bitsAllocated, TAGS.samplesPerPixel];

const le16 = (v: number, littleEndian: boolean) => {
  const b = Buffer.alloc(2);
  if (littleEndian) b.writeUInt16LE(v);
  else b.writeUInt16BE(v);
  return b;
};
const le32 = (v: number, littleEndian: boolean) => {
  const b = Buffer.alloc(4);
  if (littleEndian) b.writeUInt32LE(v >>> 0);
  else b.writeUInt32BE(v >>> 0);
  return b;
};

/** Raw text bytes, even-padded, without the padding rules textBytes would apply to odd content such as NUL. */
const rawText = (vr: string, value: string): Buffer => textBytes(vr, value);

/** A chain of `depth` sequences, each with one item holding the next. */
function nested(depth: number): DicomElement {
  const t = tag(0x0040, 0xa730); // Content Sequence
  let element: DicomElement = { tag: t, vr: 'SQ', items: [new Map()] };
  for (let i = 1; i < depth; i++) element = { tag: t, vr: 'SQ', items: [new Map([[t, element]])] };
  return element;
}

/** Structural mutations: files that encode correctly but hold hostile values or shapes. */
export const DATASET_MUTATIONS: Record<string, (file: Part10File, random: Random, limits: { maxElements: number; maxDepth: number }) => void> = {
  storedValue(file, random) {
    const a = pick(random, AT_AND_PAST);
    file.dataset.set(a.tag, { tag: a.tag, vr: a.vr, bytes: rawText(a.vr, pick(random, a.values)) });
  },
  usValue(file, random) {
    const t = pick(random, US_ATTRIBUTES);
    const le = file.transferSyntax.littleEndian;
    const choice = int(random, 0, 5);
    const element: DicomElement =
      choice === 0
        ? { tag: t, vr: 'US', bytes: le16(pick(random, [0, 1, 3, 8, 16, 32767, 32768, 40000, 65535]), le) }
        : choice === 1
          ? { tag: t, vr: 'UL', bytes: le32(pick(random, [65536, 0x7fffffff, 0x80000000, 0xffffffff]), le) }
          : choice === 2
            ? { tag: t, vr: 'SS', bytes: le16(0x8000, le) }
            : choice === 3
              ? { tag: t, vr: 'IS', bytes: rawText('IS', pick(random, ['70000', '3000000000', '-1'])) }
              : choice === 4
                ? { tag: t, vr: 'US', bytes: Buffer.concat([le16(64, le), le16(64, le)]) }
                : { tag: t, vr: 'US', bytes: Buffer.alloc(0) };
    file.dataset.set(t, element);
  },
  frames(file, random) {
    file.dataset.set(TAGS.numberOfFrames, {
      tag: TAGS.numberOfFrames,
      vr: 'IS',
      bytes: rawText('IS', String(pick(random, [0, 1, 2, 3, 1000, 2 ** 31 - 1, 2 ** 31, 3e9]))),
    });
  },
  dropAttribute(file, random) {
    file.dataset.delete(pick(random, [TAGS.sopInstanceUid, TAGS.rows, TAGS.modality, TAGS.pixelData, TAGS.patientId, TAGS.sopClassUid, TAGS.studyInstanceUid]));
  },
  truncatePixels(file, random) {
    const pixels = file.dataset.get(TAGS.pixelData);
    if (pixels?.bytes)
      file.dataset.set(TAGS.pixelData, { ...pixels, bytes: pixels.bytes.subarray(0, Math.max(0, pixels.bytes.length - 2 * int(random, 1, 64))) });
  },
  padPixels(file, random) {
    const pixels = file.dataset.get(TAGS.pixelData);
    if (pixels?.bytes) file.dataset.set(TAGS.pixelData, { ...pixels, bytes: Buffer.concat([pixels.bytes, Buffer.alloc(2 * int(random, 1, 32))]) });
  },
};

/** Mutations that cost work in proportion to the limits (floods, nesting): drawn less often. */
export const HEAVY_MUTATIONS: typeof DATASET_MUTATIONS = {
  deepNesting(file, random, limits) {
    const depth = pick(random, [limits.maxDepth - 1, limits.maxDepth, limits.maxDepth + 1, 200]);
    const element = nested(Math.max(1, depth));
    file.dataset.set(element.tag, element);
  },
  itemFlood(file, random, limits) {
    const t = tag(0x0008, 0x1115); // Referenced Series Sequence
    const count = pick(random, [limits.maxElements - 200, limits.maxElements + 1, limits.maxElements * 3]);
    file.dataset.set(t, { tag: t, vr: 'SQ', items: Array.from({ length: Math.max(0, count) }, () => new Map()) });
  },
  elementFlood(file, random, limits) {
    // Many small elements in one item: every one is an element to read and de-identify.
    const t = tag(0x0040, 0x0275); // Request Attributes Sequence
    const count = pick(random, [limits.maxElements + 10, limits.maxElements * 2]);
    const items: DicomDataset[] = [];
    for (let i = 0; i < count; i += 1000) {
      const item: DicomDataset = new Map();
      for (let e = 0; e < 1000; e++) item.set(tag(0x0011, 0x1000 + e), { tag: tag(0x0011, 0x1000 + e), vr: 'LO', bytes: Buffer.from('AB') });
      items.push(item);
    }
    file.dataset.set(t, { tag: t, vr: 'SQ', items });
  },
  fragmentFlood(file, random, limits) {
    const pixels = file.dataset.get(TAGS.pixelData);
    if (!pixels?.fragments) return;
    const count = pick(random, [limits.maxElements + 1, limits.maxElements * 2]);
    file.dataset.set(TAGS.pixelData, { ...pixels, fragments: [pixels.fragments[0], ...Array.from({ length: count }, () => Buffer.alloc(0))] });
  },
};

/** A fresh, valid SOP Instance UID (so a mutated object that is still valid is a new instance, not a conflict). */
export function renameInstance(file: Part10File, n: number): void {
  const uid = `1.2.826.0.1.3680043.9.7134.4.${n}`;
  file.dataset.set(TAGS.sopInstanceUid, { tag: TAGS.sopInstanceUid, vr: 'UI', bytes: textBytes('UI', uid) });
  file.meta.set(TAGS.mediaStorageSopInstanceUid, { tag: TAGS.mediaStorageSopInstanceUid, vr: 'UI', bytes: textBytes('UI', uid) });
}

/**
 * One mutated object: maybe a new instance UID, then 0-2 structural mutations (re-encoded), then 0-2 byte-level
 * ones. Answers the bytes and the names of the mutations applied.
 */
export function mutate(valid: Buffer, random: Random, n: number, limits: { maxElements: number; maxDepth: number }): { bytes: Buffer; applied: string[] } {
  const applied: string[] = [];
  let bytes = valid;
  const structural = int(random, 0, 2);
  const fresh = random() < 0.5;
  if (structural > 0 || fresh) {
    const file = readPart10(valid);
    if (fresh) {
      renameInstance(file, n);
      applied.push('renameInstance');
    }
    for (let i = 0; i < structural; i++) {
      const table = random() < 0.06 ? HEAVY_MUTATIONS : DATASET_MUTATIONS;
      const name = pick(random, Object.keys(table));
      table[name](file, random, limits);
      applied.push(name);
    }
    bytes = writePart10(file.meta, file.dataset, file.transferSyntax);
  }
  const byteLevel = structural === 0 ? int(random, 1, 2) : int(random, 0, 1);
  for (let i = 0; i < byteLevel; i++) {
    const name = pick(random, Object.keys(BYTE_MUTATIONS));
    bytes = BYTE_MUTATIONS[name](bytes, random);
    applied.push(name);
  }
  return { bytes, applied };
}

/** `file` (explicit VR little endian) with `element` (encoded) inserted before the first top-level element with a higher tag. */
export function insertElement(file: Buffer, tagValue: number, element: Buffer): Buffer {
  const found = elementsOf(file).find(
    (e) => e.offset > 132 && ((file.readUInt16LE(e.offset) << 16) | file.readUInt16LE(e.offset + 2)) >>> 0 > tagValue,
  )?.offset;
  // The walk stops at an undefined length; Pixel Data, the last element, is then found by its tag (text values before it do not hold 0xE0 0x7F).
  const at = found ?? (tagValue < TAGS.pixelData ? file.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]), 132) : -1);
  if (at < 0) throw new Error('No element after the insertion point');
  return Buffer.concat([file.subarray(0, at), element, file.subarray(at)]);
}

/** Explicit VR little endian: a defined-length sequence of `count` empty defined-length items (8 bytes each). */
export function emptyItemsSequence(tagValue: number, count: number): Buffer {
  const out = Buffer.alloc(12 + 8 * count);
  out.writeUInt16LE(tagValue >>> 16, 0);
  out.writeUInt16LE(tagValue & 0xffff, 2);
  out.write('SQ', 4, 'latin1');
  out.writeUInt32LE(8 * count, 8);
  for (let i = 0; i < count; i++) {
    out.writeUInt16LE(0xfffe, 12 + 8 * i);
    out.writeUInt16LE(0xe000, 14 + 8 * i);
  }
  return out;
}
