import { textOf, uintOf } from '../dicom/dataset';
import { tag, TAGS } from '../dicom/dictionary';
import type { Part10File } from '../dicom/reader';
import { Decoder as JpegLosslessDecoder } from 'jpeg-lossless-decoder-js';
import type { Preprocessing } from './manifest';

/** One decoded frame: modality values (rescale slope and intercept applied), row-major, one sample per pixel. */
export interface Frame {
  width: number;
  height: number;
  values: Float32Array;
}

export class PixelDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PixelDecodeError';
  }
}

type CodecName = 'charls' | 'openjpeg' | 'libjpeg-turbo';
const CODEC_OF: Record<string, { codec: CodecName; decoder: 'JpegLSDecoder' | 'J2KDecoder' | 'JPEGDecoder' }> = {
  '1.2.840.10008.1.2.4.80': { codec: 'charls', decoder: 'JpegLSDecoder' },
  '1.2.840.10008.1.2.4.81': { codec: 'charls', decoder: 'JpegLSDecoder' },
  '1.2.840.10008.1.2.4.90': { codec: 'openjpeg', decoder: 'J2KDecoder' },
  '1.2.840.10008.1.2.4.91': { codec: 'openjpeg', decoder: 'J2KDecoder' },
  '1.2.840.10008.1.2.4.50': { codec: 'libjpeg-turbo', decoder: 'JPEGDecoder' },
};

const RLE_LOSSLESS = '1.2.840.10008.1.2.5';

/**
 * DICOM RLE (PS3.5 Annex G): a 64-byte header of segment offsets, one PackBits segment per byte plane, most
 * significant plane first. No codec package on the npm registry decodes it on its own, and the format is a
 * page of the standard; answers the samples big-endian.
 */
export function decodeRle(encoded: Buffer, pixels: number, bits: number): Uint8Array {
  if (encoded.length < 64) throw new PixelDecodeError('RLE data without its 64-byte header');
  const segments = encoded.readUInt32LE(0);
  const bytesPerSample = bits / 8;
  if (segments !== bytesPerSample) throw new PixelDecodeError(`RLE with ${segments} segments for ${bits}-bit single-sample pixels`);
  const out = new Uint8Array(pixels * bytesPerSample);
  for (let s = 0; s < segments; s++) {
    const start = encoded.readUInt32LE(4 + 4 * s);
    const end = s + 1 < segments ? encoded.readUInt32LE(8 + 4 * s) : encoded.length;
    if (start < 64 || end > encoded.length || start > end) throw new PixelDecodeError('RLE segment offsets point outside the data');
    let i = start;
    let p = 0;
    while (i < end && p < pixels) {
      const n = (encoded[i++] << 24) >> 24; // the header byte as int8
      if (n >= 0) {
        for (let k = 0; k <= n && p < pixels && i < end; k++) out[p++ * bytesPerSample + s] = encoded[i++];
      } else if (n !== -128) {
        const value = encoded[i++];
        for (let k = 0; k < 1 - n && p < pixels; k++) out[p++ * bytesPerSample + s] = value;
      }
    }
    if (p !== pixels) throw new PixelDecodeError(`RLE segment ${s + 1} holds ${p} of ${pixels} samples`);
  }
  return out;
}

/** JPEG lossless, non-hierarchical (process 14), and its first-order-prediction variant. */
const JPEG_LOSSLESS = new Set(['1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.70']);

const modules = new Map<CodecName, Promise<CornerstoneCodecModule>>();
/** The WASM codecs load once per process (each instantiation compiles the module). */
async function codec(name: CodecName): Promise<CornerstoneCodecModule> {
  let m = modules.get(name);
  if (!m) {
    m =
      name === 'charls'
        ? import('@cornerstonejs/codec-charls/decodewasmjs').then((x) => x.default())
        : name === 'openjpeg'
          ? import('@cornerstonejs/codec-openjpeg/decodewasmjs').then((x) => x.default())
          : import('@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs').then((x) => x.default());
    modules.set(name, m);
  }
  return m;
}

