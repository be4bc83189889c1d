import { textElement, type DicomDataset, type DicomElement } from '../dicom/dataset';
import { tag, TAGS } from '../dicom/dictionary';
import { EXPLICIT_VR_LITTLE_ENDIAN, TRANSFER_SYNTAXES } from '../dicom/transfer-syntax';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../dicom/uid';
import { writePart10 } from '../dicom/writer';
import { WEISHAUPT_FEATURES } from '../domain';

/**
 * Synthetic facet-joint phantoms: axial-like slices holding a right and a left facet joint whose five Weishaupt
 * features are drawn with known grades, for the demo cohort and for training and testing the reference model
 * (model-registry/train). Pure functions of a seeded PRNG: the same seed gives the same pixels on every machine.
 *
 * Each joint, in its own frame (u across the joint, v along it): the superior and inferior articular processes
 * as curved bone plates (cortical rim brighter than medullary bone) facing each other across the joint space.
 * - JOINT_SPACE_NARROWING: the gap between the articular surfaces, 3-6.5 px at grade 0, 0.8-2.6 px at grade 1.
 * - HYPERTROPHY: the plates' thickness, 9 px + 3.2 px per grade (and their length, 1 px per grade).
 * - OSTEOPHYTES: triangular spurs at the joint margins: 1, 2 or 3 of them, longer with each grade.
 * - EROSION: bites out of the articular surfaces: 2-3 shallow ones at grade 1, 4-6 deep ones at grade 2.
 * - SUBCHONDRAL_CYSTS: 1-3 small round fluid lesions in the bone just under an articular surface.
 * Every slice also varies in rotation, scale, position within the region, intensities, blur and noise.
 */

/**
 * Math's functions as module bindings: inside a vm context (jest) every global lookup is an interceptor call,
 * which made the per-pixel loops about 60 times slower than under plain Node.
 */
const { PI, abs, ceil, cos, exp, floor, imul, log, max, min, round, sin, sqrt } = Math;

/** Deterministic PRNG (mulberry32): phantoms and the demo cohort are the same on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const PHANTOM_FEATURES = ['JOINT_SPACE_NARROWING', 'OSTEOPHYTES', 'HYPERTROPHY', 'EROSION', 'SUBCHONDRAL_CYSTS'] as const;
export type FeatureCode = (typeof PHANTOM_FEATURES)[number];
export type JointGrades = Record<FeatureCode, number>;
export type PhantomModality = 'XR' | 'CT' | 'MR';
export type JointSide = 'LEFT' | 'RIGHT';

/** Number of grades per feature, from the Weishaupt scheme. */
export const GRADE_COUNTS: JointGrades = Object.fromEntries(
  PHANTOM_FEATURES.map((code) => [code, WEISHAUPT_FEATURES.find((f) => f.code === code)?.grades.length ?? 0]),
) as JointGrades;

