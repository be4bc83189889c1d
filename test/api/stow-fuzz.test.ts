import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { syntheticImage, SYNTHETIC_PATIENT_ID } from '../helpers/synthetic-dicom';
import { textBytes } from '../../server/dicom/dataset';
import { inspectImage } from '../../server/dicom/image-object';
import { readPart10 } from '../../server/dicom/reader';
import { vrProblem } from '../../server/dicom/vr';
import { IngestRejectionCode, Role } from '../../server/domain';
import { systemContext } from '../../server/services';
import { seededRandom } from '../../server/stats/bootstrap';
import { fixture, IDENTIFIED } from '../helpers/dicom-fixtures';
import { mutate, pick } from '../helpers/dicom-mutations';
import { Factory } from '../helpers/factories';
import { useTestNode } from '../helpers/lifecycle';
import { failureCode, stow } from '../helpers/stow';

/**
 * The property every upload must have, whatever its bytes: the answer is 2xx, or 4xx with a Facet code for each
 * part; never 5xx and never a thrown error; and a rejected batch leaves no row and no object file. Checked on
 * seeded mutations of valid files of every kind Facet stores, through the service and through the real STOW-RS
 * endpoint. FACET_FUZZ_CASES and FACET_FUZZ_SEED run more cases or other ones.
 */
const CASES = Number(process.env.FACET_FUZZ_CASES ?? 600);
const SEED = Number(process.env.FACET_FUZZ_SEED ?? 20_240_117);
/** Small limits, so that floods past them cost little: the limits are what is under test, not their default size. */
const LIMITS = { maxElements: 5_000, maxDepth: 8 };
const CODES = new Set<string>(Object.values(IngestRejectionCode));