const PIXEL_REPRESENTATION = tag(0x0028, 0x0103);
const RESCALE_SLOPE = tag(0x0028, 0x1053);
const RESCALE_INTERCEPT = tag(0x0028, 0x1052);

/** The compressed bytes of one frame: fragments after the offset table, one frame per fragment when several. */
export function encodedFrame(fragments: Buffer[], frame: number, frames: number): Buffer {
  const data = fragments.slice(1);
  if (frames === 1) return Buffer.concat(data);
  if (data.length !== frames) throw new PixelDecodeError(`${frames} frames in ${data.length} fragments: multi-fragment frames are not supported yet`);
  return data[frame];
}

/**
 * Decodes one frame of a stored object to modality values: native pixel data in either byte order, signed or
 * unsigned, 8 or 16 bits; JPEG-LS, JPEG 2000 and JPEG baseline through the WASM codecs of the npm registry;
 * JPEG lossless through jpeg-lossless-decoder-js; RLE by decodeRle. Undecodable data throws PixelDecodeError
 * (a job counts it as a failed image, with the reason).
 */
export async function decodeFrame(file: Part10File, frame: number): Promise<Frame> {
  const { dataset, transferSyntax } = file;
  const le = transferSyntax.littleEndian;
  const height = uintOf(dataset, TAGS.rows, le) ?? 0;
  const width = uintOf(dataset, TAGS.columns, le) ?? 0;
  const bits = uintOf(dataset, TAGS.bitsAllocated, le) ?? 16;
  const samples = uintOf(dataset, TAGS.samplesPerPixel, le) ?? 1;
  const frames = Number.parseInt(textOf(dataset, TAGS.numberOfFrames) ?? '1', 10) || 1;
  const signed = (uintOf(dataset, PIXEL_REPRESENTATION, le) ?? 0) === 1;
  const slope = Number(textOf(dataset, RESCALE_SLOPE) ?? '1') || 1;
  const intercept = Number(textOf(dataset, RESCALE_INTERCEPT) ?? '0') || 0;
  if (samples !== 1) throw new PixelDecodeError('Only single-sample (grayscale) images are supported');
  if (frame < 0 || frame >= frames) throw new PixelDecodeError(`Frame ${frame} does not exist (${frames} frames)`);
  const pixelData = dataset.get(TAGS.pixelData);
  const n = width * height;
  let raw: Uint8Array;
  let rawBits = bits;
  let rawLittleEndian = le;
  if (!transferSyntax.encapsulated) {
    const bytes = pixelData?.bytes;
    if (!bytes) throw new PixelDecodeError('No native pixel data');
    const frameBytes = (n * bits) / 8;
    raw = bytes.subarray(frame * frameBytes, (frame + 1) * frameBytes);
  } else {
    if (transferSyntax.uid === RLE_LOSSLESS && pixelData?.fragments) {
      raw = decodeRle(encodedFrame(pixelData.fragments, frame, frames), n, bits);
      return toValues(raw, bits, false, signed, slope, intercept, width, height);
    }
    if (JPEG_LOSSLESS.has(transferSyntax.uid) && pixelData?.fragments) {
      // Pure JavaScript (the decoder cornerstone uses): no WASM codec covers process 14.
      const encoded = encodedFrame(pixelData.fragments, frame, frames);
      let samples: Uint8Array | Uint16Array;
      try {
        samples = new JpegLosslessDecoder().decode(
          encoded.buffer.slice(encoded.byteOffset, encoded.byteOffset + encoded.length) as ArrayBuffer,
          0,
          encoded.length,
        );
      } catch (error) {
        throw new PixelDecodeError(`${transferSyntax.name} data does not decode: ${String(error).slice(0, 200)}`);
      }
      if (samples.length !== n) throw new PixelDecodeError(`The codestream holds ${samples.length} samples; the header says ${n}`);
      raw = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
      rawBits = samples instanceof Uint16Array ? 16 : 8;
      rawLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
      return toValues(raw, rawBits, rawLittleEndian, signed, slope, intercept, width, height);
    }
    const spec = CODEC_OF[transferSyntax.uid];
    if (!spec || !pixelData?.fragments) throw new PixelDecodeError(`No decoder for ${transferSyntax.name} yet`);
    const decoder = new (await codec(spec.codec))[spec.decoder]();
    try {
      const encoded = encodedFrame(pixelData.fragments, frame, frames);
      decoder.getEncodedBuffer(encoded.length).set(encoded);
      decoder.decode();
      const info = decoder.getFrameInfo();
      if (info.width !== width || info.height !== height || info.componentCount !== 1) {
        throw new PixelDecodeError(`The codestream is ${info.width}x${info.height}x${info.componentCount}; the header says ${width}x${height}x1`);
      }
      raw = Uint8Array.from(decoder.getDecodedBuffer());
      rawBits = info.bitsPerSample > 8 ? 16 : 8;
      rawLittleEndian = true;
    } catch (error) {
      if (error instanceof PixelDecodeError) throw error;
      throw new PixelDecodeError(`${transferSyntax.name} data does not decode: ${String(error).slice(0, 200)}`);
    } finally {
      decoder.delete?.();
    }
  }
  return toValues(raw, rawBits, rawLittleEndian, signed, slope, intercept, width, height);
}

