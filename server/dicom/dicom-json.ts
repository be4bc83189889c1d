import type { DicomDataset, DicomElement } from './dataset';
import { textOf } from './dataset';
import { TAGS } from './dictionary';
import type { Part10File } from './reader';
import { textValues } from './vr';

/** One attribute of the DICOM JSON Model (PS3.18 F.2): a VR and either values, inline bytes or a Bulk Data URI. */
export interface DicomJsonAttribute {
  vr: string;
  Value?: unknown[];
  InlineBinary?: string;
  BulkDataURI?: string;
}
export type DicomJsonDataset = Record<string, DicomJsonAttribute>;

/** The pixel data attributes (integer, float, double float): answered by reference, the frames resource. */
const PIXEL_DATA = new Set<number>([TAGS.pixelData, TAGS.floatPixelData, TAGS.doubleFloatPixelData]);
const NUMERIC_TEXT = new Set(['DS', 'IS']);
const BINARY = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
const BINARY_NUMBERS: Record<string, { size: number; read: (b: Buffer, at: number, le: boolean) => number | string }> = {
  US: { size: 2, read: (b, at, le) => (le ? b.readUInt16LE(at) : b.readUInt16BE(at)) },
  SS: { size: 2, read: (b, at, le) => (le ? b.readInt16LE(at) : b.readInt16BE(at)) },
  UL: { size: 4, read: (b, at, le) => (le ? b.readUInt32LE(at) : b.readUInt32BE(at)) },
  SL: { size: 4, read: (b, at, le) => (le ? b.readInt32LE(at) : b.readInt32BE(at)) },
  FL: { size: 4, read: (b, at, le) => (le ? b.readFloatLE(at) : b.readFloatBE(at)) },
  FD: { size: 8, read: (b, at, le) => (le ? b.readDoubleLE(at) : b.readDoubleBE(at)) },
  // 64-bit integers beyond 2^53 lose precision as JSON numbers; PS3.18 F.2.3.1 allows them as strings.
  SV: { size: 8, read: (b, at, le) => bigIntValue(le ? b.readBigInt64LE(at) : b.readBigInt64BE(at)) },
  UV: { size: 8, read: (b, at, le) => bigIntValue(le ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at)) },
  AT: {
    size: 4,
    read: (b, at, le) => {
      const group = le ? b.readUInt16LE(at) : b.readUInt16BE(at);
      const element = le ? b.readUInt16LE(at + 2) : b.readUInt16BE(at + 2);
      return ((group << 16) | element).toString(16).padStart(8, '0').toUpperCase();
    },
  },
};
const bigIntValue = (v: bigint): number | string => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());

export const jsonTag = (t: number): string => t.toString(16).padStart(8, '0').toUpperCase();

/** How text bytes become characters: UTF-8 when the object says ISO_IR 192, otherwise Latin-1 (the default repertoire is a subset of both). */
function decoderOf(dataset: DicomDataset): (bytes: Buffer) => string {
  const charset = textOf(dataset, TAGS.specificCharacterSet) ?? '';
  return charset.includes('ISO_IR 192') ? (b) => b.toString('utf8') : (b) => b.toString('latin1');
}

interface Encoding {
  littleEndian: boolean;
  decode: (bytes: Buffer) => string;
}

/** The Value of a text element: strings (null for an empty value), numbers for DS and IS, name groups for PN. */
function textValue(element: DicomElement, text: string): unknown[] {
  const values = textValues(element.vr, text).map((v) => (element.vr === 'LT' || element.vr === 'ST' || element.vr === 'UT' ? v : v.trim()));
  if (element.vr === 'PN') {
    return values.map((v) => {
      if (!v) return null;
      const [alphabetic, ideographic, phonetic] = v.split('=');
      return Object.fromEntries(
        Object.entries({ Alphabetic: alphabetic, Ideographic: ideographic, Phonetic: phonetic }).filter(([, part]) => part !== undefined && part !== ''),
      );
    });
  }
  if (NUMERIC_TEXT.has(element.vr)) {
    return values.map((v) => {
      if (v === '') return null;
      const n = Number(v);
      return Number.isFinite(n) ? n : null;
    });
  }
  return values.map((v) => (v === '' ? null : v));
}

function attribute(element: DicomElement, encoding: Encoding, bulkDataUri: string | null): DicomJsonAttribute {
  if (PIXEL_DATA.has(element.tag) && bulkDataUri) return { vr: element.vr, BulkDataURI: bulkDataUri };
  if (element.items) return element.items.length ? { vr: 'SQ', Value: element.items.map((item) => datasetJson(item, encoding, null)) } : { vr: 'SQ' };
  if (element.fragments) return { vr: element.vr, InlineBinary: Buffer.concat(element.fragments.slice(1)).toString('base64') };
  const bytes = element.bytes;
  if (!bytes || bytes.length === 0) return { vr: element.vr };
  if (BINARY.has(element.vr)) return { vr: element.vr, InlineBinary: bytes.toString('base64') };
  const number = BINARY_NUMBERS[element.vr];
  if (number) {
    const values: unknown[] = [];
    for (let at = 0; at + number.size <= bytes.length; at += number.size) values.push(number.read(bytes, at, encoding.littleEndian));
    return { vr: element.vr, Value: values };
  }
  return { vr: element.vr, Value: textValue(element, element.vr === 'UI' ? bytes.toString('latin1') : encoding.decode(bytes)) };
}

function datasetJson(dataset: DicomDataset, encoding: Encoding, bulkDataUri: string | null): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  for (const t of [...dataset.keys()].sort((a, b) => a - b)) {
    const element = dataset.get(t) as DicomElement;
    // Group lengths are an encoding detail (PS3.18 F.2: not part of the model).
    if ((t & 0xffff) === 0) continue;
    out[jsonTag(t)] = attribute(element, encoding, bulkDataUri);
  }
  return out;
}

/**
 * A stored object as the DICOM JSON Model (PS3.18 F.2) for WADO-RS metadata: every attribute of the data set,
 * sequences at any depth, binary values inline (base64) except the top-level pixel data, which is answered by a
 * Bulk Data URI (`pixelDataUri`, the object's frames resource). The transfer syntax the object is stored in is
 * given as Transfer Syntax UID (0002,0010) and Available Transfer Syntax UID (0008,3002).
 */
export function toDicomJson(file: Part10File, pixelDataUri: string): DicomJsonDataset {
  const encoding: Encoding = { littleEndian: file.transferSyntax.littleEndian, decode: decoderOf(file.dataset) };
  const out = datasetJson(file.dataset, encoding, pixelDataUri);
  out['00020010'] = { vr: 'UI', Value: [file.transferSyntax.uid] };
  out['00083002'] = { vr: 'UI', Value: [file.transferSyntax.uid] };
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
