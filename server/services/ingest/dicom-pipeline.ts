import { textOf } from '../../dicom/dataset';
import { deidentify } from '../../dicom/deidentify';
import { TAGS } from '../../dicom/dictionary';
import { ImageRejection, inspectImage, type ImageSummary } from '../../dicom/image-object';
import { DicomReadError, readPart10Async, type Part10File, type ReadLimits } from '../../dicom/reader';
import { vrProblem } from '../../dicom/vr';
import { DicomWriteError, writePart10 } from '../../dicom/writer';
import { IngestRejectionCode } from '../../domain';
import type { Patient } from '../../entities';
import { sha256Of } from '../../storage/object-store';
import type { RejectedItem } from '../import-result';
import { patientKeyOf } from '../patient-key';
import type { IngestPart, IngestResult } from './ingest-result';

/**
 * The pure half of DICOM ingest, one batch at a time: parse and check each part, de-identify it for its patient,
 * re-encode and hash it, and collect every rejection with its reason. No database and no file: the service looks
 * the patients up and stores what this hands it (ingest.service.ts).
 */

/** One part's object, read and checked, with the key of its patient. */
export interface Prepared {
  part: IngestPart;
  /** The parsed object, until it is encoded (then dropped: only the encoded bytes are kept). */
  file?: Part10File;
  summary: ImageSummary;
  patientKey: string;
}

/** One part's object, ready to store: de-identified, encoded and hashed. */
export interface Encoded {
  source: string;
  /** The SOP Instance UID the client sent (for a rejection; the answer for a stored object names the replaced one). */
  clientSopInstanceUid: string;
  patient: Patient;
  summary: ImageSummary;
  bytes: Buffer;
  sha256: string;
  size: number;
  /** Stored before this batch (the same bytes under the same SOP Instance UID). */
  alreadyStored: boolean;
}

/** Patient ID as text: UTF-8 when Specific Character Set says ISO_IR 192, else Latin-1 (the manifest hashes the same text). */
function patientIdOf(file: Part10File): string | undefined {
  const raw = file.dataset.get(TAGS.patientId)?.bytes;
  if (!raw) return undefined;
  const utf8 = (textOf(file.dataset, TAGS.specificCharacterSet) ?? '').includes('ISO_IR 192');
  return (
    raw
      .toString(utf8 ? 'utf8' : 'latin1')
      .replace(/[\0 ]+$/, '')
      .trim() || undefined
  );
}

/** A client's UID for the answer, only when it is a valid UID: a crafted value is not echoed back. */
function clientUid(file: Part10File | undefined, t: number): string | undefined {
  const value = file?.dataset.get(t)?.bytes;
  if (!value || vrProblem('UI', value)) return undefined;
  return textOf(file.dataset, t) || undefined;
}

/**
 * Lets other requests run between the steps of a batch (parse, de-identify, hash: each bounded by the element
 * limit) once 10 ms of work has passed since the last turn. A turn after every step cost a loaded 2-core machine up
 * to twice the time of a batch of 90 small objects; after 10 ms it costs nothing measurable.
 */
function eventLoopTurns(sliceMs = 10): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < sliceMs) return;
    await new Promise((resolve) => setImmediate(resolve));
    last = performance.now();
  };
}

/** Reads and checks one part; a rejection describes why, with the client's UIDs where readable. */
async function prepare(part: IngestPart, key: Buffer, limits: ReadLimits, inflated: (bytes: number) => void): Promise<Prepared | RejectedItem> {
  let file: Part10File | undefined;
  try {
    file = await readPart10Async(part.bytes, limits, inflated);
    const summary = inspectImage(file);
    const patientId = patientIdOf(file);
    if (!patientId) throw new ImageRejection('MISSING_ATTRIBUTE', 'Patient ID is missing: the object cannot be linked to a patient');
    return { part, file, summary, patientKey: patientKeyOf(key, patientId) };
  } catch (error) {
    // A reader or check that trips over a crafted value is a rejection of that file, never a failed batch.
    const known = error instanceof DicomReadError || error instanceof ImageRejection;
    return {
      source: part.source,
      code: known ? IngestRejectionCode[error.code] : IngestRejectionCode.MALFORMED_ELEMENT,
      reason: known ? error.message : 'The object could not be read as a valid image',
      sopClassUid: clientUid(file, TAGS.sopClassUid),
      sopInstanceUid: clientUid(file, TAGS.sopInstanceUid),
    };
  }
}

/** INSTANCE_CONFLICT for an object, answered with the UIDs the client sent. */
function instanceConflict(o: Encoded, reason: string): RejectedItem {
  return { source: o.source, code: IngestRejectionCode.INSTANCE_CONFLICT, reason, sopClassUid: o.summary.sopClassUid, sopInstanceUid: o.clientSopInstanceUid };
}

/**
 * One batch through the pipeline. Parts go through one at a time, from parse to hashed bytes: only the encoded
 * bytes are kept, not each object's parsed tree (a batch of objects near the element limit would otherwise hold
 * all their trees at once), and the event loop turns between the steps.
 */
export class DicomBatch {
  readonly rejected: RejectedItem[] = [];
  private readonly prepared: Prepared[] = [];
  /** Every part that passed, in order: the answer names each. */
  readonly encoded: Encoded[] = [];
  /** The first part of each SOP Instance UID. */
  private readonly first = new Map<string, Encoded>();
  /**
   * All deflated objects of one request together may inflate to maxInflatedBytes: 60 parts of 1 MB that each
   * inflate to 1 GB would otherwise be 60 GB to hold until the batch commits.
   */
  private inflateLeft: number;
  readonly turn = eventLoopTurns();