export interface Roi {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface FacetSlice {
  modality: PhantomModality;
  rows: number;
  columns: number;
  /** Stored values, row-major: unsigned 12-bit for XR and MR, signed 16-bit for CT (HU = stored + intercept). */
  pixels: Uint16Array | Int16Array;
  bitsStored: number;
  pixelRepresentation: 0 | 1;
  rescaleSlope: number;
  rescaleIntercept: number;
  /** Display window hint, in modality values. */
  window: { center: number; width: number };
  /** The region a coordinator would draw around each joint. LEFT is the patient's left: the image's right. */
  rois: { LEFT: Roi; RIGHT: Roi };
  /** Pixel spacing in mm (row, column): nominal, for the DICOM header. */
  pixelSpacing: [number, number];
}

const uniform = (random: () => number, low: number, high: number) => low + (high - low) * random();
const pick = <T>(random: () => number, items: readonly T[]): T => items[min(items.length - 1, floor(random() * items.length))];
/** Standard normal (Box-Muller). */
const gaussian = (random: () => number) => sqrt(-2 * log(1 - random())) * cos(2 * PI * random());

/**
 * One joint's grades, moderately correlated through a severity latent as in real degeneration: each feature's
 * latent is half the joint's severity, half its own draw, cut at the quantiles that make grades about equally
 * frequent. Each feature still varies on its own (the latents correlate at about 0.5).
 */
export function sampleJointGrades(random: () => number, severity = random()): JointGrades {
  // Quantiles of the mean of two uniforms (a triangular distribution on 0..1).
  const cuts: Record<number, number[]> = { 2: [0.5], 3: [0.408, 0.592], 4: [0.354, 0.5, 0.646] };
  const grades = {} as JointGrades;
  for (const code of PHANTOM_FEATURES) {
    const z = 0.5 * severity + 0.5 * random();
    grades[code] = cuts[GRADE_COUNTS[code]].filter((c) => z >= c).length;
  }
  return grades;
}

/** Tissue labels of the supersampled label map. */
const SOFT = 0;
const FLUID = 1;
const BONE = 2;
const CYST = 3;

interface Spur {
  bu: number;
  bv: number;
  du: number;
  dv: number;
  length: number;
  halfBase: number;
}

interface Notch {
  /** -1: superior process (u < 0), +1: inferior process. */
  side: number;
  v: number;
  depth: number;
  halfWidth: number;
}

interface Circle {
  u: number;
  v: number;
  r: number;
}

/** A joint's geometry in its own frame (pixels at scale 1), drawn from its grades. */
interface JointShape {
  cx: number;
  cy: number;
  cos: number;
  sin: number;
  scale: number;
  mirror: boolean;
  halfGap: number;
  halfLength: number;
  curvature: number;
  thickness: [number, number];
  notches: Notch[];
  ripple: [number, number, number];
  spurs: Spur[];
  cysts: Circle[];
  stalks: Spur[];
}

function jointShape(grades: JointGrades, cx: number, cy: number, mirror: boolean, random: () => number): JointShape {
  const angle = ((55 + uniform(random, -7, 7)) * PI) / 180;
  const scale = uniform(random, 0.9, 1.1);
  const hyp = grades.HYPERTROPHY;
  const halfGap = (grades.JOINT_SPACE_NARROWING >= 1 ? uniform(random, 0.8, 2.6) : uniform(random, 3.0, 6.5)) / 2;
  const halfLength = 20 + hyp + uniform(random, -1.5, 1.5);
  const thickness: [number, number] = [0, 1].map(() => 9 + 3.2 * hyp + uniform(random, -1.2, 1.2)) as [number, number];
  const notches: Notch[] = [];
  const erosion = grades.EROSION;
  const notchCount = erosion === 0 ? 0 : erosion === 1 ? 2 + floor(random() * 2) : 4 + floor(random() * 3);
  for (let i = 0; i < notchCount; i++) {
    notches.push({
      side: random() < 0.5 ? -1 : 1,
      v: uniform(random, -0.8, 0.8) * halfLength,
      depth: erosion === 1 ? uniform(random, 1.8, 3.0) : uniform(random, 3.5, 5.5),
      halfWidth: erosion === 1 ? uniform(random, 2.0, 3.5) : uniform(random, 2.5, 4.5),
    });
  }
  const spurs: Spur[] = [];
  const osteophytes = grades.OSTEOPHYTES;
  const corners = [
    [-1, -1],
    [-1, 1],
    [1, -1],
    [1, 1],
  ];
  for (let i = 0; i < osteophytes; i++) {
    const [side, end] = corners.splice(floor(random() * corners.length), 1)[0];
    const tilt = (uniform(random, 15, 40) * PI) / 180;
    const length = osteophytes === 1 ? uniform(random, 3.5, 5.5) : osteophytes === 2 ? uniform(random, 6, 8.5) : uniform(random, 9, 12);
    const halfBase = (osteophytes === 1 ? uniform(random, 3, 4) : osteophytes === 2 ? uniform(random, 4, 5.5) : uniform(random, 5, 7)) / 2;
    const t = thickness[side < 0 ? 0 : 1];
    spurs.push({ bu: side * (halfGap + 0.27 * t), bv: end * 0.9 * halfLength, du: side * sin(tilt), dv: end * cos(tilt), length, halfBase });
  }
  const cysts: Circle[] = [];
  if (grades.SUBCHONDRAL_CYSTS >= 1) {
    const count = pick(random, [1, 1, 1, 2, 2, 3]);
    for (let i = 0; i < count; i++) {
      const side = random() < 0.5 ? -1 : 1;
      const r = uniform(random, 1.8, 3.2);
      cysts.push({ u: side * (halfGap + r + 1.5 + uniform(random, 0, 1.5)), v: uniform(random, -0.6, 0.6) * halfLength, r });
    }
  }
  // The pedicle and lamina the two processes continue into: context, partly outside the region.
  const stalks: Spur[] = [0, 1].map((i) => {
    const side = i === 0 ? -1 : 1;
    const t = thickness[i];
    const a = (uniform(random, 30, 45) * PI) / 180;
    return { bu: side * (halfGap + 0.5 * t), bv: -side * 0.3 * halfLength, du: side * cos(a), dv: -side * sin(a), length: 45, halfBase: 0.3 * t + 2 };
  });
  return {
    cx,
    cy,
    cos: cos(angle),
    sin: sin(angle),
    scale,
    mirror,
    halfGap,
    halfLength,
    curvature: uniform(random, 0.004, 0.012),
    thickness,
    notches,
    ripple: [uniform(random, 0.15, 0.4), uniform(random, 0.3, 0.7), uniform(random, 0, 2 * PI)],
    spurs,
    cysts,
    stalks,
  };
}

/** Is (u, v) inside a spur: a triangle from its base point along its direction, tapering to a tip. */
function inSpur(s: Spur, u: number, v: number, taper: boolean): boolean {
  const pu = u - s.bu;
  const pv = v - s.bv;
  const a = pu * s.du + pv * s.dv;
  if (a < -s.halfBase || a > s.length) return false;
  const b = abs(pu * s.dv - pv * s.du);
  return b <= (taper ? s.halfBase * min(1, 1 - a / s.length) : s.halfBase);
}

/** The label of a point (slice pixels) for one joint, or -1 when the joint does not reach it. */
function jointLabel(j: JointShape, x: number, y: number): number {
  let dx = x - j.cx;
  const dy = y - j.cy;
  if (dx * dx + dy * dy > 80 * 80 * j.scale * j.scale) return -1;
  if (j.mirror) dx = -dx;
  const u0 = (dx * j.cos + dy * j.sin) / j.scale;
  const v = (-dx * j.sin + dy * j.cos) / j.scale;
  // The articular surfaces are curved; u measured from the joint's mid-surface.
  const u = u0 - j.curvature * v * v;
  const side = u < 0 ? -1 : 1;
  const au = abs(u);
  const t = j.thickness[side < 0 ? 0 : 1];
  const inCavity = abs(v) <= j.halfLength;
  let label = -1;
  if (inCavity) {
    const rel = v / j.halfLength;
    const profile = sqrt(max(0, 1 - rel ** 4));
    let bite = j.ripple[0] * sin(j.ripple[1] * v + j.ripple[2] + side);
    for (const n of j.notches) {
      if (n.side !== side) continue;
      const d = (v - n.v) / n.halfWidth;
      if (d > -1 && d < 1) bite += n.depth * (1 - d * d);
    }
    const surface = j.halfGap + max(0, bite);
    if (au < surface) label = FLUID;
    else if (au <= j.halfGap + t * profile) {
      label = BONE;
      for (const c of j.cysts) {
        const cu = u - c.u;
        const cv = v - c.v;
        if (cu * cu + cv * cv <= c.r * c.r) label = CYST;
      }
    }
  }
  if (label === -1 || label === FLUID) {
    for (const s of j.spurs) if (inSpur(s, u, v, true)) return BONE;
  }
  if (label === -1) {
    for (const s of j.stalks) if (inSpur(s, u, v, false)) return BONE;
    // The capsule's recesses just beyond the joint's ends hold a little fluid.
    if (au < j.halfGap + 0.8 && abs(v) <= j.halfLength + 2) return FLUID;
  }
  return label;
}

/** Separable box mean of a mask (radius r), for the cortical rim: bone with non-bone within r. */
function boxMean(mask: Float32Array, width: number, height: number, r: number): Float32Array {
  const tmp = new Float32Array(mask.length);
  const out = new Float32Array(mask.length);
  const n = 2 * r + 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += mask[y * width + min(width - 1, max(0, x + k))];
      tmp[y * width + x] = s / n;
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += tmp[min(height - 1, max(0, y + k)) * width + x];
      out[y * width + x] = s / n;
    }
  }
  return out;
}

