import type { DicomDataset, DicomElement } from './dataset';
import { TAGS } from './dictionary';
import { LONG_LENGTH_VRS } from './reader';
import type { TransferSyntax } from './transfer-syntax';

const UNDEFINED_LENGTH = 0xffffffff;

interface Encoding {
  littleEndian: boolean;
  explicitVr: boolean;
}

/** Collects the encoded bytes; numbers in the encoding's byte order. */
class Output {
  readonly chunks: Buffer[] = [];
  size = 0;

  constructor(private readonly encoding: Encoding) {}

  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  u16(v: number): void {
    const b = Buffer.allocUnsafe(2);
    if (this.encoding.littleEndian) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
    this.push(b);
  }

  u32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    if (this.encoding.littleEndian) b.writeUInt32LE(v >>> 0);
    else b.writeUInt32BE(v >>> 0);
    this.push(b);
  }

  tag(t: number): void {
    this.u16(t >>> 16);
    this.u16(t & 0xffff);
  }

  header(t: number, vr: string, length: number): void {
    this.tag(t);
    if (!this.encoding.explicitVr) {
      this.u32(length);
    } else if (LONG_LENGTH_VRS.has(vr)) {
      this.push(Buffer.from(`${vr}\0\0`, 'latin1'));
      this.u32(length);
    } else {
      if (length > 0xfffe) throw new Error(`A ${vr} value of ${length} bytes does not fit a 2-byte length`);
      this.push(Buffer.from(vr, 'latin1'));
      this.u16(length);
    }
  }

  element(e: DicomElement): void {
    if (e.fragments) {
      this.header(e.tag, 'OB', UNDEFINED_LENGTH);
      for (const fragment of e.fragments) {
        this.tag(TAGS.itemStart);
        this.u32(fragment.length);
        this.push(fragment);
      }
      this.tag(TAGS.sequenceEnd);
      this.u32(0);
    } else if (e.items) {
      // Undefined lengths with delimiters: no second pass to measure nested items.
      this.header(e.tag, 'SQ', UNDEFINED_LENGTH);
      for (const item of e.items) {
        this.tag(TAGS.itemStart);
        this.u32(UNDEFINED_LENGTH);
        this.dataset(item);
        this.tag(TAGS.itemEnd);
        this.u32(0);
      }
      this.tag(TAGS.sequenceEnd);
      this.u32(0);
    } else {
      const bytes = e.bytes ?? Buffer.alloc(0);
      this.header(e.tag, e.vr, bytes.length);
      this.push(bytes);
    }
  }

  dataset(dataset: DicomDataset): void {
    for (const t of [...dataset.keys()].sort((a, b) => a - b)) this.element(dataset.get(t) as DicomElement);
  }
}

/**
 * Writes a Part 10 file: zero preamble, "DICM", File Meta (explicit VR LE, its group length computed), then
 * the data set in `transferSyntax` (the one it was read in, so raw values and pixel data stay valid as-is).
 */
export function writePart10(meta: DicomDataset, dataset: DicomDataset, transferSyntax: TransferSyntax): Buffer {
  const metaBody = new Output({ littleEndian: true, explicitVr: true });
  const metaWithoutLength = new Map(meta);
  metaWithoutLength.delete(TAGS.fileMetaGroupLength);
  metaBody.dataset(metaWithoutLength);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(metaBody.size);
  const head = new Output({ littleEndian: true, explicitVr: true });
  head.push(Buffer.alloc(128));
  head.push(Buffer.from('DICM', 'latin1'));
  head.element({ tag: TAGS.fileMetaGroupLength, vr: 'UL', bytes: groupLength });
  const body = new Output(transferSyntax);
  body.dataset(dataset);
  return Buffer.concat([...head.chunks, ...metaBody.chunks, ...body.chunks], head.size + metaBody.size + body.size);
}
