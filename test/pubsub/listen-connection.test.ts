import { reconnectDelay } from '../../server/pubsub/listen-connection';
import { seededRandom } from '../../server/stats/bootstrap';

describe('the LISTEN connection’s reconnect delay', () => {
  it('doubles from the base to the cap, each step between half and all of its ceiling', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = seededRandom(seed);
      for (let attempt = 1; attempt <= 40; attempt++) {
        const ceiling = Math.min(5_000, 250 * 2 ** (attempt - 1));
        const delay = reconnectDelay(attempt, 250, 5_000, random);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('spreads servers that lost the database together (jitter), yet never waits past the cap', () => {
    const delays = Array.from({ length: 200 }, (_, seed) => reconnectDelay(3, 500, 5_000, seededRandom(seed + 1)));
    expect(new Set(delays.map((d) => Math.round(d / 100))).size).toBeGreaterThan(10);
    expect(Math.max(...Array.from({ length: 200 }, (_, seed) => reconnectDelay(1_000, 500, 5_000, seededRandom(seed + 1))))).toBeLessThanOrEqual(5_000);
  });
});
