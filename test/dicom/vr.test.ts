import { syntheticImage } from '../helpers/synthetic-dicom';
import { isTextVr, textBytes, type DicomDataset, type DicomElement } from '../../server/dicom/dataset';
import { deidentify } from '../../server/dicom/deidentify';
import { formatTag, vrOf } from '../../server/dicom/dictionary';
import { STORED_ATTRIBUTES } from '../../server/dicom/image-object';
import table from '../../server/dicom/ps3.15-table-e1-1.json';
import { readPart10 } from '../../server/dicom/reader';
import { vrProblem } from '../../server/dicom/vr';
import { writePart10 } from '../../server/dicom/writer';
import { seededRandom } from '../../server/stats/bootstrap';
import { fixture, IDENTIFIED } from '../helpers/dicom-fixtures';
import { pick, type Random } from '../helpers/dicom-mutations';

const text = (vr: string, value: string) => vrProblem(vr, Buffer.from(value.length % 2 ? `${value}${vr === 'UI' ? '\0' : ' '}` : value, 'latin1'));

/** PS3.5 Table 6.2-1: the longest value of each text VR Facet bounds (PN: per component group). */
const MAX: Record<string, number> = { AE: 16, CS: 16, DS: 16, IS: 12, LO: 64, LT: 10240, PN: 64, SH: 16, ST: 1024, UI: 64 };
const FILLER: Record<string, string> = { AE: 'A', CS: 'A', DS: '1', IS: '1', LO: 'a', LT: 'a', PN: 'a', SH: 'a', ST: 'a', UI: '1' };

describe('vrProblem (PS3.5 Table 6.2-1)', () => {
  it.each(Object.keys(MAX))('accepts a %s value of its maximum length and refuses one character more', (vr) => {
    expect(text(vr, FILLER[vr].repeat(MAX[vr]))).toBeNull();
    expect(text(vr, FILLER[vr].repeat(MAX[vr] + 1))).toMatch(/characters/);
  });

  it.each(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT'])('refuses a NUL inside a %s value', (vr) => {
    expect(text(vr, 'AB\0CD')).not.toBeNull();
  });

  it('splits multi-valued VRs at backslashes and keeps them in LT, ST and UT', () => {
    expect(text('CS', 'ORIGINAL\\PRIMARY')).toBeNull();
    expect(text('CS', 'ORIGINAL\\ABCDEFGHIJKLMNOPQ')).toMatch(/17 characters/);
    expect(text('UI', '1.2.3\\4.5.6')).toBeNull();
    expect(text('LT', 'a\\b')).toBeNull();
    expect(text('LO', 'a'.repeat(64) + '\\b')).toBeNull();
  });

  it('holds UIDs to digits and single dots, CS to upper case, digits, space and underscore, DA to calendar form', () => {
    for (const bad of ['1.2.abc', '1..2', '.1.2', '1.2.', '1.2 3']) expect({ bad, problem: text('UI', bad) }).toEqual({ bad, problem: expect.any(String) });
    expect(text('UI', '0')).toBeNull();
    expect(text('CS', 'ct')).not.toBeNull();
    expect(text('CS', 'YBR_FULL_422')).toBeNull();
    expect(text('DA', '2024-01-17')).not.toBeNull();
    expect(text('DA', '20240117')).toBeNull();
    expect(text('IS', '+12')).toBeNull();
    expect(text('IS', '1.5')).not.toBeNull();
    expect(text('DS', '-1.5e3')).toBeNull();
    expect(text('DS', '1,5')).not.toBeNull();
  });

  it('checks binary lengths against the size of one value', () => {
    expect(vrProblem('US', Buffer.alloc(2))).toBeNull();
    expect(vrProblem('US', Buffer.alloc(4))).toBeNull(); // two values
    expect(vrProblem('FD', Buffer.alloc(2))).toMatch(/multiple of 8/);
    expect(vrProblem('UL', Buffer.alloc(6))).toMatch(/multiple of 4/);
    expect(vrProblem('OB', Buffer.alloc(3))).toMatch(/odd/);
  });

  it('knows the VR PS3.6 gives each attribute Facet records in a column (dcmjs’s dictionary as the oracle)', () => {
    for (const a of Object.values(STORED_ATTRIBUTES)) expect({ tag: formatTag(a.tag), vr: a.vr }).toEqual({ tag: formatTag(a.tag), vr: vrOf(a.tag) });
  });
});

