import { In } from 'typeorm';
import type { Db } from '../db/transaction';
import { textOf } from '../dicom/dataset';
import { deidentify } from '../dicom/deidentify';
import { TAGS } from '../dicom/dictionary';
import { ImageRejection, inspectImage, type ImageSummary } from '../dicom/image-object';
import { DEFAULT_READ_LIMITS, DicomReadError, readPart10Async, type Part10File, type ReadLimits } from '../dicom/reader';
import { keyedHash } from '../dicom/uid';
import { vrProblem } from '../dicom/vr';
import { DicomWriteError, writePart10 } from '../dicom/writer';
import { IngestRejectionCode, Modality, Role } from '../domain';
import { Instance, Patient, Series, Study } from '../entities';
import type { PostgresPubSub } from '../pubsub/postgres-pubsub';
import { INGEST_PROGRESS, type IngestProgressEvent } from '../pubsub/topics';
import { sha256Of, type ObjectStore } from '../storage/object-store';
import type { AuditService } from './audit.service';
import type { NodeKeyService } from './node-key.service';
import { assertSiteInScope, requireRole, type RequestContext } from './request-context';

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

export interface RejectedItem {
  source: string;
  code: IngestRejectionCode;
  reason: string;
  /** The UIDs as the client sent them, when they could be read (for the STOW-RS answer only; never stored). */
  sopClassUid?: string;
  sopInstanceUid?: string;
}

export interface IngestResult {
  /** True when the batch landed; false when any item was rejected and so nothing was stored. */
  stored: boolean;
  accepted: AcceptedObject[];
  rejected: RejectedItem[];
}

/** Advisory lock between committing batches (shared) and removing their unreferenced files (exclusive). */
const OBJECT_LOCK = 7_146_319;

/** Object files written at once within a batch. */
const PARALLEL_WRITES = 8;

/** Progress events of one batch: the first and the last always, in between at most one per 250 ms. */
class ProgressReporter {
  private last = 0;
  private readonly event: IngestProgressEvent;

  constructor(
    private readonly pubSub: PostgresPubSub,
    batchId: string,
    siteId: string,
    parts: IngestPart[],
  ) {
    this.event = { batchId, siteId, kind: 'DICOM', status: 'RUNNING', objectsTotal: parts.length, objectsDone: 0, rejected: 0, bytes: 0, at: '' };
  }

  async update(change: Partial<IngestProgressEvent>, force = false): Promise<void> {
    Object.assign(this.event, change);
    if (!force && Date.now() - this.last < 250) return;
    this.last = Date.now();
    await this.pubSub.publish(INGEST_PROGRESS, this.event.siteId, { ...this.event, at: new Date().toISOString() }).catch(() => undefined);
  }
}

/** Patient keys are HMACs of the hospital patient ID under the node key, purpose-separated from UIDs. */
export const PATIENT_KEY_PURPOSE = 'patient-id';

/** One part's object, ready to store: de-identified, encoded and hashed. */
interface Encoded {
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

interface Prepared {
  part: IngestPart;
  /** The parsed object, until it is encoded. */
  file?: Part10File;
  summary: ImageSummary;
  patientKey: string;
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
    return { part, file, summary, patientKey: keyedHash(key, PATIENT_KEY_PURPOSE, patientId) };
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

/**
 * DICOM ingest: parse and check every object, link it to its patient by the keyed hash of its Patient ID,
 * de-identify, store content-addressed, and record studies, series and instances in one transaction. A batch
 * lands whole or not at all: one rejected object means nothing of the batch is stored, and the answer lists
 * every rejected object with its reason. The original bytes are never written anywhere.
 */
export class IngestService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly keys: NodeKeyService,
    private readonly objects: ObjectStore,
    private readonly pubSub: PostgresPubSub,
    private readonly limits: ReadLimits = DEFAULT_READ_LIMITS,
  ) {}

  /** Who may store DICOM into a site, and so follow its ingest: the site's coordinators and ADMIN. */
  assertMayIngest(ctx: RequestContext, siteId: string): void {
    requireRole(ctx, Role.COORDINATOR);
    assertSiteInScope(ctx, siteId);
  }