function gaussianBlur(image: Float32Array, width: number, height: number, sigma: number): Float32Array {
  const radius = max(1, ceil(3 * sigma));
  const kernel = new Float32Array(2 * radius + 1);
  let total = 0;
  for (let k = -radius; k <= radius; k++) total += kernel[k + radius] = exp(-(k * k) / (2 * sigma * sigma));
  for (let k = 0; k < kernel.length; k++) kernel[k] /= total;
  const tmp = new Float32Array(image.length);
  const out = new Float32Array(image.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += kernel[k + radius] * image[y * width + min(width - 1, max(0, x + k))];
      tmp[y * width + x] = s;
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += kernel[k + radius] * tmp[min(height - 1, max(0, y + k)) * width + x];
      out[y * width + x] = s;
    }
  }
  return out;
}

/** Tissue values of one image, in modality units, and how it is blurred and made noisy. */
interface Appearance {
  soft: number;
  fat: number;
  fluid: number;
  cortical: number;
  medullary: number;
  cyst: number;
  /** Relative trabecular texture of medullary bone. */
  texture: number;
  blur: number;
  noise: number;
  /** Smooth structures superimposed on the whole image (projection radiographs), amplitude in modality units. */
  overlay: number;
}

function appearance(modality: PhantomModality, random: () => number): Appearance {
  const u = (low: number, high: number) => uniform(random, low, high);
  switch (modality) {
    case 'CT': // Hounsfield units, a thin axial bone-kernel slice.
      return {
        soft: u(30, 55),
        fat: u(-110, -80),
        fluid: u(15, 45),
        cortical: u(950, 1250),
        medullary: u(250, 380),
        cyst: u(5, 30),
        texture: 0.15,
        blur: u(0.5, 0.9),
        noise: u(15, 35),
        overlay: 0,
      };
    case 'MR': // T2-weighted: cortex dark, marrow intermediate, fluid bright.
      return {
        soft: u(550, 700),
        fat: u(1300, 1700),
        fluid: u(2300, 2800),
        cortical: u(80, 200),
        medullary: u(850, 1150),
        cyst: u(2000, 2500),
        texture: 0.12,
        blur: u(0.6, 1.0),
        noise: u(40, 80),
        overlay: 0,
      };
    case 'XR': // A projection: bone over soft tissue, low contrast, more blur and noise, overlapping anatomy.
      return {
        soft: u(950, 1050),
        fat: u(880, 940),
        fluid: u(930, 1000),
        cortical: u(1500, 1650),
        medullary: u(1330, 1450),
        cyst: u(1150, 1300),
        texture: 0.05,
        blur: u(1.4, 2.0),
        noise: u(40, 65),
        overlay: u(150, 320),
      };
  }
}

