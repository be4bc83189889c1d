import { inflate, inflateRaw, inflateRawSync, inflateSync, type ZlibOptions } from 'node:zlib';
import { promisify } from 'node:util';
import type { DicomDataset, DicomElement } from './dataset';
import { formatTag, TAGS, vrOf } from './dictionary';
import { TRANSFER_SYNTAXES, type TransferSyntax } from './transfer-syntax';

/** Why a file could not be read; each is a rejection reason a coordinator sees. */
export type DicomReadErrorCode = 'NOT_PART10' | 'TRUNCATED' | 'IMPOSSIBLE_LENGTH' | 'MALFORMED_ELEMENT' | 'UNSUPPORTED_TRANSFER_SYNTAX' | 'TOO_COMPLEX';

/**
 * How much work one object may cause, beyond its bytes: a file of 8 MB can hold a million empty sequence items,
 * each a data set in memory (measured: 1,000,000 items took 3 s to read and 1.4 GB to re-encode), so the number of
 * elements is bounded, and so are the nesting depth (recursion) and the size a deflated data set inflates to.
 */
export interface ReadLimits {
  /** Data elements, sequence items and pixel data fragments at every level, the File Meta included. */
  maxElements: number;
  /** Sequences within sequences. */
  maxDepth: number;
  /** Bytes a Deflated Explicit VR Little Endian data set may inflate to. */
  maxInflatedBytes: number;
}

/**
 * Defaults: 100,000 elements is 2-4 times the largest enhanced multi-frame objects (a 1,000-frame enhanced MR with
 * per-frame functional groups holds about 40,000) and reads in 0.1-0.2 s; real data nests 5 or 6 levels deep.
 */
export const DEFAULT_READ_LIMITS: ReadLimits = { maxElements: 100_000, maxDepth: 16, maxInflatedBytes: 1024 * 1024 * 1024 };

export class DicomReadError extends Error {
  constructor(
    readonly code: DicomReadErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DicomReadError';
  }
}

export interface Part10File {
  meta: DicomDataset;
  dataset: DicomDataset;
  transferSyntax: TransferSyntax;
}

const UNDEFINED_LENGTH = 0xffffffff;
/** Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1). */
export const LONG_LENGTH_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);
/** Every VR of PS3.5 Table 6.2-1; anything else in an explicit-VR file is malformed. */
const VRS = new Set([
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
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'PN',
  'SH',
  'SL',
  'SQ',
  'SS',
  'ST',
  'SV',
  'TM',
  'UC',
  'UI',
  'UL',
  'UN',
  'UR',
  'US',
  'UT',
  'UV',
]);
interface Encoding {
  littleEndian: boolean;
  explicitVr: boolean;
}

/** What one object has used of its limits, shared by every cursor that reads it. */
class Budget {
  elements = 0;

  constructor(readonly limits: ReadLimits) {}

  /** Counts one element, item or fragment. */
  spend(at: number): void {
    if (++this.elements > this.limits.maxElements) {
      throw new DicomReadError('TOO_COMPLEX', `The object holds more than ${this.limits.maxElements} elements, items and fragments (at byte ${at})`);
    }
  }
}

/**
 * A strict Part 10 reader: every length is checked against the bytes that hold it, so a cut file is TRUNCATED
 * and a length no file could have is IMPOSSIBLE_LENGTH, instead of a silently short value.
 */