  /**
   * Progress of the DICOM batches stored into a site, from any server of the node. Checked when called (before any
   * event), and listened for from then on.
   */
  watchIngest(ctx: RequestContext, siteId: string): AsyncIterable<IngestProgressEvent> {
    this.assertMayIngest(ctx, siteId);
    return this.pubSub.subscribe(INGEST_PROGRESS, siteId);
  }

  /** `studyInstanceUid`: the (original) study every part must belong to, as STOW-RS to /studies/{uid} asks. */
  async ingestDicom(ctx: RequestContext, siteId: string, parts: IngestPart[], studyInstanceUid?: string): Promise<IngestResult> {
    this.assertMayIngest(ctx, siteId);
    const progress = new ProgressReporter(this.pubSub, ctx.requestId, siteId, parts);
    await progress.update({}, true);
    try {
      const result = await this.ingest(ctx, siteId, parts, progress, studyInstanceUid);
      await progress.update(
        {
          status: result.stored ? 'STORED' : 'REJECTED',
          objectsDone: parts.length,
          rejected: result.rejected.filter((r) => r.code !== IngestRejectionCode.BATCH_REJECTED).length,
        },
        true,
      );
      return result;
    } catch (error) {
      await progress.update({ status: 'FAILED' }, true);
      throw error;
    }
  }

  private async ingest(ctx: RequestContext, siteId: string, parts: IngestPart[], progress: ProgressReporter, studyInstanceUid?: string): Promise<IngestResult> {
    const key = await this.keys.identifierKey();
    const rejected: RejectedItem[] = [];
    const prepared: Prepared[] = [];
    const encoded: Encoded[] = [];
    const first = new Map<string, Encoded>();
    const patients = new Map<string, Patient | null>();
    let bytes = 0;
    // All deflated objects of one request together may inflate to maxInflatedBytes: 60 parts of 1 MB that each
    // inflate to 1 GB would otherwise be 60 GB to hold until the batch commits.
    let inflateLeft = this.limits.maxInflatedBytes;
    const turn = eventLoopTurns();
    // One object at a time, from parse to hashed bytes: only the encoded bytes are kept, not each object's parsed
    // tree (a batch of objects near the element limit would otherwise hold all their trees at once), and the event
    // loop turns between the steps.
    for (const [index, part] of parts.entries()) {
      await turn();
      const result = await prepare(part, key, { ...this.limits, maxInflatedBytes: inflateLeft }, (n) => (inflateLeft -= n));
      if (!('patientKey' in result)) {
        rejected.push(result);
      } else if (studyInstanceUid && result.summary.studyInstanceUid !== studyInstanceUid) {
        rejected.push({
          source: part.source,
          code: IngestRejectionCode.STUDY_MISMATCH,
          reason: 'The instance belongs to another study than the one in the URL',
          sopClassUid: result.summary.sopClassUid,
          sopInstanceUid: result.summary.sopInstanceUid,
        });
      } else {
        prepared.push(result);
        if (!patients.has(result.patientKey))
          patients.set(result.patientKey, await this.db.repo(ctx, Patient).findOneBy({ siteId, patientKey: result.patientKey }));
        const patient = patients.get(result.patientKey);
        if (!patient) {
          rejected.push({
            source: part.source,
            code: IngestRejectionCode.UNKNOWN_PATIENT,
            reason: 'No patient of this site has this Patient ID; upload the patients manifest first',
            sopClassUid: result.summary.sopClassUid,
            sopInstanceUid: result.summary.sopInstanceUid,
          });
        } else if (!rejected.length) {
          // Once a part is rejected nothing of the batch is stored: the rest is only checked, not de-identified.
          await turn();
          const object = await this.encode(result, patient, key, rejected, turn);
          if (object) this.collect(object, first, encoded, rejected);
        }
        // The parsed tree is not needed any more; the summary stays for the answer.
        result.file = undefined;
      }
      bytes += part.bytes.length;
      await progress.update({ objectsDone: index + 1, rejected: rejected.length, bytes });
    }
    if (rejected.length) return this.rejectBatch(prepared, rejected);

    // Before any file is written: an instance stored before with other bytes is refused, so no file is left without a row.
    // The first part of each SOP Instance UID (a later identical one was marked alreadyStored by collect).
    const uids = new Set<string>();
    const unique = encoded.filter((o) => !uids.has(o.summary.sopInstanceUid) && uids.add(o.summary.sopInstanceUid));
    const previous = await this.db.repo(ctx, Instance).find({
      select: { sopInstanceUid: true, sha256: true },
      where: { sopInstanceUid: In(unique.map((o) => o.summary.sopInstanceUid)) },
    });
    const storedSha = new Map(previous.map((i) => [i.sopInstanceUid, i.sha256.trim()]));
    for (const o of encoded) {
      const sha = storedSha.get(o.summary.sopInstanceUid);
      if (sha !== undefined && sha !== o.sha256) rejected.push(instanceConflict(o, 'The SOP Instance UID is stored already, with other content'));
      o.alreadyStored ||= sha !== undefined;
    }
    if (rejected.length) return this.rejectBatch(prepared, rejected);

    const created: string[] = [];
    try {
      // Writes overlap: each waits on its own fsync, which dominates a sequential loop (measured: bench/ingest).
      const fresh = unique.filter((o) => !storedSha.has(o.summary.sopInstanceUid));
      for (let i = 0; i < fresh.length; i += PARALLEL_WRITES) {
        const results = await Promise.all(fresh.slice(i, i + PARALLEL_WRITES).map((o) => this.objects.put(o.bytes, o.sha256)));
        for (const result of results) if (result.created) created.push(result.sha256);
      }
      const accepted = await this.db.transaction(ctx, async (tx) => {
        // Shared with other committing batches, exclusive against clean-up (removeUnreferenced): a file this
        // batch found already stored cannot disappear between the check below and the commit.
        await this.db.manager(tx).query('SELECT pg_advisory_xact_lock_shared($1)', [OBJECT_LOCK]);
        for (const o of unique) if (!(await this.objects.has(o.sha256))) await this.objects.put(o.bytes, o.sha256);
        return this.record(tx, siteId, encoded, unique);
      });
      return { stored: true, accepted, rejected: [] };
    } catch (error) {
      // The transaction rolled back: remove the files this batch created that no committed row references.
      await this.removeUnreferenced(created);
      if (!(error instanceof IngestConflict)) throw error;
      return this.rejectBatch(prepared, [{ source: error.source, code: error.code, reason: error.message }]);
    }
  }