describe('ingest of mutated DICOM (property test)', () => {
  const node = useTestNode({ dicomLimits: LIMITS });
  let siteId: string;
  let coordinator: string;
  const corpus: Array<{ name: string; bytes: Buffer }> = [
    ...IDENTIFIED.map((name) => ({ name, bytes: fixture(name) })),
    { name: 'enhanced CT, 4 frames, functional groups', bytes: syntheticImage({ frames: 4, instance: 901 }) },
    { name: 'MR, implicit VR, 3 frames', bytes: syntheticImage({ modality: 'MR', syntax: 'implicit-le', frames: 3, instance: 902 }) },
    { name: 'CT, deflated', bytes: syntheticImage({ syntax: 'deflated', instance: 903 }) },
    { name: 'DX, YBR_FULL_422', bytes: syntheticImage({ modality: 'DX', photometric: 'YBR_FULL_422', instance: 904 }) },
    { name: 'CT, padded pixel data', bytes: syntheticImage({ paddingBytes: 8, instance: 905 }) },
  ];

  const state = async () => {
    const [counts] = await node().dataSource.query(
      `SELECT (SELECT count(*) FROM instance)::int AS instances, (SELECT count(*) FROM series)::int AS series,
              (SELECT count(*) FROM study)::int AS studies, (SELECT count(*) FROM audit_event)::int AS audit`,
    );
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(path.join(dir, e.name));
        else files.push(path.relative(node().dataDir, path.join(dir, e.name)));
      }
    };
    await walk(path.join(node().dataDir, 'objects'));
    return { ...counts, files: files.sort() };
  };

  beforeAll(async () => {
    const factory = new Factory(node().services);
    const site = await factory.site('EAST');
    siteId = site.id;
    coordinator = await factory.token(Role.COORDINATOR, { site });
    await node().services.manifests.importPatients(factory.admin, `site,patient_id\nEAST,${SYNTHETIC_PATIENT_ID}\n`);
  });

  it('stores the unmutated corpus (XR, CT, MR; explicit, implicit, big endian, deflated; compressed; multi-frame; sequences)', async () => {
    const result = await node().services.ingest.ingestDicom(
      systemContext(),
      siteId,
      corpus.map((c) => ({ source: c.name, bytes: c.bytes })),
    );
    expect(result.rejected).toEqual([]);
    expect(result.accepted).toHaveLength(corpus.length);
  });

  it(
    `answers ${CASES} mutated objects with 2xx or a coded 4xx, never 5xx, and leaves nothing of a rejected batch`,
    async () => {
      const random = seededRandom(SEED);
      const seen = new Map<string, number>();
      let accepted = 0;
      let done = 0;
      let batchNo = 0;
      while (done < CASES) {
        batchNo++;
        // Mostly single parts (a batch of mutated parts is rarely accepted whole), sometimes two or three.
        const size = Math.min(CASES - done, random() < 0.6 ? 1 : 2 + Math.floor(random() * 2));
        const parts = Array.from({ length: size }, (_, i) => {
          const base = pick(random, corpus);
          // Now and then a valid object rides along, so a rejected batch also has something to hold back.
          if (random() < 0.1) return { source: `part ${i + 1}`, bytes: base.bytes, applied: ['none'], base: base.name };
          const { bytes, applied } = mutate(base.bytes, random, done + i + 1, LIMITS);
          return { source: `part ${i + 1}`, bytes, applied, base: base.name };
        });
        done += size;
        const context = { batchNo, parts: parts.map((p) => `${p.base}: ${p.applied.join('+')}`) };
        const before = await state();
        // A third of the batches go through the real STOW-RS endpoint, the rest straight to the service.
        if (batchNo % 3 === 0) {
          const answer = await stow(node().url, coordinator, parts);
          expect({ ...context, status: answer.status < 500 }).toEqual({ ...context, status: true });
          if (answer.status >= 400) {
            expect({ ...context, status: answer.status, failed: answer.failed.length }).toEqual({ ...context, status: 409, failed: parts.length });
            for (const item of answer.failed) {
              expect({ ...context, code: CODES.has(failureCode(item)), reason: typeof item['00081197']?.Value?.[0] }).toEqual({
                ...context,
                code: true,
                reason: 'number',
              });
              seen.set(failureCode(item), (seen.get(failureCode(item)) ?? 0) + 1);
              // What the answer says is valid DICOM too: the Error Comment an LO, the UIDs echoed only when they are UIDs.
              const comment = Buffer.from(String(item['00000902'].Value[0]), 'latin1');
              const uids = ['00081150', '00081155'].map((t) => item[t]?.Value?.[0]).filter((u) => u !== undefined);
              expect({ ...context, comment: vrProblem('LO', Buffer.concat([comment, Buffer.alloc(comment.length % 2, 0x20)])) }).toEqual({
                ...context,
                comment: null,
              });
              for (const uid of uids) expect({ ...context, uid, problem: vrProblem('UI', textBytes('UI', uid)) }).toEqual({ ...context, uid, problem: null });
            }
            expect({ ...context, state: await state() }).toEqual({ ...context, state: before });
          } else {
            expect({ ...context, stored: answer.stored.length }).toEqual({ ...context, stored: parts.length });
            accepted += parts.length;
          }
        } else {
          const result = await node()
            .services.ingest.ingestDicom(systemContext(), siteId, parts)
            .catch((error: Error) => ({ threw: `${error.name}: ${error.message}` }));
          expect({ ...context, threw: 'threw' in result ? result.threw : null }).toEqual({ ...context, threw: null });
          if ('threw' in result) continue;
          const answered = [...result.accepted.map((a) => a.source), ...result.rejected.map((r) => r.source)].sort();
          expect({ ...context, answered }).toEqual({ ...context, answered: parts.map((p) => p.source).sort() });
          expect({ ...context, stored: result.stored }).toEqual({ ...context, stored: result.rejected.length === 0 });
          for (const r of result.rejected) {
            expect({ ...context, code: CODES.has(r.code) }).toEqual({ ...context, code: true });
            // A specific reason, not the last-resort one for an error the reader and checks did not anticipate.
            expect({ ...context, reason: r.reason }).toEqual({
              ...context,
              reason: expect.not.stringMatching(/could not be (read as a valid image|re-encoded)/),
            });
            seen.set(r.code, (seen.get(r.code) ?? 0) + 1);
          }
          if (!result.stored) {
            expect({ ...context, state: await state() }).toEqual({ ...context, state: before });
          } else {
            accepted += parts.length;
            // What was stored is a valid image that Facet's reader reads back.
            for (const a of result.accepted) {
              const back = readPart10(await node().services.objects.read(a.sha256));
              expect({ ...context, uid: inspectImage(back).sopInstanceUid }).toEqual({ ...context, uid: a.sopInstanceUid });
            }
          }
        }
      }
      if (process.env.FACET_FUZZ_REPORT) process.stderr.write(`${JSON.stringify({ accepted, seen: Object.fromEntries(seen) })}\n`);
      // The generator reaches both sides and every kind of refusal it aims at (deterministic for a seed).
      expect(accepted).toBeGreaterThan(CASES / 20);
      for (const code of [
        'TRUNCATED',
        'IMPOSSIBLE_LENGTH',
        'MALFORMED_ELEMENT',
        'INVALID_VALUE',
        'TOO_COMPLEX',
        'PIXEL_LENGTH_MISMATCH',
        'INSTANCE_CONFLICT',
        'BATCH_REJECTED',
      ]) {
        expect({ code, seen: (seen.get(code) ?? 0) > 0 }).toEqual({ code, seen: true });
      }
    },
    Math.max(60_000, CASES * 200),
  );
});
