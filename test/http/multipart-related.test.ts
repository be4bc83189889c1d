import { MAX_PARTS, MultipartError, mediaTypeParameters, parseMultipartRelated } from '../../server/http/multipart-related';

describe(parseMultipartRelated.name, () => {
  const body = (text: string) => Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1');

  it('splits parts, keeps their headers and bytes, and ignores the preamble and epilogue', () => {
    const parts = parseMultipartRelated(
      'XYZ',
      body('preamble\n--XYZ\nContent-Type: application/dicom\n\nAAA\n--XYZ \nContent-Type: application/dicom\n\nBB\nB\n--XYZ--\nepilogue'),
    );
    expect(parts.map((p) => p.body.toString('latin1'))).toEqual(['AAA', 'BB\r\nB']);
    expect(parts[0].headers['content-type']).toBe('application/dicom');
  });

  it.each([
    ['no boundary in the body', 'nothing here'],
    ['a part that never closes', '--XYZ\nContent-Type: application/dicom\n\nAAA'],
    ['a part without the end of its headers', '--XYZ\nContent-Type: application/dicom'],
    ['a longer boundary that starts like it', '--XYZZY\nContent-Type: application/dicom\n\nAAA\n--XYZ--'],
  ])('rejects %s', (_label, text) => {
    expect(() => parseMultipartRelated('XYZ', body(text))).toThrow(MultipartError);
  });

  it('rejects a missing or over-long boundary', () => {
    expect(() => parseMultipartRelated('', body('--\n'))).toThrow(MultipartError);
    expect(() => parseMultipartRelated('x'.repeat(71), body('--x\n'))).toThrow(MultipartError);
  });

  it(`rejects more than ${MAX_PARTS} parts (or the limit given), and reads exactly that many`, () => {
    const many = (n: number) => body(`${'--XYZ\nContent-Type: application/dicom\n\nA\n'.repeat(n)}--XYZ--\n`);
    expect(parseMultipartRelated('XYZ', many(3), 3)).toHaveLength(3);
    expect(() => parseMultipartRelated('XYZ', many(4), 3)).toThrow(/more than 3 parts/);
    expect(parseMultipartRelated('XYZ', many(MAX_PARTS))).toHaveLength(MAX_PARTS);
    expect(() => parseMultipartRelated('XYZ', many(MAX_PARTS + 1))).toThrow(MultipartError);
  });

  it('reads media type parameters, quoted or not', () => {
    expect(mediaTypeParameters('Multipart/Related; type="application/dicom"; boundary=abc')).toEqual({
      type: 'multipart/related',
      params: { type: 'application/dicom', boundary: 'abc' },
    });
  });
});