  /** De-identifies, re-checks, encodes and hashes one object; a failure is added to `rejected`. */
  private async encode(p: Prepared, patient: Patient, key: Buffer, rejected: RejectedItem[], turn: () => Promise<void>): Promise<Encoded | null> {
    try {
      const clean = deidentify(p.file as Part10File, { uidKey: key, pseudonym: patient.pseudonym, dateShiftDays: patient.dateShiftDays });
      const summary = inspectImage(clean);
      const bytes = writePart10(clean.meta, clean.dataset, clean.transferSyntax);
      await turn();
      const sha256 = await sha256Of(bytes);
      return {
        source: p.part.source,
        clientSopInstanceUid: p.summary.sopInstanceUid,
        patient,
        summary,
        bytes,
        sha256,
        size: bytes.length,
        alreadyStored: false,
      };
    } catch (error) {
      // A value that grew past its length field (thousands of UIDs, each replaced by a longer one) is more than Facet stores.
      const code =
        error instanceof ImageRejection
          ? IngestRejectionCode[error.code]
          : error instanceof DicomWriteError
            ? IngestRejectionCode.TOO_COMPLEX
            : IngestRejectionCode.MALFORMED_ELEMENT;
      rejected.push({
        source: p.part.source,
        code,
        reason:
          error instanceof ImageRejection || error instanceof DicomWriteError
            ? `After de-identification: ${error.message}`
            : 'The object could not be re-encoded after de-identification',
        sopClassUid: p.summary.sopClassUid,
        sopInstanceUid: p.summary.sopInstanceUid,
      });
      return null;
    }
  }