const SLICE_COLUMNS = 256;
const SLICE_ROWS = 128;
/** Label map supersampling per axis. */
const SS = 2;

/**
 * One axial-like slice (256 columns x 128 rows) with the patient's right joint on the image's left and the left
 * joint on the image's right, each inside its region (84-96 px square, the joint off-centre by up to 5 px).
 */
export function drawFacetSlice(modality: PhantomModality, left: JointGrades, right: JointGrades, random: () => number): FacetSlice {
  const look = appearance(modality, random);
  const rois = {} as { LEFT: Roi; RIGHT: Roi };
  const joints: JointShape[] = [];
  for (const side of ['RIGHT', 'LEFT'] as const) {
    const size = round(uniform(random, 84, 96));
    const centerX = (side === 'RIGHT' ? 64 : 192) + uniform(random, -6, 6);
    const centerY = 64 + uniform(random, -8, 8);
    const x = round(min(SLICE_COLUMNS - size, max(0, centerX - size / 2)));
    const y = round(min(SLICE_ROWS - size, max(0, centerY - size / 2)));
    rois[side] = { x, y, width: size, height: size };
    const jx = x + size / 2 + uniform(random, -5, 5);
    const jy = y + size / 2 + uniform(random, -5, 5);
    joints.push(jointShape(side === 'LEFT' ? left : right, jx, jy, side === 'LEFT', random));
  }
  const W = SLICE_COLUMNS * SS;
  const H = SLICE_ROWS * SS;
  const labels = new Uint8Array(W * H);
  const bone = new Float32Array(W * H);
  for (let sy = 0; sy < H; sy++) {
    for (let sx = 0; sx < W; sx++) {
      const x = (sx + 0.5) / SS;
      const y = (sy + 0.5) / SS;
      let label = SOFT;
      for (const j of joints) {
        const l = jointLabel(j, x, y);
        if (l > label) label = l;
      }
      labels[sy * W + sx] = label;
      // Cysts are holes in the bone: their rim becomes cortex-like, as the sclerotic rim of a real cyst.
      if (label === BONE) bone[sy * W + sx] = 1;
    }
  }
  const near = boxMean(bone, W, H, 3);
  // Fat planes of the paraspinal soft tissue: a smooth random field.
  const waves = Array.from({ length: 4 }, () => ({ fx: uniform(random, 0.01, 0.05), fy: uniform(random, 0.01, 0.05), phase: uniform(random, 0, 2 * PI) }));
  const fine = new Float32Array(W * H);
  for (let i = 0; i < W * H; i++) {
    const sx = i % W;
    const sy = (i - sx) / W;
    const x = sx / SS;
    const y = sy / SS;
    let value: number;
    switch (labels[i]) {
      case FLUID:
        value = look.fluid;
        break;
      case CYST:
        value = look.cyst;
        break;
      case BONE:
        value = near[i] < 0.999 ? look.cortical : look.medullary * (1 + look.texture * gaussian(random));
        break;
      default: {
        let f = 0;
        for (const w of waves) f += sin(w.fx * x * 2 * PI + w.fy * y * 2 * PI + w.phase);
        const fatFraction = min(1, max(0, f / 4 + 0.1));
        value = look.soft + fatFraction * (look.fat - look.soft);
      }
    }
    fine[i] = value;
  }
  // Down to the slice's pixels (area average), then the modality's blur.
  const coarse = new Float32Array(SLICE_COLUMNS * SLICE_ROWS);
  for (let y = 0; y < SLICE_ROWS; y++) {
    for (let x = 0; x < SLICE_COLUMNS; x++) {
      let s = 0;
      for (let dy = 0; dy < SS; dy++) for (let dx = 0; dx < SS; dx++) s += fine[(y * SS + dy) * W + x * SS + dx];
      coarse[y * SLICE_COLUMNS + x] = s / (SS * SS);
    }
  }
  const blurred = gaussianBlur(coarse, SLICE_COLUMNS, SLICE_ROWS, look.blur);
  // Overlapping anatomy (XR) and a smooth intensity bias (MR coil sensitivity), then noise and gain.
  const blobs = Array.from({ length: look.overlay > 0 ? 4 : 0 }, () => ({
    x: uniform(random, 0, SLICE_COLUMNS),
    y: uniform(random, 0, SLICE_ROWS),
    s: uniform(random, 15, 45),
    a: uniform(random, -1, 1) * look.overlay,
  }));
  const bias = modality === 'MR' ? { gx: uniform(random, -0.15, 0.15) / SLICE_COLUMNS, gy: uniform(random, -0.15, 0.15) / SLICE_ROWS } : { gx: 0, gy: 0 };
  const gain = modality === 'CT' ? 1 : uniform(random, 0.85, 1.15);
  const offset = modality === 'XR' ? uniform(random, -150, 150) : 0;
  const n = SLICE_COLUMNS * SLICE_ROWS;
  const ct = modality === 'CT';
  const pixels = ct ? new Int16Array(n) : new Uint16Array(n);
  const intercept = ct ? -1024 : 0;
  for (let i = 0; i < n; i++) {
    const x = i % SLICE_COLUMNS;
    const y = (i - x) / SLICE_COLUMNS;
    let v = blurred[i];
    for (const b of blobs) v += b.a * exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.s * b.s));
    if (!ct) v = v * gain * (1 + bias.gx * (x - SLICE_COLUMNS / 2) + bias.gy * (y - SLICE_ROWS / 2)) + offset;
    v += look.noise * gaussian(random);
    const stored = round(v - intercept);
    pixels[i] = ct ? min(32767, max(-32768, stored)) : min(4095, max(0, stored));
  }
  const window = modality === 'CT' ? { center: 500, width: 1600 } : modality === 'MR' ? { center: 1400, width: 3000 } : { center: 1300, width: 1800 };
  return {
    modality,
    rows: SLICE_ROWS,
    columns: SLICE_COLUMNS,
    pixels,
    bitsStored: ct ? 16 : 12,
    pixelRepresentation: ct ? 1 : 0,
    rescaleSlope: 1,
    rescaleIntercept: intercept,
    window,
    rois,
    pixelSpacing: modality === 'XR' ? [0.2, 0.2] : [0.3, 0.3],
  };
}

