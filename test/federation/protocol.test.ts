import { FederationSiteState as S, nextSiteState, summarizeTask, type SiteEvent } from '../../server/federation/protocol';
import { Gen } from './generators';

const EVENTS: SiteEvent[] = ['CLAIM', 'LEASE_LAPSED', 'RESULT_SUCCEEDED', 'RESULT_REFUSED', 'RESULT_FAILED', 'RETRY', 'DEADLINE'];

describe('per-site task states', () => {
  it('follow the documented moves', () => {
    expect(nextSiteState(S.QUEUED, 'CLAIM')).toBe(S.CLAIMED);
    expect(nextSiteState(S.CLAIMED, 'RESULT_SUCCEEDED')).toBe(S.SUCCEEDED);
    expect(nextSiteState(S.CLAIMED, 'RESULT_REFUSED')).toBe(S.REFUSED);
    expect(nextSiteState(S.CLAIMED, 'RESULT_FAILED')).toBe(S.FAILED);
    expect(nextSiteState(S.CLAIMED, 'LEASE_LAPSED')).toBe(S.QUEUED);
    expect(nextSiteState(S.FAILED, 'RETRY')).toBe(S.QUEUED);
    expect(nextSiteState(S.QUEUED, 'DEADLINE')).toBe(S.EXPIRED);
    // A late result folds in.
    expect(nextSiteState(S.EXPIRED, 'RESULT_SUCCEEDED')).toBe(S.SUCCEEDED);
  });

  it('never leave SUCCEEDED or REFUSED, and never reach SUCCEEDED without a result (generated event sequences)', () => {
    const gen = new Gen(42);
    for (let i = 0; i < 500; i++) {
      let state: S = S.QUEUED;
      let sawSuccess = false;
      for (let step = 0; step < 12; step++) {
        const event = gen.pick(EVENTS);
        const next = nextSiteState(state, event);
        if (state === S.SUCCEEDED || state === S.REFUSED) expect(next).toBeNull();
        if (next === S.SUCCEEDED) {
          expect(event).toBe('RESULT_SUCCEEDED');
          sawSuccess = true;
        }
        if (next === S.CLAIMED) expect(event).toBe('CLAIM');
        if (next !== null) state = next;
      }
      if (state === S.SUCCEEDED) expect(sawSuccess).toBe(true);
    }
  });

  it('refuse a second result for a settled site', () => {
    for (const settled of [S.SUCCEEDED, S.REFUSED]) {
      for (const event of EVENTS) expect(nextSiteState(settled, event)).toBeNull();
    }
  });
});

describe(summarizeTask.name, () => {
  const sites = (states: [string, S, boolean?][]) => states.map(([site, state, everClaimed]) => ({ site, state, everClaimed }));

  it('is COMPLETE when every site succeeded, RUNNING while sites may still answer', () => {
    expect(
      summarizeTask(
        sites([
          ['A', S.SUCCEEDED],
          ['B', S.SUCCEEDED],
        ]),
        { minSites: 2, deadlinePassed: false },
      ).status,
    ).toBe('COMPLETE');
    expect(
      summarizeTask(
        sites([
          ['A', S.SUCCEEDED],
          ['B', S.CLAIMED],
        ]),
        { minSites: 1, deadlinePassed: false },
      ).status,
    ).toBe('RUNNING');
  });

  it('gives a PARTIAL answer at the deadline with k of n, naming each missing site and why', () => {
    const progress = summarizeTask(
      sites([
        ['A', S.SUCCEEDED],
        ['B', S.SUCCEEDED],
        ['C', S.EXPIRED, false],
        ['D', S.EXPIRED, true],
        ['E', S.REFUSED],
        ['F', S.FAILED],
      ]),
      { minSites: 2, deadlinePassed: true },
    );
    expect(progress).toEqual({
      status: 'PARTIAL',
      contributing: ['A', 'B'],
      missing: [
        { site: 'C', reason: 'SITE_UNAVAILABLE', detail: null },
        { site: 'D', reason: 'SITE_TIMEOUT', detail: null },
        { site: 'E', reason: 'SITE_REFUSED', detail: null },
        { site: 'F', reason: 'SITE_FAILED', detail: null },
      ],
    });
    expect(
      summarizeTask(
        sites([
          ['A', S.SUCCEEDED],
          ['B', S.EXPIRED],
        ]),
        { minSites: 2, deadlinePassed: true },
      ).status,
    ).toBe('INSUFFICIENT');
  });

  it('does not wait for the deadline when every site has settled, and a late result turns PARTIAL into COMPLETE', () => {
    expect(
      summarizeTask(
        sites([
          ['A', S.SUCCEEDED],
          ['B', S.REFUSED],
        ]),
        { minSites: 1, deadlinePassed: false },
      ).status,
    ).toBe('PARTIAL');
    const late = nextSiteState(S.EXPIRED, 'RESULT_SUCCEEDED') as S;
    expect(
      summarizeTask(
        sites([
          ['A', S.SUCCEEDED],
          ['B', late],
        ]),
        { minSites: 1, deadlinePassed: true },
      ).status,
    ).toBe('COMPLETE');
  });
});
