import { ingestBytes, ingestObjects } from '../../telemetry/metrics';
import { NO_TRANSACTION, type Db } from '../../db/transaction';
import { DEFAULT_READ_LIMITS, type ReadLimits } from '../../dicom/reader';
import { IngestRejectionCode, Role } from '../../domain';
import { Patient } from '../../entities';
import { badInput, forbidden } from '../../errors/app-error';
import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { INGEST_PROGRESS, type IngestProgressEvent } from '../../pubsub/topics';
import type { ObjectStore } from '../../storage/object-store';
import type { AuditService } from '../audit.service';
import type { NodeKeyService } from '../node-key.service';
import { assertSiteInScope, requireActor, requireRole, type RequestContext } from '../request-context';
import type { SiteService } from '../site.service';
import { DicomBatch } from './dicom-pipeline';
import { IngestConflict, recordObjects, storedSha256s } from './dicom-rows';
import { IngestProgress } from './ingest-progress';
import type { IngestPart, IngestResult } from './ingest-result';
import { lockObjectsExclusive, lockObjectsShared, referencedObjects } from './stored-objects.sql';

/** Object files written at once within a batch. */
const PARALLEL_WRITES = 8;

/**
 * DICOM ingest: parse and check every object, link it to its patient by the keyed hash of its Patient ID,
 * de-identify (dicom-pipeline.ts), store content-addressed, and record studies, series and instances in one
 * transaction (dicom-rows.ts). A batch lands whole or not at all: one rejected object means nothing of the batch is
 * stored, and the answer lists every rejected object with its reason. The original bytes are never written anywhere.
 */