/** A value of `vr`, valid or not, the way senders write them. */
function valueFor(vr: string, random: Random): Buffer {
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 10)).join('');
  const texts: Record<string, () => string[]> = {
    DA: () => ['20240117', '00010101', '00500615', '99991231', '2024.01.17', '20241340', 'abcd', '', '20240117-20240120', '20240117\\20230101'],
    DT: () => ['20240117101010.123456+0100', '20240117', '2024011710', '20240117abc', '20240117101010.1234567', 'junk', '99991231235959'],
    TM: () => ['101010', '101010.123', '10:10:10', ''],
    UI: () => [`1.2.${digits(5)}`, `1.2.3\\1.2.${digits(3)}`, `1.2.${'9'.repeat(58)}`, 'not.a.uid', '1.2.840.10008.5.1.4.1.1.2'],
    AS: () => ['076Y', '012M', 'old'],
    CS: () => ['ABC', 'ORIGINAL\\PRIMARY', 'lower'],
    IS: () => ['12', '-3', '99999999999'],
    DS: () => ['1.5', '-2e3'],
    PN: () => ['Doe^Jane', 'X'.repeat(64)],
  };
  if (texts[vr]) return textBytes(vr, pick(random, texts[vr]()));
  if (isTextVr(vr)) return textBytes(vr, pick(random, ['St Elsewhere', 'Jane Doe', 'x'.repeat(16), '']));
  const size = { AT: 4, FL: 4, FD: 8, OD: 8, OF: 4, OL: 4, OV: 8, SL: 4, SS: 2, SV: 8, UL: 4, US: 2, UV: 8 }[vr] ?? 2;
  return Buffer.alloc(size * pick(random, [0, 1, 2]));
}

/** Every element at any depth, as "tag hex-of-bytes", to tell what Facet wrote from what it kept. */
function elementKeys(dataset: DicomDataset, out = new Set<string>()): Set<string> {
  for (const e of dataset.values()) {
    out.add(`${e.tag} ${e.bytes?.toString('hex') ?? ''}`);
    for (const item of e.items ?? []) elementKeys(item, out);
  }
  return out;
}

function* elementsIn(dataset: DicomDataset, path = ''): Generator<[string, DicomElement]> {
  for (const e of dataset.values()) {
    yield [`${path}${formatTag(e.tag)}`, e];
    for (const [i, item] of (e.items ?? []).entries()) yield* elementsIn(item, `${path}${formatTag(e.tag)}[${i}].`);
  }
}

describe('every element Facet writes into a stored object', () => {
  const exactTags = (table as Array<{ tag: string }>)
    .map((row) => row.tag.replace(/[(),\s]/g, ''))
    .filter((hex) => /^[0-9A-Fa-f]{8}$/.test(hex))
    .map((hex) => Number.parseInt(hex, 16) >>> 0)
    // Not the command, meta and directory groups (the reader refuses them in a data set), nor pixel data.
    .filter((t) => ![0x0000, 0x0002, 0x0004, 0x7fe0].includes(t >>> 16) && vrOf(t) !== 'UN');
  const bases = [
    ...IDENTIFIED.map((name) => fixture(name)),
    syntheticImage({ frames: 3 }),
    syntheticImage({ syntax: 'implicit-le', modality: 'MR' }),
    syntheticImage({ syntax: 'deflated' }),
  ];

  it('is valid for its VR (length, characters, form), over 200 generated inputs: pseudonyms, date shifts, every PS3.15 attribute with valid and malformed values', () => {
    const random = seededRandom(63);
    for (let n = 0; n < 200; n++) {
      const original = readPart10(pick(random, bases));
      const dataset = new Map(original.dataset);
      for (let i = 0; i < 25; i++) {
        const t = pick(random, exactTags);
        const vr = vrOf(t);
        if (vr === 'SQ') {
          const inner: DicomDataset = new Map([
            [0x00080020, { tag: 0x00080020, vr: 'DA', bytes: valueFor('DA', random) }],
            [0x00081155, { tag: 0x00081155, vr: 'UI', bytes: valueFor('UI', random) }],
          ]);
          dataset.set(t, { tag: t, vr, items: [inner] });
        } else {
          dataset.set(t, { tag: t, vr, bytes: valueFor(vr, random) });
        }
      }
      const input = { ...original, dataset };
      const pseudonym = Array.from({ length: 1 + Math.floor(random() * 64) }, () => pick(random, [...'ABCXYZabc0189_-'])).join('');
      const dateShiftDays = pick(random, [-1, -365, -3650, -137, -Math.floor(random() * 3650)]);
      const clean = deidentify(input, { uidKey: Buffer.from(`key ${n}`), pseudonym, dateShiftDays });
      const stored = readPart10(writePart10(clean.meta, clean.dataset, clean.transferSyntax));
      const kept = elementKeys(input.dataset);
      const context = { n, pseudonym, dateShiftDays };
      for (const [where, e] of elementsIn(stored.meta)) {
        expect({ ...context, where, problem: e.bytes ? vrProblem(e.vr, e.bytes) : null }).toEqual({ ...context, where, problem: null });
      }
      for (const [where, e] of elementsIn(stored.dataset)) {
        if (!e.bytes || kept.has(`${e.tag} ${e.bytes.toString('hex')}`)) continue;
        const value = e.bytes.toString('latin1');
        expect({ ...context, where, vr: e.vr, value, problem: vrProblem(e.vr, e.bytes) }).toEqual({ ...context, where, vr: e.vr, value, problem: null });
      }
    }
  });
});
