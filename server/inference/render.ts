import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { textOf, type DicomDataset } from '../dicom/dataset';
import { tag, TAGS } from '../dicom/dictionary';
import type { Part10File } from '../dicom/reader';
import { decodeFrame, type Frame } from './pixels';

/** The VOI LUT functions of PS3.3 C.11.2.1.3, as the `window` parameter of PS3.18 8.3.5.1.4 names them. */
export type WindowFunction = 'linear' | 'linear-exact' | 'sigmoid';
export interface VoiWindow {
  center: number;
  width: number;
  function: WindowFunction;
}
export type RenderedMediaType = 'image/png' | 'image/jpeg';

export interface RenderOptions {
  /** The client's window; otherwise the object's Window Center/Width, its VOI LUT, or the frame's range. */
  window?: VoiWindow;
  /** Fit into this many columns x rows, keeping the aspect ratio (PS3.18 `viewport`); never enlarges. */
  viewport?: { width: number; height: number };
  /** JPEG quality 1-100 (PS3.18 `quality`). */
  quality?: number;
}

const WINDOW_CENTER = tag(0x0028, 0x1050);
const WINDOW_WIDTH = tag(0x0028, 0x1051);
const VOI_LUT_FUNCTION = tag(0x0028, 0x1056);
const VOI_LUT_SEQUENCE = tag(0x0028, 0x3010);
const LUT_DESCRIPTOR = tag(0x0028, 0x3002);
const LUT_DATA = tag(0x0028, 0x3006);

/** A grey level 0..255 for each modality value. */
type Voi = (value: number) => number;

/** PS3.3 C.11.2.1.2.1 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT) and C.11.2.1.3.1 (SIGMOID), to 8 bits. */
export function windowVoi(w: VoiWindow): Voi {
  const { center: c, width } = w;
  if (w.function === 'sigmoid') return (x) => 255 / (1 + Math.exp((-4 * (x - c)) / width));
  if (w.function === 'linear-exact') {
    return (x) => (x <= c - width / 2 ? 0 : x > c + width / 2 ? 255 : ((x - c) / width + 0.5) * 255);
  }
  // LINEAR needs a width of at least 1 (PS3.3 C.11.2.1.2.1).
  const cw = Math.max(width, 1);
  return (x) => (x <= c - 0.5 - (cw - 1) / 2 ? 0 : x > c - 0.5 + (cw - 1) / 2 ? 255 : ((x - (c - 0.5)) / (cw - 1) + 0.5) * 255);
}

