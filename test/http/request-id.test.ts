import { prng } from '../../server/demo/phantoms';
import { clientRequestId } from '../../server/http/request-id';

describe(clientRequestId.name, () => {
  const random = prng(6401);
  const printable = (n: number) => Array.from({ length: n }, () => String.fromCharCode(0x20 + Math.floor(random() * 95))).join('');

  it('keeps printable ASCII of 1 to 64 characters as sent', () => {
    for (let i = 0; i < 200; i++) {
      const id = printable(1 + Math.floor(random() * 64));
      expect(clientRequestId(id)).toBe(id);
    }
  });

  it('drops, never cuts, a header over 64 characters', () => {
    for (let i = 0; i < 50; i++) expect(clientRequestId(printable(65 + Math.floor(random() * 5000)))).toBeNull();
  });

  it('drops a header holding any control or non-ASCII character', () => {
    const outside = [...Array.from({ length: 0x20 }, (_, c) => c), 0x7f, 0x80, 0xa0, 0xe9, 0x2028, 0xfeff, 0x1f600];
    for (const code of outside) {
      const base = printable(1 + Math.floor(random() * 40));
      const at = Math.floor(random() * (base.length + 1));
      expect(clientRequestId(`${base.slice(0, at)}${String.fromCodePoint(code)}${base.slice(at)}`)).toBeNull();
    }
  });

  it('drops what is not one string: no header, an empty one, a repeated one', () => {
    for (const header of [undefined, null, '', ['a', 'b'], 42]) expect(clientRequestId(header)).toBeNull();
  });
});
