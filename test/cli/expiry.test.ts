import { tokenExpiry } from '../../server/cli/expiry';
import { prng } from '../../server/demo/phantoms';

const NOW = new Date('2026-05-01T12:00:00.000Z');
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

describe(tokenExpiry.name, () => {
  it('is null without an expiry: the token lasts until revoked', () => {
    expect(tokenExpiry({}, NOW)).toBeNull();
  });

  it('adds every unit of --expires-in to now', () => {
    const random = prng(77);
    for (const unit of Object.keys(UNIT_MS)) {
      for (let i = 0; i < 20; i++) {
        const n = 1 + Math.floor(random() * 999);
        expect(tokenExpiry({ expiresIn: `${n}${unit}` }, NOW)).toEqual(new Date(NOW.getTime() + n * UNIT_MS[unit]));
      }
    }
  });

  it('reads --expires-at as an ISO 8601 instant, a bare date as midnight UTC', () => {
    expect(tokenExpiry({ expiresAt: '2027-01-31T18:00:00Z' }, NOW)).toEqual(new Date('2027-01-31T18:00:00Z'));
    expect(tokenExpiry({ expiresAt: '2027-01-31T18:00+02:00' }, NOW)).toEqual(new Date('2027-01-31T16:00:00Z'));
    expect(tokenExpiry({ expiresAt: '2027-01-31' }, NOW)).toEqual(new Date('2027-01-31T00:00:00Z'));
  });

  it.each([
    ['no unit', { expiresIn: '90' }],
    ['an unknown unit', { expiresIn: '3y' }],
    ['zero', { expiresIn: '0d' }],
    ['a negative number', { expiresIn: '-1h' }],
    ['a fraction', { expiresIn: '1.5h' }],
    ['words', { expiresAt: 'next week' }],
    ['a date-time without a zone', { expiresAt: '2027-01-31T18:00:00' }],
    ['an impossible date', { expiresAt: '2027-02-31T00:00:00Z' }],
    ['a past instant', { expiresAt: '2026-05-01T11:59:59Z' }],
    ['now itself', { expiresAt: NOW.toISOString() }],
    ['both options', { expiresIn: '1d', expiresAt: '2027-01-01' }],
  ])('refuses %s', (_label, options) => {
    expect(() => tokenExpiry(options, NOW)).toThrow(/expires|both/);
  });
});