/** Facet's UID root for synthetic objects. */
export const PHANTOM_UID_ROOT = '1.2.826.0.1.3680043.9.7134';

const SOP_CLASS: Record<PhantomModality, string> = {
  XR: '1.2.840.10008.5.1.4.1.1.1.1', // Digital X-Ray Image Storage - For Presentation
  CT: '1.2.840.10008.5.1.4.1.1.2',
  MR: '1.2.840.10008.5.1.4.1.1.4',
};
const DICOM_MODALITY: Record<PhantomModality, string> = { XR: 'DX', CT: 'CT', MR: 'MR' };

export interface PhantomObject {
  patientId: string;
  patientName: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  seriesNumber: number;
  instanceNumber: number;
  /** DICOM DA, YYYYMMDD. */
  studyDate?: string;
  studyDescription?: string;
  seriesDescription?: string;
  slice: FacetSlice;
}

const us = (t: number, value: number): DicomElement => {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16LE(value);
  return { tag: t, vr: 'US', bytes };
};

/** Decimal string: at most 16 characters, as DS allows. */
const ds = (value: number) => String(Number(value.toPrecision(10)));

/**
 * A phantom slice as a DICOM Part 10 file in Explicit VR Little Endian: the image pixel module (16 bits
 * allocated, MONOCHROME2, rescale slope and intercept, window hint) and the identifiers ingest needs.
 */
