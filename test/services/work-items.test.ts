import { prng } from '../../server/demo/phantoms';
import { Modality } from '../../server/domain';
import { cellOf, compareKeys, itemsAfter, orderOf, type WorkItem } from '../../server/services/inference-job/work-items';

const hex = (random: () => number, length: number) => Array.from({ length }, () => Math.floor(random() * 16).toString(16)).join('');
const uuid = (random: () => number) => [8, 4, 4, 4, 12].map((n) => hex(random, n)).join('-');
const REGION = { x: 0, y: 0, width: 8, height: 8 };

/**
 * Work items as a job sees them, drawn so that ties are common: a few objects, each with a few frames and joints
 * (the two joints of one slice share an object), every modality, frames up to 1500 (one to four digits).
 * One item per joint x modality, as a job has.
 */
function drawItems(seed: number): WorkItem[] {
  const random = prng(seed);
  const objects = Array.from({ length: 1 + Math.floor(random() * 6) }, () => hex(random, 64));
  const joints = Array.from({ length: 1 + Math.floor(random() * 12) }, () => uuid(random));
  return joints.flatMap((jointId) =>
    Object.values(Modality)
      .filter(() => random() < 0.8)
      .map((modality) => ({
        jointImageId: uuid(random),
        jointId,
        modality,
        frame: Math.floor(random() * (random() < 0.5 ? 12 : 1500)),
        region: REGION,
        sha256: objects[Math.floor(random() * objects.length)],
      })),
  );
}

/** The order the job means: object, then frame as a number, then joint, then modality. */
function byTuple(a: WorkItem, b: WorkItem): number {
  return compareKeys(a.sha256, b.sha256) || a.frame - b.frame || compareKeys(a.jointId, b.jointId) || compareKeys(a.modality, b.modality);
}

describe('the work-item order of an inference job', () => {
  const SEEDS = Array.from({ length: 200 }, (_, i) => i + 1);

  it('orders by key exactly as by (object, frame, joint, modality), frames compared as numbers', () => {
    for (const seed of SEEDS) {
      const items = drawItems(seed);
      expect(new Set(items.map(cellOf)).size).toBe(items.length);
      const byKey = [...items].sort((a, b) => compareKeys(orderOf(a), orderOf(b)));
      expect(byKey).toEqual([...items].sort(byTuple));
    }
  });

  it('resumes after a cursor with exactly the items not yet accounted for, whichever item the cursor names', () => {
    for (const seed of SEEDS) {
      const items = drawItems(seed).sort(byTuple);
      if (!items.length) continue;
      const k = Math.floor(prng(seed * 7919)() * items.length);
      expect(itemsAfter(items, orderOf(items[k]))).toEqual(items.slice(k + 1));
      expect(itemsAfter(items, null)).toEqual(items);
    }
  });

  it('keeps the two joints of one slice next to each other, before a later object', () => {
    const slice = { sha256: 'a'.repeat(64), frame: 3, region: REGION, modality: Modality.CT };
    const left = { ...slice, jointImageId: 'left', jointId: '00000000-0000-0000-0000-000000000001' };
    const right = { ...slice, jointImageId: 'right', jointId: 'ffffffff-ffff-ffff-ffff-ffffffffffff' };
    const other = { ...slice, jointImageId: 'other', jointId: '77777777-7777-7777-7777-777777777777', sha256: 'b'.repeat(64), frame: 0 };
    expect([other, right, left].sort((a, b) => compareKeys(orderOf(a), orderOf(b))).map((w) => w.jointImageId)).toEqual(['left', 'right', 'other']);
  });
});