  /** `studyInstanceUid`: the (original) study every part must belong to, as STOW-RS to /studies/{uid} asks. */
  constructor(
    private readonly key: Buffer,
    private readonly limits: ReadLimits,
    private readonly studyInstanceUid?: string,
  ) {
    this.inflateLeft = limits.maxInflatedBytes;
  }

  /** Reads and checks a part: its object, or null when it is rejected (the rejection is kept). */
  async check(part: IngestPart): Promise<Prepared | null> {
    await this.turn();
    const result = await prepare(part, this.key, { ...this.limits, maxInflatedBytes: this.inflateLeft }, (n) => (this.inflateLeft -= n));
    if (!('patientKey' in result)) {
      this.rejected.push(result);
      return null;
    }
    if (this.studyInstanceUid && result.summary.studyInstanceUid !== this.studyInstanceUid) {
      this.reject(result, IngestRejectionCode.STUDY_MISMATCH, 'The instance belongs to another study than the one in the URL');
      return null;
    }
    this.prepared.push(result);
    return result;
  }

  /** Rejects a checked part, answered with the client's UIDs. */
  reject(p: Prepared, code: IngestRejectionCode, reason: string): void {
    this.rejected.push({ source: p.part.source, code, reason, sopClassUid: p.summary.sopClassUid, sopInstanceUid: p.summary.sopInstanceUid });
  }

  /**
   * De-identifies a checked part for its patient, re-checks, encodes and hashes it; a failure is a rejection. Once
   * a part is rejected nothing of the batch is stored: the rest is only checked, not de-identified.
   */
  async encode(p: Prepared, patient: Patient): Promise<void> {
    if (this.rejected.length) return;
    await this.turn();
    try {
      const clean = deidentify(p.file as Part10File, { uidKey: this.key, pseudonym: patient.pseudonym, dateShiftDays: patient.dateShiftDays });
      const summary = inspectImage(clean);
      const bytes = writePart10(clean.meta, clean.dataset, clean.transferSyntax);
      await this.turn();
      const sha256 = await sha256Of(bytes);
      this.collect({
        source: p.part.source,
        clientSopInstanceUid: p.summary.sopInstanceUid,
        patient,
        summary,
        bytes,
        sha256,
        size: bytes.length,
        alreadyStored: false,
      });
    } catch (error) {
      // A value that grew past its length field (thousands of UIDs, each replaced by a longer one) is more than Facet stores.
      const code =
        error instanceof ImageRejection
          ? IngestRejectionCode[error.code]
          : error instanceof DicomWriteError
            ? IngestRejectionCode.TOO_COMPLEX
            : IngestRejectionCode.MALFORMED_ELEMENT;
      this.reject(
        p,
        code,
        error instanceof ImageRejection || error instanceof DicomWriteError
          ? `After de-identification: ${error.message}`
          : 'The object could not be re-encoded after de-identification',
      );
    }
  }

  /**
   * Adds an encoded object to the batch. The same SOP Instance UID twice in a batch is one object when the bytes
   * are the same (stored once, answered twice), and INSTANCE_CONFLICT when they differ.
   */
  private collect(object: Encoded): void {
    const earlier = this.first.get(object.summary.sopInstanceUid);
    if (earlier && earlier.sha256 !== object.sha256) {
      this.rejected.push(instanceConflict(object, `The SOP Instance UID is also in ${earlier.source}, with other content`));
      return;
    }
    if (earlier) object.alreadyStored = true;
    else this.first.set(object.summary.sopInstanceUid, object);
    this.encoded.push(object);
  }

  /** The first part of each SOP Instance UID (a later identical one is marked alreadyStored). */
  unique(): Encoded[] {
    return [...this.first.values()];
  }

  /**
   * Compares the batch with what is stored (`storedSha`: the sha256 of each SOP Instance UID stored before): an
   * instance stored with other bytes is INSTANCE_CONFLICT, one stored with the same bytes is a no-op.
   */
  compareWithStored(storedSha: ReadonlyMap<string, string>): void {
    for (const o of this.encoded) {
      const sha = storedSha.get(o.summary.sopInstanceUid);
      if (sha !== undefined && sha !== o.sha256) this.rejected.push(instanceConflict(o, 'The SOP Instance UID is stored already, with other content'));
      o.alreadyStored ||= sha !== undefined;
    }
  }

  /** The answer when the batch does not land: every rejection, and every valid part as BATCH_REJECTED. */
  rejectedResult(rejected: RejectedItem[] = this.rejected): IngestResult {
    const rejectedSources = new Set(rejected.map((r) => r.source));
    const notStored = this.prepared
      .filter((p) => !rejectedSources.has(p.part.source))
      .map((p) => ({
        source: p.part.source,
        code: IngestRejectionCode.BATCH_REJECTED,
        reason: 'Valid, but not stored: another object of this batch was rejected',
        sopClassUid: p.summary.sopClassUid,
        sopInstanceUid: p.summary.sopInstanceUid,
      }));
    return { stored: false, accepted: [], rejected: [...rejected, ...notStored] };
  }
}