export class IngestService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly keys: NodeKeyService,
    private readonly sites: SiteService,
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
   * The site a STOW-RS request stores into: a COORDINATOR's own (naming another site is FORBIDDEN); an ADMIN names
   * it by code (`?site=<code>`), without which BAD_USER_INPUT. Other roles store nothing.
   */
  async stowSite(ctx: RequestContext, siteCode: string | undefined): Promise<string> {
    const actor = requireActor(ctx);
    if (actor.role !== Role.ADMIN && actor.role !== Role.COORDINATOR) throw forbidden('Only coordinators store objects');
    if (siteCode === undefined) {
      if (!actor.siteId) throw badInput('Name the target site with ?site=<code>');
      return actor.siteId;
    }
    const site = await this.sites.findSiteByCode(ctx, siteCode);
    if (!site) throw badInput(`No site with code ${siteCode}`);
    if (actor.role === Role.COORDINATOR && site.id !== actor.siteId) throw forbidden('A coordinator stores into their own site only');
    return site.id;
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
    const progress = new IngestProgress(this.pubSub, ctx.requestId, siteId, parts.length);
    await progress.update({}, true);
    try {
      const result = await this.ingest(ctx, siteId, parts, progress, studyInstanceUid);
      const outcome = result.stored ? 'stored' : 'rejected';
      ingestObjects.inc({ outcome }, parts.length);
      ingestBytes.inc(
        { outcome },
        parts.reduce((sum, p) => sum + p.bytes.length, 0),
      );
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

  private async ingest(ctx: RequestContext, siteId: string, parts: IngestPart[], progress: IngestProgress, studyInstanceUid?: string): Promise<IngestResult> {
    const batch = new DicomBatch(await this.keys.identifierKey(), this.limits, studyInstanceUid);
    const patients = new Map<string, Patient | null>();
    let bytes = 0;
    for (const [index, part] of parts.entries()) {
      const prepared = await batch.check(part);
      if (prepared) {
        if (!patients.has(prepared.patientKey))
          patients.set(prepared.patientKey, await this.db.repo(ctx, Patient).findOneBy({ siteId, patientKey: prepared.patientKey }));
        const patient = patients.get(prepared.patientKey);
        if (patient) await batch.encode(prepared, patient);
        else batch.reject(prepared, IngestRejectionCode.UNKNOWN_PATIENT, 'No patient of this site has this Patient ID; upload the patients manifest first');
        // The parsed tree is not needed any more; the summary stays for the answer.
        prepared.file = undefined;
      }
      bytes += part.bytes.length;
      await progress.update({ objectsDone: index + 1, rejected: batch.rejected.length, bytes });
    }
    if (batch.rejected.length) return batch.rejectedResult();

    // Before any file is written: an instance stored before with other bytes is refused, so no file is left without a row.
    const unique = batch.unique();
    const storedSha = await storedSha256s(
      this.db.manager(ctx),
      unique.map((o) => o.summary.sopInstanceUid),
    );
    batch.compareWithStored(storedSha);
    if (batch.rejected.length) return batch.rejectedResult();

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
        await lockObjectsShared(this.db.manager(tx));
        // Checked together, eight at a time (against S3 each check is a round trip, and the lock is held meanwhile).
        for (let i = 0; i < unique.length; i += PARALLEL_WRITES) {
          await Promise.all(
            unique.slice(i, i + PARALLEL_WRITES).map(async (o) => {
              if (!(await this.objects.has(o.sha256))) await this.objects.put(o.bytes, o.sha256);
            }),
          );
        }
        const recorded = await recordObjects(this.db.manager(tx), batch.encoded, unique);
        const objects = batch.encoded.length;
        await this.audit.record(tx, {
          action: 'ingestDicom',
          entityType: 'Instance',
          siteId,
          details: { objects, new: recorded.newInstances, alreadyStored: objects - recorded.newInstances, studies: recorded.studies },
        });
        return recorded.accepted;
      });
      return { stored: true, accepted, rejected: [] };
    } catch (error) {
      // The transaction rolled back: remove the files this batch created that no committed row references.
      await this.removeUnreferenced(created);
      if (!(error instanceof IngestConflict)) throw error;
      return batch.rejectedResult([{ source: error.source, code: error.code, reason: error.message }]);
    }
  }

  /** Deletes those of `sha256s` no instance references, while no batch is committing (exclusive lock, a transaction of its own). */
  private async removeUnreferenced(sha256s: string[]): Promise<void> {
    if (!sha256s.length) return;
    await this.db.transaction(NO_TRANSACTION, async (tx) => {
      await lockObjectsExclusive(this.db.manager(tx));
      const referenced = await referencedObjects(this.db.manager(tx), sha256s);
      await Promise.all(sha256s.filter((sha) => !referenced.has(sha)).map((sha) => this.objects.remove(sha)));
    });
  }

  /**
   * Start-of-process clean-up: what writes a crash interrupted left (temp files), and stored objects no row
   * references (a batch killed between writing its objects and committing), once older than `orphanMinAgeMs`.
   * Each page of the store's listing is judged and removed under the exclusive object lock, so an object a batch
   * found already stored cannot vanish between that batch's check and its commit (the batch checks again under the
   * shared lock and puts it back); the age spares objects a batch on another server wrote and has not yet committed.
   */
  async sweepStorage(orphanMinAgeMs: number): Promise<{ temp: number; orphans: number }> {
    const temp = await this.objects.sweepTemp(Math.min(orphanMinAgeMs, 10 * 60 * 1000));
    let orphans = 0;
    for await (const page of this.objects.list()) {
      const old = page.filter((o) => Date.now() - o.modifiedAt.getTime() >= orphanMinAgeMs).map((o) => o.sha256);
      if (!old.length) continue;
      orphans += await this.db.transaction(NO_TRANSACTION, async (tx) => {
        await lockObjectsExclusive(this.db.manager(tx));
        const referenced = await referencedObjects(this.db.manager(tx), old);
        const unreferenced = old.filter((sha) => !referenced.has(sha));
        await Promise.all(unreferenced.map((sha) => this.objects.remove(sha)));
        return unreferenced.length;
      });
    }
    return { temp, orphans };
  }
}
