import type { IngestRejectionCode } from '../domain';

/** A file or CSV row that was not stored, and why: every import answers with these (DICOM ingest and each CSV kind). */
export interface RejectedItem {
  source: string;
  code: IngestRejectionCode;
  reason: string;
  /** The UIDs as the client sent them, when they could be read (for the STOW-RS answer only; never stored). */
  sopClassUid?: string;
  sopInstanceUid?: string;
}

/** The answer to a CSV import (a manifest, predictions, reference grades): how many rows landed (all or none) and every rejected row. */
export interface ManifestResult {
  stored: boolean;
  rows: number;
  created: number;
  updated: number;
  rejected: RejectedItem[];
}

/** The answer of an import of which nothing landed. */
export function notStored(rows: number, rejected: RejectedItem[]): ManifestResult {
  return { stored: false, rows, created: 0, updated: 0, rejected };
}

/** Thrown inside an import's transaction to roll it back; the import then answers with `rejected`. */
export class RowsRejected extends Error {
  constructor(readonly rejected: RejectedItem[]) {
    super('import rejected');
    this.name = 'RowsRejected';
  }
}

/** The catch of an import's transaction: a RowsRejected thrown inside (it rolled back) answers as notStored; any other error goes on. */
export function notStoredWhenRejected(rows: number): (error: unknown) => ManifestResult {
  return (error) => {
    if (error instanceof RowsRejected) return notStored(rows, error.rejected);
    throw error;
  };
}
