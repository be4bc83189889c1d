import { randomUUID } from 'node:crypto';
import { firstPart, RetrieveError } from '../../web/src/viewer/wado-answer';
import { Gen } from '../federation/generators';
import { multipartRelated } from '../helpers/stow';

const boundaryOf = (contentType: string) => /boundary=([^;]+)/.exec(contentType)![1];

/**
 * A part's body with the byte sequences a multipart parser trips on: CRLF, blank lines, `--` runs and the
 * boundary's own prefix, amid random binary (what a Part 10 object's pixel data looks like to a parser).
 */
function trickyBody(gen: Gen, boundary: string): Buffer {
  const pieces: Buffer[] = [];
  for (let i = gen.int(0, 12); i > 0; i--) {
    pieces.push(
      gen.pick([
        () => gen.bytes(gen.int(0, 300)),
        () => Buffer.from('\r\n'),
        () => Buffer.from('\r\n\r\n'),
        () => Buffer.from('\r\n--'),
        () => Buffer.from(`\r\n--${boundary.slice(0, gen.int(0, boundary.length - 1))}`),
        () => Buffer.from(`=--${boundary}`), // the boundary itself, but not after CRLF (a delimiter never occurs in a part)
        () => Buffer.from('DICM'),
      ])(),
    );
  }
  return Buffer.concat(pieces);
}

describe("the viewer's WADO-RS answer parsing", () => {
  it('gives back the first part byte for byte, whatever the part holds and whatever the boundary', () => {
    const gen = new Gen(14);
    for (let round = 0; round < 300; round++) {
      const bytes = trickyBody(gen, 'facet-');
      const { contentType, body } = multipartRelated([{ bytes }, ...(gen.bool(0.2) ? [{ bytes: gen.bytes(gen.int(0, 50)) }] : [])]);
      expect(Buffer.from(firstPart(body, boundaryOf(contentType)))).toEqual(bytes);
    }
  });

  it("parses the server's own framing (a facet-<uuid> boundary and one part)", () => {
    const gen = new Gen(15);
    for (let round = 0; round < 100; round++) {
      const boundary = `facet-${randomUUID()}`;
      const bytes = trickyBody(gen, boundary);
      const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]);
      expect(Buffer.from(firstPart(body, boundary))).toEqual(bytes);
    }
  });

  it('refuses an answer cut short or without a part with BAD_RESPONSE, never a partial object', () => {
    const gen = new Gen(16);
    for (let round = 0; round < 200; round++) {
      const bytes = trickyBody(gen, 'facet-');
      const { contentType, body } = multipartRelated([{ bytes }]);
      const boundary = boundaryOf(contentType);
      // Cut anywhere before the closing delimiter has begun: the part never ends.
      const end = body.lastIndexOf(`\r\n--${boundary}--`);
      const cut = body.subarray(0, gen.int(0, end + 1 + boundary.length));
      const attempt = () => firstPart(cut, boundary);
      expect(attempt).toThrow(RetrieveError);
      try {
        attempt();
      } catch (error) {
        expect((error as RetrieveError).code).toBe('BAD_RESPONSE');
      }
    }
    expect(() => firstPart(Buffer.from('{"errors":[]}'), 'facet-x')).toThrow(/holds no part/);
  });
});
