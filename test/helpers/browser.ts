import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Screenshots of each page land here (ignored by git), for a person to look at after a run. */
export const SCREENSHOTS = path.resolve(__dirname, '../../test-results/web');

const CHROMIUM = '/usr/bin/chromium';

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it), headless, with nothing that phones home. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does)`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * A fresh browser context (its own sessionStorage) at `url`, signed in with `token` through the sign-in form, and
 * the requests it made to any other host (a hospital browser reaches nothing else; tests expect none).
 */
export async function signIn(browser: Browser, url: string, token: string, hash = ''): Promise<{ page: Page; outside: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const outside: string[] = [];
  page.on('request', (request) => {
    // blob: and data: URLs (a worker's script, a decoded image) never leave the browser.
    if (/^(blob|data):/.test(request.url())) return;
    if (new URL(request.url()).host !== new URL(url).host) outside.push(request.url());
  });
  await page.goto(`${url}/${hash}`);
  await page.fill('input[name=token]', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=viewer]');
  return { page, outside };
}
