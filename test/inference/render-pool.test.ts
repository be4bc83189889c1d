/**
 * The render worker pool on its own: what it answers is byte for byte what renderFrame answers in this process;
 * a full queue refuses with RenderQueueFullError; an object that throws inside a worker rejects its task with a
 * typed error; and after each of those the pool still renders.
 */
import { readPart10 } from '../../server/dicom/reader';
import { PixelDecodeError } from '../../server/inference/pixels';
import { renderFrame, type RenderedMediaType } from '../../server/inference/render';
import { RenderFailedError, RenderPool, RenderQueueFullError } from '../../server/inference/render-pool';
import { fixture, READABLE } from '../helpers/dicom-fixtures';
import { syntheticCtSeries } from '../helpers/synthetic-dicom';
import { Gen } from '../federation/generators';

describe('RenderPool', () => {
  const pool = new RenderPool({ threads: 1, maxQueue: 1 });
  const [ct] = syntheticCtSeries(1, 512, '1');
  afterAll(() => pool.close());

  it('answers the bytes renderFrame answers, for every readable transfer syntax, PNG and JPEG, with and without options', async () => {
    const options = [{}, { window: { center: 40, width: 400, function: 'linear' as const }, viewport: { width: 100, height: 80 }, quality: 50 }];
    for (const [name] of READABLE) {
      for (const mediaType of ['image/png', 'image/jpeg'] as RenderedMediaType[]) {
        for (const option of options) {
          const bytes = fixture(name);
          const expected = await renderFrame(readPart10(bytes), 0, mediaType, option);
          const pooled = await pool.render(bytes, 0, mediaType, option);
          expect({ name, mediaType, option, same: pooled.equals(expected) }).toEqual({ name, mediaType, option, same: true });
        }
      }
    }
  });

  it('refuses what does not fit its threads and queue with RenderQueueFullError, and renders again after', async () => {
    const expected = await renderFrame(readPart10(ct), 0, 'image/jpeg');
    // Issued together: one thread and a queue of one take at most two of them.
    const settled = await Promise.allSettled(Array.from({ length: 6 }, () => pool.render(ct, 0, 'image/jpeg', {})));
    const done = settled.filter((s) => s.status === 'fulfilled');
    const refused = settled.filter((s) => s.status === 'rejected');
    expect(done.length).toBeGreaterThanOrEqual(1);
    expect(done.length).toBeLessThanOrEqual(2);
    for (const s of done) expect((s as PromiseFulfilledResult<Buffer>).value.equals(expected)).toBe(true);
    for (const s of refused) expect((s as PromiseRejectedResult).reason).toBeInstanceOf(RenderQueueFullError);
    expect(pool.inFlight).toBe(0);
    expect((await pool.render(ct, 0, 'image/jpeg', {})).equals(expected)).toBe(true);
  });

  it('rejects corrupt objects that throw inside the worker with a typed error, and keeps rendering', async () => {
    const gen = new Gen(7134);
    const expected = await renderFrame(readPart10(ct), 0, 'image/png');
    // Classes of corrupt input: random bytes, the object cut short at random points, random bytes written over its pixel data.
    const corrupt = [
      ...Array.from({ length: 3 }, () => gen.bytes(gen.int(0, 4096))),
      ...Array.from({ length: 3 }, () => ct.subarray(0, gen.int(0, ct.length - 1))),
      ...Array.from({ length: 3 }, () => {
        const copy = Buffer.from(ct);
        copy.fill(gen.int(0, 255), gen.int(1024, copy.length - 1));
        return copy;
      }),
    ];
    for (const [i, bytes] of corrupt.entries()) {
      let inProcess: unknown = null;
      try {
        await renderFrame(readPart10(bytes), 0, 'image/png');
      } catch (error) {
        inProcess = error;
      }
      const pooled = await pool.render(bytes, 0, 'image/png', {}).then(
        (image) => ({ image }),
        (error: unknown) => ({ error }),
      );
      if (inProcess === null) {
        // Damage that still parses renders the same in the worker as here.
        expect({ i, same: 'image' in pooled && pooled.image.equals(await renderFrame(readPart10(bytes), 0, 'image/png')) }).toEqual({ i, same: true });
      } else if (inProcess instanceof PixelDecodeError) {
        expect({ i, error: 'error' in pooled && pooled.error instanceof PixelDecodeError }).toEqual({ i, error: true });
      } else {
        expect({ i, error: 'error' in pooled && pooled.error instanceof RenderFailedError }).toEqual({ i, error: true });
      }
      expect((await pool.render(ct, 0, 'image/png', {})).equals(expected)).toBe(true);
    }
    // At least the random bytes are no DICOM object: parsing throws inside the worker.
    await expect(pool.render(Buffer.from('not a DICOM object'), 0, 'image/png', {})).rejects.toBeInstanceOf(RenderFailedError);
    expect((await pool.render(ct, 0, 'image/png', {})).equals(expected)).toBe(true);
  });
});
