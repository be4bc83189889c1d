import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readPart10 } from '../../server/dicom/reader';
import { decodeFrame, PixelDecodeError, preprocess } from '../../server/inference/pixels';

const fixture = (name: string) => readPart10(readFileSync(path.resolve(__dirname, '../fixtures/dicom', name)));
/** The fixtures' pixels: stored value (x*7 + y*13) mod 2^bits-stored (scripts/make-dicom-fixtures.py). */
const expected = (x: number, y: number, modulus: number) => (x * 7 + y * 13) % modulus;

describe('decoding stored pixel data to modality values', () => {
  it.each([
    ['identified-explicit-le.dcm', -1024],
    ['identified-implicit-le.dcm', -1024],
    ['identified-explicit-be.dcm', -1024],
    ['identified-mr.dcm', 0],
    ['identified-jpeg-ls.dcm', -1024],
    ['identified-jpeg2000.dcm', -1024],
    ['identified-jpeg-lossless.dcm', -1024],
    ['identified-rle.dcm', -1024],
  ])('decodes %s exactly (rescale intercept %i applied)', async (name, intercept) => {
    const frame = await decodeFrame(fixture(name), 0);
    expect([frame.width, frame.height]).toEqual([64, 64]);
    let mismatches = 0;
    for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) if (frame.values[y * 64 + x] !== expected(x, y, 4096) + intercept) mismatches++;
    expect(mismatches).toBe(0);
  });

  it('decodes lossy JPEG baseline close to the original 8-bit image', async () => {
    const frame = await decodeFrame(fixture('identified-jpeg-baseline.dcm'), 0);
    let error = 0;
    for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) error += Math.abs(frame.values[y * 64 + x] - expected(x, y, 256));
    expect(error / 4096).toBeLessThan(20);
  });

  it('names data it cannot decode, and frames that do not exist', async () => {
    const broken = fixture('identified-rle.dcm');
    const pixels = broken.dataset.get(0x7fe00010)!;
    pixels.fragments = [pixels.fragments![0], pixels.fragments![1].subarray(0, 80)];
    await expect(decodeFrame(broken, 0)).rejects.toThrow(PixelDecodeError);
    await expect(decodeFrame(fixture('identified-explicit-le.dcm'), 1)).rejects.toThrow(/Frame 1 does not exist/);
  });
});

describe('preprocessing a joint region', () => {
  it('crops, windows to 0..1, resizes and normalises', async () => {
    const frame = await decodeFrame(fixture('identified-explicit-le.dcm'), 0);
    const out = preprocess(frame, { x: 0, y: 0, width: 8, height: 8 }, { window: null, resize: [8, 8], normalize: { mean: 0, std: 1 } });
    // Same size: the crop itself, min-max scaled. Top-left is the region's minimum (0), bottom-right its maximum (1).
    expect(out[0]).toBeCloseTo(0, 6);
    expect(out[63]).toBeCloseTo(1, 6);
    const windowed = preprocess(
      frame,
      { x: 0, y: 0, width: 8, height: 8 },
      { window: { center: -1024 + 50, width: 100 }, resize: [4, 4], normalize: { mean: 0.5, std: 0.25 } },
    );
    expect(windowed).toHaveLength(16);
    expect(Math.max(...windowed)).toBeLessThanOrEqual((1 - 0.5) / 0.25);
    expect(() => preprocess(frame, { x: 60, y: 0, width: 8, height: 8 }, { window: null, resize: [4, 4], normalize: { mean: 0, std: 1 } })).toThrow(
      /outside the frame/,
    );
  });
});
