import type { Db } from '../../db/transaction';
import type { Modality } from '../../domain';
import type { InferenceJob } from '../../entities';
import type { ModelManifest } from '../../inference/manifest';
import type { Region } from '../../inference/pixels';
import type { RequestContext } from '../request-context';
import { restrictToScope, whereIn } from '../scope';

/**
 * A job's work items and their fixed order. The order is what makes a job resumable: the job row keeps a cursor
 * (the key of the last item accounted for), and a run that takes the job over goes on after it.
 */

/** One image a job runs the model on: a joint x modality's joint image, its frame and region, its stored object. */
export interface WorkItem {
  jointImageId: string;
  jointId: string;
  modality: Modality;
  frame: number;
  region: Region;
  sha256: string;
}

/** A work item's cell: what a prediction is unique by (with the model and feature). */
export const cellOf = (w: Pick<WorkItem, 'jointId' | 'modality'>): string => `${w.jointId}:${w.modality}`;

/**
 * A work item's place in the job's fixed order (the cursor's value): by stored object first, so the two joints of
 * one slice fall in the same batch and the object is read and decoded once; sha256 and uuid are fixed-length, and
 * the frame is padded to five digits, so the text order is the tuple order.
 */
export const orderOf = (w: Pick<WorkItem, 'sha256' | 'frame' | 'jointId' | 'modality'>): string =>
  `${w.sha256}:${String(w.frame).padStart(5, '0')}:${cellOf(w)}`;

/** Compares two order keys by code unit (not by locale). */
export const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The items after `cursor` in the job's order (all of them for a job not yet started). */
export const itemsAfter = (items: WorkItem[], cursor: string | null): WorkItem[] =>
  cursor === null ? items : items.filter((w) => compareKeys(orderOf(w), cursor) > 0);

/**
 * A job's work items, in the job's fixed order: the first joint image of each joint x modality in scope that the
 * model has preprocessing for. `createdBy`: only images that existed when the job was created, so a job's work
 * (and its total) is fixed from start to end.
 */
export async function workItems(db: Db, ctx: RequestContext, scope: InferenceJob['scope'], manifest: ModelManifest, createdBy?: Date): Promise<WorkItem[]> {
  const modalities = Object.keys(manifest.preprocessing).filter((m) => !scope.modalities.length || scope.modalities.includes(m));
  const qb = db
    .manager(ctx)
    .createQueryBuilder()
    .from('joint_image', 'ji')
    .innerJoin('instance', 'i', 'i.id = ji.instance_id')
    .innerJoin('series', 'se', 'se.id = i.series_id')
    .innerJoin('joint', 'j', 'j.id = ji.joint_id')
    .innerJoin('patient', 'patient', 'patient.id = j.patient_id')
    .select([
      'DISTINCT ON (ji.joint_id, se.modality) ji.id AS "jointImageId"',
      'ji.joint_id AS "jointId"',
      'se.modality AS "modality"',
      'ji.frame AS "frame"',
      'ji.roi_x AS "x"',
      'ji.roi_y AS "y"',
      'ji.roi_width AS "width"',
      'ji.roi_height AS "height"',
      'i.sha256 AS "sha256"',
    ])
    .orderBy('ji.joint_id')
    .addOrderBy('se.modality')
    .addOrderBy('ji.id');
  restrictToScope(qb, ctx, 'patient.site_id');
  whereIn(qb, 'patient.site_id', scope.siteIds.length ? scope.siteIds : null);
  whereIn(qb, 'se.modality', modalities);
  if (createdBy) qb.andWhere('ji.created_at <= :createdBy', { createdBy });
  const rows = await qb.getRawMany<Omit<WorkItem, 'region'> & Region>();
  return rows
    .map(({ x, y, width, height, ...w }) => ({ ...w, region: { x, y, width, height }, sha256: w.sha256.trim() }))
    .sort((a, b) => compareKeys(orderOf(a), orderOf(b)));
}
