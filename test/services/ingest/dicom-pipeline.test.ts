import { textOf } from '../../../server/dicom/dataset';
import { TAGS } from '../../../server/dicom/dictionary';
import { DEFAULT_READ_LIMITS, readPart10 } from '../../../server/dicom/reader';
import { IngestRejectionCode } from '../../../server/domain';
import type { Patient } from '../../../server/entities';
import { DicomBatch } from '../../../server/services/ingest/dicom-pipeline';
import type { IngestPart } from '../../../server/services/ingest/ingest-result';
import { patientKeyOf } from '../../../server/services/patient-key';
import { seededRandom } from '../../../server/stats/bootstrap';
import { SYNTHETIC_PATIENT_ID, syntheticImage } from '../../helpers/synthetic-dicom';

/** The pure half of ingest, without a database: what the service hands it and what it hands back. */

const KEY = Buffer.from('a node key of thirty-two bytes!!');
const PATIENT = { id: '7b0c1f9e-3f1e-4c57-9d55-1a3f1d0c2b11', pseudonym: 'EAST-P042', dateShiftDays: -321 } as Patient;
const SEED = 20261201;

type PartKind = 'valid' | 'repeat' | 'conflict' | 'garbage';

/** A generated batch: valid images, byte-identical repeats, the same SOP Instance UID with other pixels, and files that are not DICOM. */
function generatedBatch(random: () => number, size: number): Array<IngestPart & { kind: PartKind; instance: number }> {
  const parts: Array<IngestPart & { kind: PartKind; instance: number }> = [];
  for (let i = 0; i < size; i++) {
    const valid = parts.filter((p) => p.kind === 'valid');
    const roll = random();
    const source = `part ${i + 1}`;
    if (valid.length && roll < 0.2) {
      const earlier = valid[Math.floor(random() * valid.length)];
      parts.push({ source, bytes: earlier.bytes, kind: 'repeat', instance: earlier.instance });
    } else if (valid.length && roll < 0.3) {
      const earlier = valid[Math.floor(random() * valid.length)];
      parts.push({ source, bytes: syntheticImage({ instance: earlier.instance, size: 32 }), kind: 'conflict', instance: earlier.instance });
    } else if (roll < 0.4) {
      parts.push({ source, bytes: Buffer.from(`not DICOM ${i}`), kind: 'garbage', instance: -1 });
    } else {
      const instance = 1000 + i;
      parts.push({ source, bytes: syntheticImage({ instance, modality: random() < 0.5 ? 'CT' : 'MR' }), kind: 'valid', instance });
    }
  }
  return parts;
}

/** Runs parts through the batch as the service does: check, then encode for the one known patient. */
async function run(batch: DicomBatch, parts: IngestPart[]): Promise<void> {
  for (const part of parts) {
    const prepared = await batch.check(part);
    if (prepared) {
      expect(prepared.patientKey).toBe(patientKeyOf(KEY, SYNTHETIC_PATIENT_ID));
      await batch.encode(prepared, PATIENT);
      prepared.file = undefined;
    }
  }
}

