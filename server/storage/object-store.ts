import { createHash } from 'node:crypto';

export interface StoredObject {
  sha256: string;
  size: number;
  /** False when an object with these bytes was already there (content addressing makes re-upload a no-op). */
  created: boolean;
}

/** One stored object as a listing sees it: the orphan sweep compares these with the rows that reference them. */
export interface ListedObject {
  sha256: string;
  /** When its bytes were last written (a young object may belong to a batch that has not committed yet). */
  modifiedAt: Date;
}

/**
 * De-identified DICOM objects and ONNX models, addressed by the sha256 of their bytes. Two backends keep the same
 * promises (`FileObjectStore`: a directory; `S3ObjectStore`: an S3-compatible bucket): a reader never sees half an
 * object, putting bytes that are already there is a no-op that reports `created: false`, `read` returns exactly
 * the bytes whose hash is the key, and `list` lets the orphan sweep find objects no row references. The store
 * keeps whatever it is given: de-identification happens before (services/ingest/dicom-pipeline.ts).
 */
export interface ObjectStore {
  /** Where the objects live, for logs and the start banner (`/data/objects`, `s3://bucket/objects/`). */
  readonly location: string;
  /** Stores `bytes` under their sha256 (`sha256` when the caller computed it already). */
  put(bytes: Buffer, sha256?: string): Promise<StoredObject>;
  /** The object's bytes; rejects when it is missing or its bytes no longer hash to `sha256`. */
  read(sha256: string): Promise<Buffer>;
  has(sha256: string): Promise<boolean>;
  /** Removes the object; removing one that is not there is not an error. */
  remove(sha256: string): Promise<void>;
  /** Every stored object, in pages (the sweep asks the database about each page). */
  list(): AsyncIterable<ListedObject[]>;
  /** Removes what interrupted writes left behind, once `minAgeMs` old (another process may be writing now); how many. */
  sweepTemp(minAgeMs: number): Promise<number>;
  /** Releases connections (S3) or nothing (files). */
  close(): Promise<void>;
}

/** Bytes hashed between two turns of the event loop: about 10 ms of SHA-256 (measured 1.5-2 GB/s on the development machine). */
const HASH_SLICE = 16 * 1024 * 1024;

/** The sha256 of `bytes`, hex, in slices with a turn of the event loop between them, so a large object does not stall other requests. */
export async function sha256Of(bytes: Buffer): Promise<string> {
  const hash = createHash('sha256');
  for (let at = 0; at < bytes.length; at += HASH_SLICE) {
    if (at > 0) await new Promise((resolve) => setImmediate(resolve));
    hash.update(bytes.subarray(at, at + HASH_SLICE));
  }
  return hash.digest('hex');
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Whether `name` is a sha256 in hex (an object key's last part). */
export const isSha256 = (name: string): boolean => SHA256_HEX.test(name);

/** Refuses a key that is not a sha256 (a path or key built from anything else could escape the store). */
export function assertSha256(sha256: string): void {
  if (!isSha256(sha256)) throw new Error('Not a sha256');
}

/** A read whose bytes do not hash to their key: the store was altered or damaged underneath. */
export class CorruptObjectError extends Error {
  constructor(
    readonly sha256: string,
    readonly actual: string,
  ) {
    super(`Stored object ${sha256} reads back with sha256 ${actual}`);
    this.name = 'CorruptObjectError';
  }
}

/** `bytes` as read for `sha256`, after checking that they hash to it. */
export async function verified(sha256: string, bytes: Buffer): Promise<Buffer> {
  const actual = await sha256Of(bytes);
  if (actual !== sha256) throw new CorruptObjectError(sha256, actual);
  return bytes;
}
