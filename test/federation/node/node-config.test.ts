import { loadConfig } from '../../../server/config/config';
import { NodeIdentity } from '../../../server/federation/identity';
import { seededRandom } from '../../../server/stats/bootstrap';

const HUB_KEY = NodeIdentity.generate().public.signingKey;
const MEMBER = { FACET_HUB_URL: 'https://hub.example.org/graphql', FACET_HUB_SIGNING_KEY: HUB_KEY, FACET_FEDERATION_SITE: 'NORTH' };

describe('node federation config', () => {
  it('is not a member without FACET_HUB_URL (empty counts as unset), whatever else is set', () => {
    expect(loadConfig({}).federation).toBeNull();
    expect(loadConfig({ FACET_HUB_URL: '', FACET_HUB_SIGNING_KEY: HUB_KEY, FACET_FEDERATION_SITE: 'NORTH' }).federation).toBeNull();
  });

  it('reads the hub URL, the pinned hub key and the site code', () => {
    expect(loadConfig(MEMBER).federation).toEqual({ hubUrl: MEMBER.FACET_HUB_URL, hubSigningKey: HUB_KEY, site: 'NORTH' });
  });

  it.each([
    ['FACET_HUB_URL', 'hub.example.org', /FACET_HUB_URL/],
    ['FACET_HUB_URL', 'ftp://hub.example.org/graphql', /FACET_HUB_URL must be an https URL/],
    ['FACET_HUB_SIGNING_KEY', undefined, /FACET_HUB_SIGNING_KEY/],
    ['FACET_HUB_SIGNING_KEY', HUB_KEY.slice(1), /FACET_HUB_SIGNING_KEY/],
    ['FACET_FEDERATION_SITE', undefined, /FACET_FEDERATION_SITE/],
    ['FACET_FEDERATION_SITE', 'NORTH HOSPITAL', /FACET_FEDERATION_SITE/],
  ])('refuses %s = %p for a member', (name, value, message) => {
    expect(() => loadConfig({ ...MEMBER, [name]: value })).toThrow(message);
  });

  it('refuses generated keys of the wrong length or alphabet', () => {
    const random = seededRandom(11);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_.';
    for (let i = 0; i < 200; i++) {
      const length = Math.floor(random() * 60);
      const key = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      const valid = /^[A-Za-z0-9+/]{43}=$/.test(key);
      if (valid) expect(loadConfig({ ...MEMBER, FACET_HUB_SIGNING_KEY: key }).federation?.hubSigningKey).toBe(key);
      else expect(() => loadConfig({ ...MEMBER, FACET_HUB_SIGNING_KEY: key })).toThrow(/FACET_HUB_SIGNING_KEY/);
    }
  });
});