describe(DicomBatch.name, () => {
  it('answers every part of 40 generated batches once: stored, a repeat, or rejected with its reason and the rest BATCH_REJECTED', async () => {
    const random = seededRandom(SEED);
    const seen = new Set<string>();
    for (let round = 0; round < 40; round++) {
      const parts = generatedBatch(random, 1 + Math.floor(random() * 6));
      const batch = new DicomBatch(KEY, DEFAULT_READ_LIMITS);
      await run(batch, parts);
      const firstBad = parts.findIndex((p) => p.kind === 'garbage' || p.kind === 'conflict');
      if (firstBad < 0) {
        seen.add('clean');
        expect(batch.rejected).toEqual([]);
        expect(batch.encoded.map((e) => e.source)).toEqual(parts.map((p) => p.source));
        // A repeat is stored once and answered twice; the first of each SOP Instance UID is new.
        expect(batch.encoded.map((e) => e.alreadyStored)).toEqual(parts.map((p) => p.kind === 'repeat'));
        expect(batch.unique().map((e) => e.source)).toEqual(parts.filter((p) => p.kind === 'valid').map((p) => p.source));
        continue;
      }
      const answer = batch.rejectedResult();
      expect(answer).toMatchObject({ stored: false, accepted: [] });
      // Every part once, in one of three ways.
      expect(answer.rejected.map((r) => r.source).sort()).toEqual(parts.map((p) => p.source).sort());
      for (const [index, part] of parts.entries()) {
        const code = answer.rejected.find((r) => r.source === part.source)?.code;
        if (part.kind === 'garbage') {
          seen.add('garbage');
          expect(code).toBe(IngestRejectionCode.NOT_PART10);
        } else if (part.kind === 'conflict' && index === firstBad) {
          // Detected when both are encoded: only before any other rejection (afterwards parts are only checked).
          seen.add('conflict');
          expect(code).toBe(IngestRejectionCode.INSTANCE_CONFLICT);
        } else {
          seen.add('batch');
          expect(code).toBe(IngestRejectionCode.BATCH_REJECTED);
        }
      }
    }
    // The generator reaches every kind of answer it aims at (deterministic for the seed).
    expect([...seen].sort()).toEqual(['batch', 'clean', 'conflict', 'garbage']);
  });

  it('de-identifies what it encodes: no hospital patient ID, the pseudonym, replaced UIDs, and the client’s UID kept only for the answer', async () => {
    const batch = new DicomBatch(KEY, DEFAULT_READ_LIMITS);
    const original = syntheticImage({ instance: 7 });
    await run(batch, [{ source: 'a.dcm', bytes: original }]);
    const [object] = batch.encoded;
    expect(object.bytes.includes(Buffer.from(SYNTHETIC_PATIENT_ID, 'latin1'))).toBe(false);
    const stored = readPart10(object.bytes);
    expect(textOf(stored.dataset, TAGS.patientId)).toBe(PATIENT.pseudonym);
    const clientUid = textOf(readPart10(original).dataset, TAGS.sopInstanceUid);
    expect(object.clientSopInstanceUid).toBe(clientUid);
    expect(object.summary.sopInstanceUid).not.toBe(clientUid);
    expect(textOf(stored.dataset, TAGS.sopInstanceUid)).toBe(object.summary.sopInstanceUid);
    expect(object.size).toBe(object.bytes.length);
  });

  it('refuses an instance of another study than the URL names (STUDY_MISMATCH), with the client’s UIDs, and encodes nothing after a rejection', async () => {
    const batch = new DicomBatch(KEY, DEFAULT_READ_LIMITS, '1.2.3.4.5');
    const bytes = syntheticImage({ instance: 8 });
    expect(await batch.check({ source: 'x.dcm', bytes })).toBeNull();
    expect(batch.rejected).toEqual([
      expect.objectContaining({
        source: 'x.dcm',
        code: IngestRejectionCode.STUDY_MISMATCH,
        sopInstanceUid: textOf(readPart10(bytes).dataset, TAGS.sopInstanceUid),
      }),
    ]);
    const other = new DicomBatch(KEY, DEFAULT_READ_LIMITS);
    await run(other, [{ source: 'bad', bytes: Buffer.from('nope') }]);
    const later = await other.check({ source: 'good', bytes: syntheticImage({ instance: 9 }) });
    expect(later).not.toBeNull();
    await other.encode(later!, PATIENT);
    expect(other.encoded).toEqual([]);
    expect(other.rejectedResult().rejected.map((r) => [r.source, r.code])).toEqual([
      ['bad', IngestRejectionCode.NOT_PART10],
      ['good', IngestRejectionCode.BATCH_REJECTED],
    ]);
  });

  it('compares with what is stored: the same bytes are a no-op, other bytes under the same UID INSTANCE_CONFLICT', async () => {
    const batch = new DicomBatch(KEY, DEFAULT_READ_LIMITS);
    await run(batch, [
      { source: 'same', bytes: syntheticImage({ instance: 11 }) },
      { source: 'other', bytes: syntheticImage({ instance: 12 }) },
      { source: 'new', bytes: syntheticImage({ instance: 13 }) },
    ]);
    const [same, other] = batch.encoded;
    batch.compareWithStored(
      new Map([
        [same.summary.sopInstanceUid, same.sha256],
        [other.summary.sopInstanceUid, 'f'.repeat(64)],
      ]),
    );
    expect(batch.encoded.map((e) => [e.source, e.alreadyStored])).toEqual([
      ['same', true],
      ['other', true],
      ['new', false],
    ]);
    expect(batch.rejected).toEqual([
      expect.objectContaining({ source: 'other', code: IngestRejectionCode.INSTANCE_CONFLICT, sopInstanceUid: other.clientSopInstanceUid }),
    ]);
  });
});
