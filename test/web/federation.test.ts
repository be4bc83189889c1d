import path from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium, SCREENSHOTS, signIn } from '../helpers/browser';
import { filePassed } from '../helpers/lifecycle';
import { Gen } from '../federation/generators';
import { binaryCountsAggregate, generateSiteCases } from '../federation/hub/cases';
import { START, startTestHub, type TestHub } from '../federation/hub/hub-harness';

/** The federation page on a real hub whose member nodes are scripted (they claim and sign as real nodes do). */
describe('the federation page of a hub in Chromium', () => {
  let hub: TestHub;
  let browser: Browser;

  beforeAll(async () => {
    hub = await startTestHub(['NORTH', 'SOUTH']);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await hub?.close(filePassed());
  });

  it("shows the member sites and each site's state of a federated query, live as the sites answer", async () => {
    const query = (
      await hub.query(START, {
        input: { kind: 'BINARY_COUNTS', rater: { readerSlot: 'FIRST' }, groupBy: ['FEATURE'], sites: ['NORTH', 'SOUTH'], deadlineSeconds: 600 },
      })
    ).startFederatedQuery;
    const gen = new Gen(5);
    const answer = async (code: string, first: number) => {
      const node = hub.nodes.get(code)!;
      const task = (await node.claim(0)).tasks.find((t) => t.taskId === query.id)!;
      await node.submit(node.sign(node.resultPayload(task, { aggregate: binaryCountsAggregate(code, generateSiteCases(gen, 12, first), 5) })));
    };
    await answer('NORTH', 0);

    const { page, outside } = await signIn(browser, hub.url, hub.token, '#/federation');
    const card = page.locator(`[data-testid=query-${query.id}]`);
    await card.waitFor();
    expect(await card.getAttribute('data-status')).toBe('RUNNING');
    expect(await card.locator('tr[data-site=NORTH]').getAttribute('data-state')).toBe('SUCCEEDED');
    expect(await card.locator('tr[data-site=SOUTH]').getAttribute('data-state')).toBe('QUEUED');
    expect(await page.locator('[data-testid=last-contact-NORTH]').textContent()).not.toBe('never');
    expect(await page.locator('[data-testid=last-contact-SOUTH]').textContent()).toBe('never');

    // SOUTH answers: the page follows without a reload.
    await answer('SOUTH', 12);
    await page.waitForSelector(`[data-testid=query-${query.id}][data-status=COMPLETE]`);
    expect(await card.locator('tr[data-site=SOUTH]').getAttribute('data-state')).toBe('SUCCEEDED');
    await page.waitForFunction(`document.querySelector('[data-testid=last-contact-SOUTH]')?.textContent !== 'never'`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'federation.png'), fullPage: true });
    expect(outside).toEqual([]);
    await page.context().close();
  });
});