/** The first value of a multi-valued DS element, or undefined. */
function firstDs(dataset: DicomDataset, t: number): number | undefined {
  const text = textOf(dataset, t)?.split('\\')[0]?.trim();
  if (!text) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** The object's own window (first Window Center/Width pair, with its VOI LUT Function), if it has one. */
export function objectWindow(dataset: DicomDataset): VoiWindow | undefined {
  const center = firstDs(dataset, WINDOW_CENTER);
  const width = firstDs(dataset, WINDOW_WIDTH);
  if (center === undefined || width === undefined || width <= 0) return undefined;
  const fn = (textOf(dataset, VOI_LUT_FUNCTION) ?? 'LINEAR').toUpperCase();
  return { center, width, function: fn === 'SIGMOID' ? 'sigmoid' : fn === 'LINEAR_EXACT' ? 'linear-exact' : 'linear' };
}

/** The first VOI LUT of the VOI LUT Sequence (PS3.3 C.11.2.1.1): descriptor [entries, first mapped value, bits], data. */
function objectLut(dataset: DicomDataset, littleEndian: boolean): Voi | undefined {
  const item = dataset.get(VOI_LUT_SEQUENCE)?.items?.[0];
  const descriptor = item?.get(LUT_DESCRIPTOR)?.bytes;
  const data = item?.get(LUT_DATA)?.bytes;
  if (!item || !descriptor || descriptor.length !== 6 || !data) return undefined;
  const read = (b: Buffer, at: number) => (littleEndian ? b.readUInt16LE(at) : b.readUInt16BE(at));
  const entries = read(descriptor, 0) || 65536;
  // The first mapped value is US or SS by the pixel representation; a value above 32767 is read as signed.
  const firstRaw = read(descriptor, 2);
  const first = item.get(LUT_DESCRIPTOR)?.vr === 'SS' || firstRaw > 0x7fff ? (firstRaw << 16) >> 16 : firstRaw;
  const bits = read(descriptor, 4);
  const stride = data.length >= entries * 2 ? 2 : 1;
  if (bits < 1 || bits > 16 || data.length < entries * stride) return undefined;
  const max = 2 ** bits - 1;
  return (x) => {
    const i = Math.min(entries - 1, Math.max(0, Math.round(x) - first));
    return ((stride === 2 ? read(data, 2 * i) : data[i]) / max) * 255;
  };
}

/** The frame's own range as a window: what a viewer shows for an object without VOI attributes. */
function rangeVoi(frame: Frame): Voi {
  let low = Infinity;
  let high = -Infinity;
  for (const v of frame.values) {
    if (v < low) low = v;
    if (v > high) high = v;
  }
  const span = high > low ? high - low : 1;
  return (x) => ((x - low) / span) * 255;
}

/** Bilinear resampling of 8-bit grey levels to fit a viewport, keeping the aspect ratio; never enlarges. */
function fit(grey: Uint8Array, width: number, height: number, viewport: { width: number; height: number }) {
  const scale = Math.min(1, viewport.width / width, viewport.height / height);
  if (scale === 1) return { grey, width, height };
  const outW = Math.max(1, Math.round(width * scale));
  const outH = Math.max(1, Math.round(height * scale));
  const out = new Uint8Array(outW * outH);
  for (let oy = 0; oy < outH; oy++) {
    const sy = Math.min(height - 1, Math.max(0, ((oy + 0.5) * height) / outH - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(height - 1, y0 + 1);
    const fy = sy - y0;
    for (let ox = 0; ox < outW; ox++) {
      const sx = Math.min(width - 1, Math.max(0, ((ox + 0.5) * width) / outW - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(width - 1, x0 + 1);
      const fx = sx - x0;
      const top = grey[y0 * width + x0] * (1 - fx) + grey[y0 * width + x1] * fx;
      const bottom = grey[y1 * width + x0] * (1 - fx) + grey[y1 * width + x1] * fx;
      out[oy * outW + ox] = Math.round(top * (1 - fy) + bottom * fy);
    }
  }
  return { grey: out, width: outW, height: outH };
}

/** One frame as 8-bit grey levels: decoded (pixels.ts), VOI applied, MONOCHROME1 inverted so that white is white. */
export async function renderGrey(
  file: Part10File,
  frame: number,
  options: Pick<RenderOptions, 'window'> = {},
): Promise<{ grey: Uint8Array; width: number; height: number }> {
  const decoded = await decodeFrame(file, frame);
  const le = file.transferSyntax.littleEndian;
  const override = options.window;
  const voi = override
    ? windowVoi(override)
    : (() => {
        const own = objectWindow(file.dataset);
        return own ? windowVoi(own) : (objectLut(file.dataset, le) ?? rangeVoi(decoded));
      })();
  const invert = textOf(file.dataset, TAGS.photometricInterpretation) === 'MONOCHROME1';
  const grey = new Uint8Array(decoded.width * decoded.height);
  for (let i = 0; i < grey.length; i++) {
    const level = Math.round(Math.min(255, Math.max(0, voi(decoded.values[i]))));
    grey[i] = invert ? 255 - level : level;
  }
  return { grey, width: decoded.width, height: decoded.height };
}

/** Grey levels as a PNG (8-bit greyscale) or a baseline JPEG. */
export function encodeGrey(grey: Uint8Array, width: number, height: number, mediaType: RenderedMediaType, quality = 90): Buffer {
  if (mediaType === 'image/png') {
    const png = new PNG({ width, height, colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
    png.data = Buffer.from(grey.buffer, grey.byteOffset, grey.byteLength);
    return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
  }
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < grey.length; i++) {
    rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = grey[i];
    rgba[4 * i + 3] = 255;
  }
  return jpeg.encode({ data: rgba, width, height }, quality).data;
}

/**
 * A frame rendered for WADO-RS `/rendered` (PS3.18 8.3.5): the presentation a viewer would show without
 * annotations, as PNG or JPEG. Frames count from 0 here. Throws PixelDecodeError when the pixel data cannot be
 * decoded (colour images among them: only greyscale objects are rendered).
 */
export async function renderFrame(file: Part10File, frame: number, mediaType: RenderedMediaType, options: RenderOptions = {}): Promise<Buffer> {
  const rendered = await renderGrey(file, frame, options);
  const { grey, width, height } = options.viewport ? fit(rendered.grey, rendered.width, rendered.height, options.viewport) : rendered;
  return encodeGrey(grey, width, height, mediaType, options.quality);
}

/** The number of frames of a stored object (Number of Frames, 1 when absent). */
export function frameCount(file: Part10File): number {
  return Number.parseInt(textOf(file.dataset, TAGS.numberOfFrames) ?? '1', 10) || 1;
}
