import type { RejectedItem } from '../import-result';

/** One uploaded file: where it came from (a file name or "part 3") and its bytes. */
export interface IngestPart {
  source: string;
  bytes: Buffer;
}

export interface AcceptedObject {
  source: string;
  sopClassUid: string;
  /** The replaced (de-identified) UIDs under which the object is stored. */
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sha256: string;
  size: number;
  /** True when the same object was stored before: a re-upload is a no-op. */
  alreadyStored: boolean;
}

export interface IngestResult {
  /** True when the batch landed; false when any item was rejected and so nothing was stored. */
  stored: boolean;
  accepted: AcceptedObject[];
  rejected: RejectedItem[];
}
