import { textElement, type DicomDataset, type DicomElement } from '../../server/dicom/dataset';
import { toDicomJson } from '../../server/dicom/dicom-json';
import { tag, TAGS } from '../../server/dicom/dictionary';
import type { Part10File } from '../../server/dicom/reader';
import { TRANSFER_SYNTAXES, type TransferSyntax } from '../../server/dicom/transfer-syntax';
import { Gen } from '../federation/generators';

const EXPLICIT_LE = TRANSFER_SYNTAXES.get('1.2.840.10008.1.2.1') as TransferSyntax;
const EXPLICIT_BE = TRANSFER_SYNTAXES.get('1.2.840.10008.1.2.2') as TransferSyntax;
const file = (elements: DicomElement[], transferSyntax = EXPLICIT_LE): Part10File => ({
  meta: new Map(),
  dataset: new Map(elements.map((e) => [e.tag, e])) as DicomDataset,
  transferSyntax,
});
const binary = (t: number, vr: string, bytes: Buffer): DicomElement => ({ tag: t, vr, bytes });

describe('toDicomJson (PS3.18 F.2)', () => {
  it('answers each VR class in its JSON form', () => {
    const us = Buffer.alloc(6);
    [1, 2, 65535].forEach((v, i) => us.writeUInt16LE(v, 2 * i));
    const fd = Buffer.alloc(8);
    fd.writeDoubleLE(-0.25);
    const at = Buffer.from([0x10, 0x00, 0x20, 0x00]);
    const json = toDicomJson(
      file([
        textElement(TAGS.patientName, 'PN', 'Doe^Jane=DOE^J=doe^jane'),
        textElement(tag(0x0028, 0x1050), 'DS', '40\\-1.5e2'),
        textElement(TAGS.seriesNumber, 'IS', ' 7 '),
        textElement(tag(0x0008, 0x0008), 'CS', 'ORIGINAL\\\\AXIAL'),
        textElement(tag(0x0020, 0x4000), 'LT', 'a\\b  '),
        textElement(TAGS.sopInstanceUid, 'UI', '1.2.3'),
        binary(tag(0x0028, 0x0030), 'US', us),
        binary(tag(0x0018, 0x9089), 'FD', fd),
        binary(tag(0x0020, 0x9165), 'AT', at),
        binary(tag(0x0028, 0x1201), 'OW', Buffer.from([1, 2, 3, 4])),
        binary(TAGS.studyDate, 'DA', Buffer.alloc(0)),
        { tag: tag(0x0008, 0x1140), vr: 'SQ', items: [new Map([[TAGS.sopInstanceUid, textElement(TAGS.sopInstanceUid, 'UI', '9.8')]])] },
        { tag: tag(0x0008, 0x1200), vr: 'SQ', items: [] },
        binary(TAGS.pixelData, 'OW', Buffer.alloc(8)),
        binary(tag(0x0008, 0x0000), 'UL', Buffer.alloc(4)),
      ]),
      'http://x/frames/1',
    );
    expect(json['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doe^Jane', Ideographic: 'DOE^J', Phonetic: 'doe^jane' }] });
    expect(json['00281050']).toEqual({ vr: 'DS', Value: [40, -150] });
    expect(json['00200011']).toEqual({ vr: 'IS', Value: [7] });
    expect(json['00080008']).toEqual({ vr: 'CS', Value: ['ORIGINAL', null, 'AXIAL'] });
    expect(json['00204000']).toEqual({ vr: 'LT', Value: ['a\\b'] });
    expect(json['00080018']).toEqual({ vr: 'UI', Value: ['1.2.3'] });
    expect(json['00280030']).toEqual({ vr: 'US', Value: [1, 2, 65535] });
    expect(json['00189089']).toEqual({ vr: 'FD', Value: [-0.25] });
    expect(json['00209165']).toEqual({ vr: 'AT', Value: ['00100020'] });
    expect(json['00281201']).toEqual({ vr: 'OW', InlineBinary: Buffer.from([1, 2, 3, 4]).toString('base64') });
    expect(json['00080020']).toEqual({ vr: 'DA' });
    expect(json['00081140']).toEqual({ vr: 'SQ', Value: [{ '00080018': { vr: 'UI', Value: ['9.8'] } }] });
    expect(json['00081200']).toEqual({ vr: 'SQ' });
    expect(json['7FE00010']).toEqual({ vr: 'OW', BulkDataURI: 'http://x/frames/1' });
    expect(json['00080000']).toBeUndefined();
    expect(json['00020010']).toEqual({ vr: 'UI', Value: ['1.2.840.10008.1.2.1'] });
    expect(Object.keys(json)).toEqual([...Object.keys(json)].sort());
  });

  it('reads text as UTF-8 under ISO_IR 192 and binary numbers in the object’s byte order', () => {
    const name = 'Müller^Zoë';
    const utf8 = { tag: TAGS.patientName, vr: 'PN', bytes: Buffer.from(`${name} `, 'utf8') };
    const us = Buffer.alloc(2);
    us.writeUInt16BE(512);
    const json = toDicomJson(file([textElement(TAGS.specificCharacterSet, 'CS', 'ISO_IR 192'), utf8, binary(TAGS.rows, 'US', us)], EXPLICIT_BE), 'u');
    expect(json['00100010'].Value).toEqual([{ Alphabetic: name }]);
    expect(json['00280010'].Value).toEqual([512]);
  });

  it('round-trips generated multi-valued DS, IS and US values', () => {
    const gen = new Gen(7);
    for (let i = 0; i < 50; i++) {
      const ds = Array.from({ length: gen.int(1, 6) }, () => Number((gen.random() * 2000 - 1000).toFixed(gen.int(0, 4))));
      const is = Array.from({ length: gen.int(1, 6) }, () => gen.int(-100000, 100000));
      const us = Array.from({ length: gen.int(1, 6) }, () => gen.int(0, 65535));
      const usBytes = Buffer.alloc(2 * us.length);
      us.forEach((v, k) => usBytes.writeUInt16LE(v, 2 * k));
      const json = toDicomJson(
        file([
          textElement(tag(0x0028, 0x1050), 'DS', ds.join('\\')),
          textElement(TAGS.instanceNumber, 'IS', is.join('\\')),
          binary(tag(0x0028, 0x0030), 'US', usBytes),
        ]),
        'u',
      );
      expect({ ds: json['00281050'].Value, is: json['00200013'].Value, us: json['00280030'].Value }).toEqual({ ds, is, us });
    }
  });
});
