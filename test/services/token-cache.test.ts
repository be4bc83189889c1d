import { Role } from '../../server/domain';
import type { Actor } from '../../server/services';
import { TOKEN_CACHE_TTL_MS, TokenCache } from '../../server/services/token-cache';

const actor = (tokenId: string, expiresAt: Date | null = null): Actor => ({
  tokenId,
  name: tokenId,
  role: Role.ADMIN,
  siteId: null,
  readerId: null,
  readerRole: null,
  expiresAt,
});

describe('TokenCache', () => {
  let now = 1_000_000;
  const cache = () => new TokenCache(() => now);

  it('answers a cached token until the TTL, then asks again', () => {
    const c = cache();
    c.set('h1', actor('t1'));
    expect(c.get('h1')?.tokenId).toBe('t1');
    now += TOKEN_CACHE_TTL_MS - 1;
    expect(c.get('h1')?.tokenId).toBe('t1');
    now += 1;
    expect(c.get('h1')).toBeNull();
  });

  it("never answers past the token's own expiry, whatever the TTL", () => {
    for (const msLeft of [0, 1, 10, TOKEN_CACHE_TTL_MS / 2, TOKEN_CACHE_TTL_MS - 1]) {
      const c = cache();
      c.set('h', actor('t', new Date(now + msLeft)));
      const at = now;
      now = at + msLeft;
      expect(c.get('h')).toBeNull();
      now = at;
    }
  });

  it('forgets every entry of a revoked token, and a lookup that raced the revocation does not put it back', () => {
    const c = cache();
    c.set('a', actor('t1'));
    c.set('b', actor('t1'));
    c.set('c', actor('t2'));
    c.forgetToken('t1');
    expect([c.get('a'), c.get('b'), c.get('c')?.tokenId]).toEqual([null, null, 't2']);
    c.set('a', actor('t1'));
    expect(c.get('a')).toBeNull();
    c.clear();
    expect(c.get('c')).toBeNull();
  });

  it('stays bounded: the oldest entries go first', () => {
    const c = cache();
    for (let i = 0; i < 10_001; i++) c.set(`h${i}`, actor(`t${i}`));
    expect(c.get('h0')).toBeNull();
    expect(c.get('h1')?.tokenId).toBe('t1');
    expect(c.get('h10000')?.tokenId).toBe('t10000');
  });
});