class Cursor {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    private readonly encoding: Encoding,
    private readonly budget: Budget,
  ) {}

  private need(bytes: number, limit: number, what: string): void {
    if (this.pos + bytes > this.buf.length) throw new DicomReadError('TRUNCATED', `The file ends inside ${what} at byte ${this.pos}`);
    if (this.pos + bytes > limit) throw new DicomReadError('IMPOSSIBLE_LENGTH', `${what} at byte ${this.pos} runs past its enclosing item`);
  }

  private u16(): number {
    const v = this.encoding.littleEndian ? this.buf.readUInt16LE(this.pos) : this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  private u32(): number {
    const v = this.encoding.littleEndian ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Tag and length of an item or delimiter (always implicit: tag + 4-byte length). */
  private itemHeader(limit: number): { tag: number; length: number } {
    this.need(8, limit, 'an item header');
    const group = this.u16();
    const element = this.u16();
    return { tag: ((group << 16) | element) >>> 0, length: this.u32() };
  }

  /**
   * A data set: elements in ascending tag order (PS3.5 7.1), each tag once; the command and file meta groups
   * (0000, 0002) and directory group (0004) never belong in it. Anything else is MALFORMED_ELEMENT, so a file
   * cannot smuggle a second Patient ID or a meta element past de-identification.
   */
  readDataset(limit: number, depth: number, until?: number): DicomDataset {
    const dataset: DicomDataset = new Map();
    let previous = -1;
    while (this.pos < limit) {
      if (until !== undefined && this.peekTag() === until) return dataset;
      const at = this.pos;
      const element = this.readElement(limit, depth);
      if (!element) continue;
      const group = element.tag >>> 16;
      if (group === 0x0000 || group === 0x0002 || group === 0x0004) {
        throw new DicomReadError('MALFORMED_ELEMENT', `Element ${formatTag(element.tag)} at byte ${at} belongs to the command, file meta or directory group`);
      }
      if (element.tag <= previous) throw new DicomReadError('MALFORMED_ELEMENT', `Element ${formatTag(element.tag)} at byte ${at} is out of order or repeated`);
      previous = element.tag;
      dataset.set(element.tag, element);
    }
    return dataset;
  }

  /** The File Meta group: elements while their group is `group` (always explicit VR little endian). */
  readGroup(group: number, limit: number): DicomDataset {
    const dataset: DicomDataset = new Map();
    while (this.pos < limit && (this.peekTag() ?? 0) >>> 16 === group) {
      const element = this.readElement(limit, 0);
      if (element) dataset.set(element.tag, element);
    }
    return dataset;
  }

  peekTag(): number | null {
    if (this.pos + 4 > this.buf.length) return null;
    const group = this.encoding.littleEndian ? this.buf.readUInt16LE(this.pos) : this.buf.readUInt16BE(this.pos);
    const element = this.encoding.littleEndian ? this.buf.readUInt16LE(this.pos + 2) : this.buf.readUInt16BE(this.pos + 2);
    return ((group << 16) | element) >>> 0;
  }

  private readElement(limit: number, depth: number): DicomElement | null {
    const start = this.pos;
    this.need(8, limit, 'an element header');
    this.budget.spend(start);
    const group = this.u16();
    const element = this.u16();
    const t = ((group << 16) | element) >>> 0;
    if (group === 0xfffe) {
      throw new DicomReadError('MALFORMED_ELEMENT', `Item tag ${formatTag(t)} outside a sequence at byte ${start}`);
    }
    let vr: string;
    let length: number;
    if (this.encoding.explicitVr) {
      vr = this.buf.toString('latin1', this.pos, this.pos + 2);
      this.pos += 2;
      if (!VRS.has(vr)) throw new DicomReadError('MALFORMED_ELEMENT', `Element ${formatTag(t)} at byte ${start} has no valid VR`);
      if (LONG_LENGTH_VRS.has(vr)) {
        this.need(6, limit, `the length of ${formatTag(t)}`);
        this.pos += 2;
        length = this.u32();
      } else {
        length = this.u16();
      }
    } else {
      vr = vrOf(t);
      length = this.u32();
    }

    if (length === UNDEFINED_LENGTH) {
      if (t === TAGS.pixelData) return { tag: t, vr: vr === 'OW' ? 'OW' : 'OB', fragments: this.readFragments(limit) };
      if (vr === 'SQ') return { tag: t, vr: 'SQ', items: this.readItems(limit, depth, null, false) };
      // A UN of undefined length is a sequence encoded implicit little endian; its VRs are guesses, so it is marked.
      if (vr === 'UN') return { tag: t, vr: 'SQ', items: this.readItems(limit, depth, null, true), fromUnknown: true };
      throw new DicomReadError('IMPOSSIBLE_LENGTH', `Element ${formatTag(t)} (${vr}) at byte ${start} has an undefined length`);
    }
    if (length % 2 === 1) throw new DicomReadError('IMPOSSIBLE_LENGTH', `Element ${formatTag(t)} at byte ${start} has an odd length (${length})`);
    this.need(length, limit, `the value of ${formatTag(t)}`);
    if (vr === 'SQ') {
      const end = this.pos + length;
      return { tag: t, vr, items: this.readItems(end, depth, end, false) };
    }
    const bytes = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return { tag: t, vr, bytes };
  }

  /** Items up to `end` (defined-length sequence) or up to the sequence delimiter. */
  private readItems(limit: number, depth: number, end: number | null, implicitLittleEndian: boolean): Array<DicomDataset> {
    if (depth >= this.budget.limits.maxDepth) throw new DicomReadError('TOO_COMPLEX', `Sequences nest deeper than ${this.budget.limits.maxDepth} levels`);
    // A UN sequence of undefined length is encoded as Implicit VR Little Endian inside (PS3.5 6.2.2).
    const reader = implicitLittleEndian ? new Cursor(this.buf, this.pos, { littleEndian: true, explicitVr: false }, this.budget) : this;
    const items: DicomDataset[] = [];
    for (;;) {
      if (end !== null && reader.pos >= end) break;
      const header = reader.itemHeader(end ?? limit);
      if (header.tag === TAGS.sequenceEnd && end === null) {
        if (header.length !== 0) throw new DicomReadError('MALFORMED_ELEMENT', 'A sequence delimiter has a non-zero length');
        break;
      }
      if (header.tag !== TAGS.itemStart) throw new DicomReadError('MALFORMED_ELEMENT', `Expected an item in a sequence, found ${formatTag(header.tag)}`);
      this.budget.spend(reader.pos - 8);
      if (header.length === UNDEFINED_LENGTH) {
        items.push(reader.readDataset(end ?? limit, depth + 1, TAGS.itemEnd));
        const close = reader.itemHeader(end ?? limit);
        if (close.tag !== TAGS.itemEnd) throw new DicomReadError('TRUNCATED', 'An item of undefined length has no delimiter');
        if (close.length !== 0) throw new DicomReadError('MALFORMED_ELEMENT', 'An item delimiter has a non-zero length');
      } else {
        if (header.length % 2 === 1) throw new DicomReadError('IMPOSSIBLE_LENGTH', `An item has an odd length (${header.length})`);
        reader.need(header.length, end ?? limit, 'an item');
        const itemEnd = reader.pos + header.length;
        items.push(reader.readDataset(itemEnd, depth + 1));
      }
    }
    this.pos = reader.pos;
    return items;
  }

  /** Encapsulated pixel data: the offset table and each fragment, up to the sequence delimiter. */
  private readFragments(limit: number): Buffer[] {
    const fragments: Buffer[] = [];
    for (;;) {
      const header = this.itemHeader(limit);
      if (header.tag === TAGS.sequenceEnd) {
        if (header.length !== 0) throw new DicomReadError('MALFORMED_ELEMENT', 'A sequence delimiter has a non-zero length');
        break;
      }
      this.budget.spend(this.pos - 8);
      if (header.tag !== TAGS.itemStart || header.length === UNDEFINED_LENGTH || header.length % 2 === 1) {
        throw new DicomReadError('MALFORMED_ELEMENT', 'Encapsulated pixel data holds something other than fragments');
      }
      this.need(header.length, limit, 'a pixel data fragment');
      fragments.push(this.buf.subarray(this.pos, this.pos + header.length));
      this.pos += header.length;
    }
    return fragments;
  }
}

interface Head {
  meta: DicomDataset;
  transferSyntax: TransferSyntax;
  /** Where the data set starts. */
  bodyStart: number;
  budget: Budget;
}

/** The preamble, "DICM" and the File Meta (always explicit VR little endian). */
function readHead(buf: Buffer, limits: ReadLimits): Head {
  if (buf.length < 132 || buf.toString('latin1', 128, 132) !== 'DICM') {
    throw new DicomReadError('NOT_PART10', 'Not a DICOM Part 10 file: no "DICM" marker after the 128-byte preamble');
  }
  const budget = new Budget(limits);
  const metaCursor = new Cursor(buf, 132, { littleEndian: true, explicitVr: true }, budget);
  const meta = metaCursor.readGroup(0x0002, buf.length);
  const tsElement = meta.get(TAGS.transferSyntaxUid);
  if (!tsElement?.bytes) throw new DicomReadError('NOT_PART10', 'The File Meta Information has no Transfer Syntax UID');
  const uid = tsElement.bytes.toString('latin1').replace(/[\0 ]+$/, '');
  const transferSyntax = TRANSFER_SYNTAXES.get(uid);
  if (!transferSyntax) throw new DicomReadError('UNSUPPORTED_TRANSFER_SYNTAX', `Transfer syntax ${shown(uid)} is not supported`);
  return { meta, transferSyntax, bodyStart: metaCursor.pos, budget };
}

function readBody(head: Head, body: Buffer, start: number): Part10File {
  const dataset = new Cursor(body, start, head.transferSyntax, head.budget).readDataset(body.length, 0);
  return { meta: head.meta, dataset, transferSyntax: head.transferSyntax };
}

/** zlib's failures as read errors: output past the limit is TOO_COMPLEX, a stream that stops early TRUNCATED. */
const isTooLarge = (error: unknown): boolean => (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError;

function inflateError(error: unknown, limits: ReadLimits): DicomReadError {
  const code = (error as { code?: string }).code;
  if (isTooLarge(error)) {
    return new DicomReadError('TOO_COMPLEX', `The deflated data set inflates to more than ${limits.maxInflatedBytes} bytes`);
  }
  if (code === 'Z_BUF_ERROR') return new DicomReadError('TRUNCATED', 'The deflated data set ends before its deflate stream does');
  return new DicomReadError('MALFORMED_ELEMENT', 'The deflated data set is not a valid deflate stream');
}

/** PS3.5 A.5 asks for raw deflate (RFC 1951); some writers wrapped it in a zlib header (RFC 1950), which is read when raw fails. */
const hasZlibHeader = (b: Buffer): boolean => b.length >= 2 && (b[0] & 0x0f) === 8 && ((b[0] << 8) | b[1]) % 31 === 0;

const inflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(inflateRaw);
const inflateAsync = promisify<Buffer, ZlibOptions, Buffer>(inflate);

/**
 * Reads a DICOM Part 10 file: 128-byte preamble, "DICM", File Meta (explicit VR LE), then the data set, inflated
 * first for the Deflated transfer syntax. A file beyond `limits` is TOO_COMPLEX.
 */
export function readPart10(buf: Buffer, limits: ReadLimits = DEFAULT_READ_LIMITS): Part10File {
  const head = readHead(buf, limits);
  if (!head.transferSyntax.deflated) return readBody(head, buf, head.bodyStart);
  const deflated = buf.subarray(head.bodyStart);
  const options = { maxOutputLength: limits.maxInflatedBytes };
  let inflated: Buffer;
  try {
    inflated = inflateRawSync(deflated, options);
  } catch (error) {
    if (!hasZlibHeader(deflated) || isTooLarge(error)) throw inflateError(error, limits);
    try {
      inflated = inflateSync(deflated, options);
    } catch (second) {
      throw inflateError(second, limits);
    }
  }
  return readBody(head, inflated, 0);
}

/**
 * readPart10 for the server: a deflated data set is inflated on libuv's thread pool, so a large one does not
 * hold up the event loop (the rest is bounded by `limits.maxElements`); `inflated` is told its size.
 */
export async function readPart10Async(buf: Buffer, limits: ReadLimits = DEFAULT_READ_LIMITS, inflated?: (bytes: number) => void): Promise<Part10File> {
  const head = readHead(buf, limits);
  if (!head.transferSyntax.deflated) return readBody(head, buf, head.bodyStart);
  const deflated = buf.subarray(head.bodyStart);
  const options = { maxOutputLength: limits.maxInflatedBytes };
  let body: Buffer;
  try {
    body = await inflateRawAsync(deflated, options);
  } catch (error) {
    if (!hasZlibHeader(deflated) || isTooLarge(error)) throw inflateError(error, limits);
    try {
      body = await inflateAsync(deflated, options);
    } catch (second) {
      throw inflateError(second, limits);
    }
  }
  inflated?.(body.length);
  return readBody(head, body, 0);
}

/** A value from a file, for a message: printable ASCII only, at most 24 characters, so no crafted text reaches an answer as-is. */
export function shown(value: string): string {
  const clean = value.replace(/[^\x20-\x5b\x5d-\x7e]/g, '?');
  return clean.length > 24 ? `${clean.slice(0, 24)}...` : clean;
}
