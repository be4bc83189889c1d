import { In, type EntityManager } from 'typeorm';
import { IngestRejectionCode, type Modality } from '../../domain';
import { Instance, Series, Study } from '../../entities';
import type { Encoded } from './dicom-pipeline';
import type { AcceptedObject } from './ingest-result';

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

/** What a batch's rows became: the answer for each accepted part, and the counts for the audit event. */
export interface RecordedBatch {
  accepted: AcceptedObject[];
  newInstances: number;
  studies: number;
}

/** The sha256 of each of `sopInstanceUids` stored before (an instance is stored once, by its replaced UID). */
export async function storedSha256s(m: EntityManager, sopInstanceUids: readonly string[]): Promise<Map<string, string>> {
  const previous = await m.getRepository(Instance).find({
    select: { sopInstanceUid: true, sha256: true },
    where: { sopInstanceUid: In([...sopInstanceUids]) },
  });
  return new Map(previous.map((i) => [i.sopInstanceUid, i.sha256.trim()]));
}

/**
 * Studies, series and instances by their replaced UIDs, in the caller's transaction; existing rows are kept (a
 * re-upload is a no-op). `unique` holds each SOP Instance UID once; `encoded` every accepted part, for the answer.
 * Throws IngestConflict when a row stored before (perhaps by a concurrent batch) contradicts the batch.
 */
export async function recordObjects(m: EntityManager, encoded: Encoded[], unique: Encoded[]): Promise<RecordedBatch> {
  const studyRows = [...new Map(unique.map((s) => [s.summary.studyInstanceUid, s])).values()].map((s) => ({
    patientId: s.patient.id,
    studyInstanceUid: s.summary.studyInstanceUid,
    studyDate: s.summary.studyDate,
    description: null,
  }));
  await m.createQueryBuilder().insert().into(Study).values(studyRows).orIgnore().execute();
  const studies = await m.getRepository(Study).findBy({ studyInstanceUid: In(studyRows.map((r) => r.studyInstanceUid)) });
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
  await m.createQueryBuilder().insert().into(Series).values(seriesRows).orIgnore().execute();
  const series = await m.getRepository(Series).findBy({ seriesInstanceUid: In(seriesRows.map((r) => r.seriesInstanceUid)) });
  const seriesByUid = new Map(series.map((s) => [s.seriesInstanceUid, s]));
  for (const s of unique) {
    if (seriesByUid.get(s.summary.seriesInstanceUid)?.studyId !== studyByUid.get(s.summary.studyInstanceUid)?.id) {
      throw new IngestConflict(s.source, 'The series is already stored under another study');
    }
  }
  const fresh = unique.filter((s) => !s.alreadyStored);
  if (fresh.length) {
    // orIgnore: a concurrent upload of the same new object commits first; this one is then a no-op too (checked below).
    await m
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
  const rows = await m.getRepository(Instance).find({
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
  const accepted = encoded.map((s) => ({
    source: s.source,
    sopClassUid: s.summary.sopClassUid,
    sopInstanceUid: s.summary.sopInstanceUid,
    studyInstanceUid: s.summary.studyInstanceUid,
    seriesInstanceUid: s.summary.seriesInstanceUid,
    sha256: s.sha256,
    size: s.size,
    alreadyStored: s.alreadyStored,
  }));
  return { accepted, newInstances: fresh.length, studies: studyRows.length };
}