export function phantomPart10(object: PhantomObject): Buffer {
  const { slice } = object;
  const sopClass = SOP_CLASS[slice.modality];
  const transferSyntax = TRANSFER_SYNTAXES.get(EXPLICIT_VR_LITTLE_ENDIAN);
  if (!transferSyntax) throw new Error('Explicit VR Little Endian is not registered');
  const meta: DicomDataset = new Map();
  const set = (ds0: DicomDataset, e: DicomElement) => ds0.set(e.tag, e);
  set(meta, { tag: TAGS.fileMetaVersion, vr: 'OB', bytes: Buffer.from([0, 1]) });
  set(meta, textElement(TAGS.mediaStorageSopClassUid, 'UI', sopClass));
  set(meta, textElement(TAGS.mediaStorageSopInstanceUid, 'UI', object.sopInstanceUid));
  set(meta, textElement(TAGS.transferSyntaxUid, 'UI', EXPLICIT_VR_LITTLE_ENDIAN));
  set(meta, textElement(TAGS.implementationClassUid, 'UI', IMPLEMENTATION_CLASS_UID));
  set(meta, textElement(TAGS.implementationVersionName, 'SH', IMPLEMENTATION_VERSION_NAME));
  const d: DicomDataset = new Map();
  const text = (t: number, vr: string, value: string) => set(d, textElement(t, vr, value));
  const studyDate = object.studyDate ?? '20240101';
  text(TAGS.specificCharacterSet, 'CS', 'ISO_IR 100');
  text(tag(0x0008, 0x0008), 'CS', 'DERIVED\\SECONDARY');
  text(TAGS.sopClassUid, 'UI', sopClass);
  text(TAGS.sopInstanceUid, 'UI', object.sopInstanceUid);
  text(TAGS.studyDate, 'DA', studyDate);
  text(tag(0x0008, 0x0021), 'DA', studyDate);
  text(tag(0x0008, 0x0030), 'TM', '090000');
  text(tag(0x0008, 0x0050), 'SH', '');
  text(TAGS.modality, 'CS', DICOM_MODALITY[slice.modality]);
  text(tag(0x0008, 0x0070), 'LO', 'Facet phantom');
  text(tag(0x0008, 0x0090), 'PN', '');
  text(TAGS.studyDescription, 'LO', object.studyDescription ?? 'Lumbar facet joints (synthetic phantom)');
  text(TAGS.seriesDescription, 'LO', object.seriesDescription ?? `Facet phantom ${slice.modality}`);
  text(TAGS.patientName, 'PN', object.patientName);
  text(TAGS.patientId, 'LO', object.patientId);
  text(tag(0x0010, 0x0030), 'DA', '');
  text(tag(0x0010, 0x0040), 'CS', 'O');
  text(tag(0x0018, 0x0015), 'CS', 'LSPINE');
  text(TAGS.studyInstanceUid, 'UI', object.studyInstanceUid);
  text(TAGS.seriesInstanceUid, 'UI', object.seriesInstanceUid);
  text(tag(0x0020, 0x0010), 'SH', '1');
  text(TAGS.seriesNumber, 'IS', String(object.seriesNumber));
  text(TAGS.instanceNumber, 'IS', String(object.instanceNumber));
  if (slice.modality === 'XR') text(tag(0x0020, 0x0020), 'CS', 'L\\P');
  set(d, us(TAGS.samplesPerPixel, 1));
  text(TAGS.photometricInterpretation, 'CS', 'MONOCHROME2');
  set(d, us(TAGS.rows, slice.rows));
  set(d, us(TAGS.columns, slice.columns));
  text(slice.modality === 'XR' ? tag(0x0018, 0x1164) : tag(0x0028, 0x0030), 'DS', slice.pixelSpacing.map(ds).join('\\'));
  set(d, us(TAGS.bitsAllocated, 16));
  set(d, us(tag(0x0028, 0x0101), slice.bitsStored));
  set(d, us(tag(0x0028, 0x0102), slice.bitsStored - 1));
  set(d, us(tag(0x0028, 0x0103), slice.pixelRepresentation));
  text(tag(0x0028, 0x1050), 'DS', ds(slice.window.center));
  text(tag(0x0028, 0x1051), 'DS', ds(slice.window.width));
  text(tag(0x0028, 0x1052), 'DS', ds(slice.rescaleIntercept));
  text(tag(0x0028, 0x1053), 'DS', ds(slice.rescaleSlope));
  text(tag(0x0028, 0x1054), 'LO', slice.modality === 'CT' ? 'HU' : 'US');
  if (slice.modality === 'XR') text(tag(0x0008, 0x0068), 'CS', 'FOR PRESENTATION');
  const pixels = Buffer.alloc(slice.pixels.length * 2);
  for (let i = 0; i < slice.pixels.length; i++) {
    if (slice.pixelRepresentation === 1) pixels.writeInt16LE(slice.pixels[i], 2 * i);
    else pixels.writeUInt16LE(slice.pixels[i], 2 * i);
  }
  set(d, { tag: TAGS.pixelData, vr: 'OW', bytes: pixels });
  return writePart10(meta, d, transferSyntax);
}