  /**
   * Adds an encoded object to the batch. The same SOP Instance UID twice in a batch is one object when the bytes
   * are the same (stored once, answered twice), and INSTANCE_CONFLICT when they differ.
   */
  private collect(object: Encoded, first: Map<string, Encoded>, encoded: Encoded[], rejected: RejectedItem[]): void {
    const earlier = first.get(object.summary.sopInstanceUid);
    if (earlier && earlier.sha256 !== object.sha256) {
      rejected.push(instanceConflict(object, `The SOP Instance UID is also in ${earlier.source}, with other content`));
      return;
    }
    if (earlier) object.alreadyStored = true;
    else first.set(object.summary.sopInstanceUid, object);
    encoded.push(object);
  }

  /** Deletes those of `sha256s` no instance references, while no batch is committing (exclusive lock). */
  private async removeUnreferenced(sha256s: string[]): Promise<void> {
    if (!sha256s.length) return;
    await this.db.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [OBJECT_LOCK]);
      const rows: Array<{ sha256: string }> = await manager.query('SELECT DISTINCT sha256 FROM instance WHERE sha256 = ANY($1)', [sha256s]);
      const referenced = new Set(rows.map((r) => r.sha256.trim()));
      await Promise.all(sha256s.filter((sha) => !referenced.has(sha)).map((sha) => this.objects.remove(sha)));
    });
  }

  /**
   * Start-of-process clean-up: temp files of writes a crash interrupted, and stored objects no instance row
   * references (a batch killed between writing its files and committing), once older than `orphanMinAgeMs`.
   */
  async sweepStorage(orphanMinAgeMs: number): Promise<{ temp: number; orphans: number }> {
    const temp = await this.objects.sweepTemp(Math.min(orphanMinAgeMs, 10 * 60 * 1000));
    const orphans = await this.objects.sweepOrphans(async (sha256s) => {
      const rows: Array<{ sha256: string }> = await this.db.dataSource.query('SELECT DISTINCT sha256 FROM instance WHERE sha256 = ANY($1)', [sha256s]);
      return new Set(rows.map((r) => r.sha256.trim()));
    }, orphanMinAgeMs);
    return { temp, orphans };
  }

  private rejectBatch(prepared: Prepared[], rejected: RejectedItem[]): IngestResult {
    const rejectedSources = new Set(rejected.map((r) => r.source));
    const notStored = prepared
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

  /**
   * Studies, series and instances by their replaced UIDs; existing rows are kept (a re-upload is a no-op). `unique`
   * holds each SOP Instance UID once; `encoded` every accepted part, for the answer.
   */
  private async record(ctx: RequestContext, siteId: string, encoded: Encoded[], unique: Encoded[]): Promise<AcceptedObject[]> {
    const manager = this.db.manager(ctx);
    const studyRows = [...new Map(unique.map((s) => [s.summary.studyInstanceUid, s])).values()].map((s) => ({
      patientId: s.patient.id,
      studyInstanceUid: s.summary.studyInstanceUid,
      studyDate: s.summary.studyDate,
      description: null,
    }));
    await manager.createQueryBuilder().insert().into(Study).values(studyRows).orIgnore().execute();
    const studies = await manager.getRepository(Study).findBy({ studyInstanceUid: In(studyRows.map((r) => r.studyInstanceUid)) });
    const studyByUid = new Map(studies.map((s) => [s.studyInstanceUid, s]));
    for (const s of unique) {
      if (studyByUid.get(s.summary.studyInstanceUid)?.patientId !== s.patient.id) {
        throw new IngestConflict(s.source, 'The study is already stored for another patient');
      }
    }
    const seriesRows = [...new Map(unique.map((s) => [s.summary.seriesInstanceUid, s])).values()].map((s) => ({
      studyId: (studyByUid.get(s.summary.studyInstanceUid) as Study).id,
      seriesInstanceUid: s.summary.seriesInstanceUid,
      modality: s.summary.modality as Modality,
      seriesNumber: s.summary.seriesNumber,
      description: null,
    }));
    await manager.createQueryBuilder().insert().into(Series).values(seriesRows).orIgnore().execute();
    const series = await manager.getRepository(Series).findBy({ seriesInstanceUid: In(seriesRows.map((r) => r.seriesInstanceUid)) });
    const seriesByUid = new Map(series.map((s) => [s.seriesInstanceUid, s]));
    for (const s of unique) {
      if (seriesByUid.get(s.summary.seriesInstanceUid)?.studyId !== studyByUid.get(s.summary.studyInstanceUid)?.id) {
        throw new IngestConflict(s.source, 'The series is already stored under another study');
      }
    }
    const fresh = unique.filter((s) => !s.alreadyStored);
    if (fresh.length) {
      // orIgnore: a concurrent upload of the same new object commits first; this one is then a no-op too (checked below).
      await manager
        .createQueryBuilder()
        .insert()
        .orIgnore()
        .into(Instance)
        .values(
          fresh.map((s) => ({
            seriesId: (seriesByUid.get(s.summary.seriesInstanceUid) as Series).id,
            sopInstanceUid: s.summary.sopInstanceUid,
            sopClassUid: s.summary.sopClassUid,
            instanceNumber: s.summary.instanceNumber,
            rows: s.summary.rows,
            columns: s.summary.columns,
            numberOfFrames: s.summary.numberOfFrames,
            bitsAllocated: s.summary.bitsAllocated,
            samplesPerPixel: s.summary.samplesPerPixel,
            photometricInterpretation: s.summary.photometricInterpretation,
            transferSyntaxUid: s.summary.transferSyntaxUid,
            sha256: s.sha256,
            sizeBytes: s.size,
          })),
        )
        .execute();
    }
    // Every instance now has a row: this batch's, or one committed before (by another batch, perhaps concurrently,
    // perhaps with other bytes, which then is a conflict and rolls this batch back).
    const rows = await manager.getRepository(Instance).find({
      select: { sopInstanceUid: true, seriesId: true, sha256: true },
      where: { sopInstanceUid: In(unique.map((s) => s.summary.sopInstanceUid)) },
    });
    const rowByUid = new Map(rows.map((r) => [r.sopInstanceUid, r]));
    for (const s of unique) {
      const row = rowByUid.get(s.summary.sopInstanceUid);
      if (row?.sha256.trim() !== s.sha256)
        throw new IngestConflict(s.source, 'The SOP Instance UID is stored already, with other content', IngestRejectionCode.INSTANCE_CONFLICT);
      if (row.seriesId !== seriesByUid.get(s.summary.seriesInstanceUid)?.id)
        throw new IngestConflict(s.source, 'The instance is already stored under another series');
    }
    await this.audit.record(ctx, {
      action: 'ingestDicom',
      entityType: 'Instance',
      siteId,
      details: { objects: encoded.length, new: fresh.length, alreadyStored: encoded.length - fresh.length, studies: studyRows.length },
    });
    return encoded.map((s) => ({
      source: s.source,
      sopClassUid: s.summary.sopClassUid,
      sopInstanceUid: s.summary.sopInstanceUid,
      studyInstanceUid: s.summary.studyInstanceUid,
      seriesInstanceUid: s.summary.seriesInstanceUid,
      sha256: s.sha256,
      size: s.size,
      alreadyStored: s.alreadyStored,
    }));
  }
}

/** INSTANCE_CONFLICT for an object, answered with the UIDs the client sent. */
function instanceConflict(o: Encoded, reason: string): RejectedItem {
  return { source: o.source, code: IngestRejectionCode.INSTANCE_CONFLICT, reason, sopClassUid: o.summary.sopClassUid, sopInstanceUid: o.clientSopInstanceUid };
}

/** A stored study of another patient under the same (replaced) UID, or an instance with other bytes: the whole batch is refused. */
export class IngestConflict extends Error {
  constructor(
    readonly source: string,
    message: string,
    readonly code: IngestRejectionCode = IngestRejectionCode.CONFLICT,
  ) {
    super(message);
    this.name = 'IngestConflict';
  }
}