/** Stored samples to modality values: byte order, sign and the rescale slope and intercept applied. */
function toValues(
  raw: Uint8Array,
  bits: number,
  littleEndian: boolean,
  signed: boolean,
  slope: number,
  intercept: number,
  width: number,
  height: number,
): Frame {
  const n = width * height;
  const values = new Float32Array(n);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (raw.byteLength < (n * bits) / 8) throw new PixelDecodeError('The frame holds fewer bytes than its geometry needs');
  for (let i = 0; i < n; i++) {
    const stored =
      bits === 8 ? (signed ? view.getInt8(i) : view.getUint8(i)) : signed ? view.getInt16(2 * i, littleEndian) : view.getUint16(2 * i, littleEndian);
    values[i] = stored * slope + intercept;
  }
  return { width, height, values };
}

export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The model's input for one joint: the region cropped, windowed (or min-max scaled) to 0..1, resized
 * bilinearly to the manifest's size, then normalised: (v - mean) / std. Row-major, one channel.
 */
export function preprocess(frame: Frame, region: Region, spec: Preprocessing): Float32Array {
  const [outH, outW] = spec.resize;
  if (region.x + region.width > frame.width || region.y + region.height > frame.height) throw new PixelDecodeError('The region lies outside the frame');
  let low: number;
  let high: number;
  if (spec.window) {
    low = spec.window.center - spec.window.width / 2;
    high = spec.window.center + spec.window.width / 2;
  } else {
    low = Infinity;
    high = -Infinity;
    for (let y = region.y; y < region.y + region.height; y++) {
      for (let x = region.x; x < region.x + region.width; x++) {
        const v = frame.values[y * frame.width + x];
        if (v < low) low = v;
        if (v > high) high = v;
      }
    }
  }
  const span = high > low ? high - low : 1;
  const at = (x: number, y: number) => Math.min(1, Math.max(0, (frame.values[(region.y + y) * frame.width + region.x + x] - low) / span));
  const out = new Float32Array(outH * outW);
  for (let oy = 0; oy < outH; oy++) {
    // Pixel-centre alignment, as common image resizers do.
    const sy = Math.min(region.height - 1, Math.max(0, ((oy + 0.5) * region.height) / outH - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(region.height - 1, y0 + 1);
    const fy = sy - y0;
    for (let ox = 0; ox < outW; ox++) {
      const sx = Math.min(region.width - 1, Math.max(0, ((ox + 0.5) * region.width) / outW - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(region.width - 1, x0 + 1);
      const fx = sx - x0;
      const v = (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) + (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
      out[oy * outW + ox] = (v - spec.normalize.mean) / spec.normalize.std;
    }
  }
  return out;
}
