import DataLoader from 'dataloader';
import type { Instance, Joint, JointImage, Patient, Reader, Reading, ReferenceGrade, ReferenceImport, Series, Site, Study } from '../entities';
import type { RequestContext, Services } from '../services';

/** One row per key; null where the row is missing or outside the caller's scope. */
function byId<T extends { id: string }>(fetch: (ids: readonly string[]) => Promise<T[]>): DataLoader<string, T | null> {
  return new DataLoader(async (ids) => {
    const rows = new Map((await fetch(ids)).map((r) => [r.id, r]));
    return ids.map((id) => rows.get(id) ?? null);
  });
}

/** All rows per parent key, in the order the service returned them. */
function byParent<T>(fetch: (ids: readonly string[]) => Promise<T[]>, parentOf: (row: T) => string): DataLoader<string, T[]> {
  return new DataLoader(async (ids) => {
    const groups = new Map<string, T[]>(ids.map((id) => [id, []]));
    for (const row of await fetch(ids)) groups.get(parentOf(row))?.push(row);
    return ids.map((id) => groups.get(id) ?? []);
  });
}

/**
 * Per-request batch loaders for nested fields: one SQL statement per field per level, never one per parent.
 * Each calls a service with the request's context, so scope and blinding apply to nested paths too.
 */
export function createLoaders(services: Services, ctx: RequestContext) {
  return {
    site: byId<Site>((ids) => services.sites.sitesByIds(ctx, ids)),
    reader: byId<Reader>((ids) => services.readers.readersByIds(ctx, ids)),
    patient: byId<Patient>((ids) => services.patients.patientsByIds(ctx, ids)),
    joint: byId<Joint>((ids) => services.patients.jointsByIds(ctx, ids)),
    study: byId<Study>((ids) => services.imaging.studiesByIds(ctx, ids)),
    series: byId<Series>((ids) => services.imaging.seriesByIds(ctx, ids)),
    instance: byId<Instance>((ids) => services.imaging.instancesByIds(ctx, ids)),
    referenceImport: byId<ReferenceImport>((ids) => services.referenceImports.referenceImportsByIds(ctx, ids)),
    jointsByPatient: byParent<Joint>(
      (ids) => services.patients.jointsByPatientIds(ctx, ids),
      (j) => j.patientId,
    ),
    studiesByPatient: byParent<Study>(
      (ids) => services.imaging.studiesByPatientIds(ctx, ids),
      (s) => s.patientId,
    ),
    seriesByStudy: byParent<Series>(
      (ids) => services.imaging.seriesByStudyIds(ctx, ids),
      (s) => s.studyId,
    ),
    instancesBySeries: byParent<Instance>(
      (ids) => services.imaging.instancesBySeriesIds(ctx, ids),
      (i) => i.seriesId,
    ),
    jointImagesByJoint: byParent<JointImage>(
      (ids) => services.imaging.jointImagesByJointIds(ctx, ids),
      (i) => i.jointId,
    ),
    readingsByJoint: byParent<Reading>(
      (ids) => services.readings.readingsByJointIds(ctx, ids),
      (r) => r.jointId,
    ),
    readingsByReader: byParent<Reading>(
      (ids) => services.readings.readingsByReaderIds(ctx, ids),
      (r) => r.readerId,
    ),
    referenceGradesByJoint: byParent<ReferenceGrade>(
      (ids) => services.references.referenceGradesByJointIds(ctx, ids),
      (r) => r.jointId,
    ),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
