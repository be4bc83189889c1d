import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ReaderRole, Role } from '../../server/domain';
import { createSchema } from '../../server/graphql/schema';
import { startHttpServer, type RunningServer } from '../../server/http/app';
import { webAppRoot } from '../../server/http/web-app';
import { jobHandlers } from '../../server/jobs/job-registry';
import { RUN_INFERENCE } from '../../server/queue/job-catalogue';
import { launchChromium, SCREENSHOTS, signIn as signInAs } from '../helpers/browser';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { TEST_LIMITS } from '../helpers/test-node';
import { stow } from '../helpers/stow';

const DICOM = path.resolve(__dirname, '../fixtures/dicom');
const ONNX = path.resolve(__dirname, '../fixtures/onnx');
const MRN = 'MRN-7734021';
const UID = (suffix: string) => `1.2.826.0.1.3680043.9.7134.1.20240117.1.2.3.${suffix}`;
const START = `mutation ($id: ID!) { startInferenceJob(modelVersionId: $id) { id status } }`;
const STUDY_FLOW = `{ studyFlow { site suppressed enrolled eligible joints } }`;

describe('the web app in Chromium', () => {
  // One item per batch, so a job moves through several progress events.
  const node = useTestNode({ jobs: { inferenceBatchSize: 1 } });
  let browser: Browser;
  const tokens: Record<'admin' | 'engineer' | 'statistician' | 'coordinator' | 'reader' | 'reader2' | 'adjudicator' | 'senior', string> = {
    senior: '',
    reader2: '',
    adjudicator: '',
    admin: '',
    engineer: '',
    statistician: '',
    coordinator: '',
    reader: '',
  };
  let modelId: string;
  let workerStarted = false;

  /** A real pg-boss worker in this process, started when a test wants the queued jobs to run. */
  const startWorker = async () => {
    if (workerStarted) return;
    workerStarted = true;
    await node().services.queue.work(RUN_INFERENCE, jobHandlers(node().services)[RUN_INFERENCE]);
  };

  beforeAll(async () => {
    expect(readFileSync(path.join(webAppRoot(), 'index.html'), 'utf8')).toContain('<div id="root">'); // npm run build makes it
    const factory = new Factory(node().services);
    const site = await factory.site('EAST');
    tokens.admin = await factory.token(Role.ADMIN);
    tokens.engineer = await factory.token(Role.ENGINEER);
    tokens.statistician = await factory.token(Role.STATISTICIAN);
    tokens.coordinator = await factory.token(Role.COORDINATOR, { site });
    tokens.reader = (await factory.readerWithToken(site)).token;
    tokens.reader2 = (await factory.readerWithToken(site)).token;
    tokens.adjudicator = (await factory.readerWithToken(site, ReaderRole.ADJUDICATOR)).token;
    tokens.senior = (await factory.readerWithToken(site, ReaderRole.SENIOR)).token;
    await gqlOk(node().url, tokens.coordinator, `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored } }`, {
      csv: `site,patient_id\nEAST,${MRN}\n`,
    });
    const files = ['identified-explicit-le.dcm', 'identified-mr.dcm', 'identified-jpeg-ls.dcm'].map((f) => ({ bytes: readFileSync(path.join(DICOM, f)) }));
    expect((await stow(node().url, tokens.coordinator, files)).status).toBe(202);
    const csv = [
      'patient_id,level,side,sop_instance_uid,frame,x,y,width,height',
      `${MRN},L4_L5,LEFT,${UID('1')},0,4,4,32,32`,
      `${MRN},L4_L5,LEFT,${UID('4')},0,8,8,40,40`,
      `${MRN},L4_L5,RIGHT,${UID('14')},0,0,0,64,64`,
    ].join('\n');
    await gqlOk(node().url, tokens.coordinator, `mutation ($site: ID!, $csv: String!) { importJointImagesManifest(siteId: $site, csv: $csv) { stored } }`, {
      site: site.id,
      csv,
    });
    await gqlOk(node().url, tokens.statistician, `mutation { createSplitVersion(input: { name: "v1", seed: 7 }) { id } }`);
    const form = new FormData();
    form.append('manifest', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.manifest.json'))]), 'manifest.json');
    form.append('model', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.onnx'))]), 'model.onnx');
    const registered = await fetch(`${node().url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${tokens.engineer}` }, body: form });
    modelId = ((await registered.json()) as { id: string }).id;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  async function signIn(token: string, hash = ''): Promise<Page> {
    const { page, outside } = await signInAs(browser, node().url, token, hash);
    expect(outside).toEqual([]);
    return page;
  }

  it('runs a job started from the dashboard to completion, its progress arriving live', async () => {
    const page = await signIn(tokens.engineer, '#/jobs');
    await page.selectOption('select[name=model]', modelId);
    await page.click('.start-job button[type=submit]');
    const row = page.locator('[data-testid^=job-]').first();
    await row.waitFor();
    expect(await row.getAttribute('data-status')).toBe('QUEUED');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'jobs-queued.png'), fullPage: true });
    // The page is not reloaded nor refetched: only the jobs subscription can bring the worker's progress.
    await startWorker();
    await page.waitForSelector('[data-testid^=job-][data-status=SUCCEEDED]', { timeout: 60_000 });
    expect(await row.locator('[data-testid=counts]').textContent()).toBe('3 done / 0 failed / 3');
    expect(await row.locator('progress').getAttribute('value')).toBe('100');
    expect(await row.locator('td').nth(6).textContent()).toBe('cpu');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'jobs.png'), fullPage: true });
    await page.context().close();
  });

  it('shows a statistician the jobs without start or cancel, and a job started elsewhere as it appears', async () => {
    const page = await signIn(tokens.statistician, '#/jobs');
    await page.waitForSelector('[data-testid^=job-][data-status=SUCCEEDED]');
    expect(await page.locator('.start-job').count()).toBe(0);
    const before = await page.locator('[data-testid^=job-]').count();
    const started = await gqlOk(node().url, tokens.engineer, START, { id: modelId });
    await page.waitForSelector(`[data-testid=job-${started.startInferenceJob.id}][data-status=SUCCEEDED]`, { timeout: 60_000 });
    expect(await page.locator('[data-testid^=job-]').count()).toBe(before + 1);
    expect(await page.locator('button', { hasText: 'Cancel' }).count()).toBe(0);
    await page.context().close();
  });

  it('draws the study flow of each site with the numbers the API gives the same token', async () => {
    for (const [role, token] of [
      ['admin', tokens.admin],
      ['statistician', tokens.statistician],
    ] as const) {
      const page = await signIn(token, '#/study');
      const flow = (await gqlOk(node().url, token, STUDY_FLOW)).studyFlow as Array<{ site: string | null; suppressed: boolean; enrolled: number }>;
      for (const row of flow) {
        const figure = page.locator(`[data-testid=flow-${row.site ?? 'all'}]`);
        await figure.waitFor();
        if (row.suppressed) expect(await figure.textContent()).toMatch(/Suppressed/);
        else expect(await figure.locator('[data-testid=flow-count]').first().textContent()).toBe(`Enrolled patients: ${row.enrolled}`);
      }
      expect(flow.some((row) => !row.suppressed) || role === 'statistician').toBe(true);
      const splits = (await gqlOk(node().url, token, `{ splitVersions { nodes { name counts { split patients } } } }`)).splitVersions.nodes;
      const table = page.locator('[data-testid=split-table]');
      await table.waitFor();
      expect(await table.locator('caption').textContent()).toMatch(/^v1/);
      const cells = (await table.locator('tbody td').allTextContents()).slice(1).map(Number);
      expect(cells.reduce((a, b) => a + b, 0)).toBe(splits[0].counts.reduce((a: number, c: { patients: number }) => a + c.patients, 0));
      await page.screenshot({ path: path.join(SCREENSHOTS, `study-${role}.png`), fullPage: true });
      await page.context().close();
    }
  });

  it("shows each role only its pages and refuses the others' by address", async () => {
    const navOf = async (page: Page) => (await page.locator('header nav a').allTextContents()).sort();
    const coordinator = await signIn(tokens.coordinator, '#/jobs');
    expect(await navOf(coordinator)).toEqual(['Metrics', 'Study overview', 'Upload']);
    expect(await coordinator.locator('[data-testid=refused]').textContent()).toMatch(/COORDINATOR role may not open this page/);
    expect(await coordinator.locator('[data-testid=jobs-table]').count()).toBe(0);
    await coordinator.context().close();
    const reader = await signIn(tokens.reader, '#/study');
    expect(await navOf(reader)).toEqual(['Reading']);
    expect(await reader.locator('[data-testid=refused]').textContent()).toMatch(/READER role may not open this page/);
    await reader.context().close();
    const engineer = await signIn(tokens.engineer);
    expect(await navOf(engineer)).toEqual(['Jobs', 'Metrics', 'Study overview']);
    expect(await engineer.goto(`${node().url}/#/upload`).then(() => engineer.locator('[data-testid=refused]').textContent())).toMatch(/ENGINEER role may not/);
    await engineer.context().close();
  });

  it("grades a joint with the keyboard: the reader's readings land, and the worklist counts down", async () => {
    const page = await signIn(tokens.reader, '#/reading');
    const first = page.locator('[data-testid=worklist] li').first();
    await first.waitFor();
    const scheme = (await gqlOk(node().url, tokens.reader, `{ gradingScheme { code } }`)).gradingScheme as Array<{ code: string }>;
    expect(await first.getAttribute('data-left')).toBe(String(scheme.length));
    await page.keyboard.press('1');
    await page.waitForSelector(`[data-testid=grading] tr[data-feature=${scheme[0].code}] [data-testid=own-grade]:has-text("1")`);
    await page.keyboard.press('n');
    await page.waitForSelector(`[data-testid=grading] tr[data-feature=${scheme[1].code}] [data-testid=own-grade]:has-text("not assessable")`);
    await page.keyboard.press('ArrowDown'); // skip the third feature
    await page.keyboard.press('9'); // outside every Weishaupt scale: nothing is sent
    await page.keyboard.press('0');
    await page.waitForSelector(`[data-testid=grading] tr[data-feature=${scheme[3].code}] [data-testid=own-grade]:has-text("0")`);
    const readings = (await gqlOk(node().url, tokens.reader, `{ readings(first: 50) { nodes { feature grade notAssessable } } }`)).readings.nodes;
    expect(readings.sort((a: { feature: string }, b: { feature: string }) => a.feature.localeCompare(b.feature))).toEqual(
      [
        { feature: scheme[0].code, grade: 1, notAssessable: false },
        { feature: scheme[1].code, grade: null, notAssessable: true },
        { feature: scheme[3].code, grade: 0, notAssessable: false },
      ].sort((a, b) => a.feature.localeCompare(b.feature)),
    );
    expect(await first.getAttribute('data-left')).toBe(String(scheme.length - 3));
    await page.screenshot({ path: path.join(SCREENSHOTS, 'reading.png'), fullPage: true });
    await page.context().close();
  });

  it('shows an adjudicator the disagreement with both grades and records the decision', async () => {
    // The keyboard test's first reading, graded otherwise by a second reader: a disagreement.
    const [first] = (await gqlOk(node().url, tokens.reader, `{ readings(first: 50) { nodes { jointId modality feature grade } } }`)).readings.nodes.filter(
      (r: { grade: number | null }) => r.grade === 1,
    );
    await gqlOk(node().url, tokens.reader2, `mutation ($input: RecordReadingInput!) { recordReading(input: $input) { id } }`, {
      input: { jointId: first.jointId, modality: first.modality, feature: first.feature, grade: 0 },
    });
    const page = await signIn(tokens.adjudicator, '#/reading');
    const row = page.locator('[data-testid^=adjudicate-]');
    await row.waitFor();
    expect(await row.count()).toBe(1);
    expect(await row.locator('td').nth(2).textContent()).toMatch(/^RD\S*: [01] · RD\S*: [01]$/);
    await row.locator('input[name=grade]').fill('1');
    await row.locator('input[name=rationale]').fill('joint space narrowed on two slices');
    await row.locator('button:has-text("Decide")').click();
    await page.waitForSelector('[data-testid^=adjudicate-]', { state: 'detached' });
    const decided = (await gqlOk(node().url, tokens.admin, `{ adjudications { nodes { feature grade rationale } } }`)).adjudications.nodes;
    expect(decided).toEqual([{ feature: first.feature, grade: 1, rationale: 'joint space narrowed on two slices' }]);
    await page.context().close();
  });

  it('shows a senior reader the unconfirmed reference grades and confirms the chosen ones', async () => {
    const before = (await gqlOk(node().url, tokens.admin, `{ referenceGrades(first: 50, filter: { confirmed: false }) { nodes { id } } }`)).referenceGrades
      .nodes;
    expect(before.length).toBeGreaterThan(0); // the adjudicated cell, and the cells the two readers agreed on
    const page = await signIn(tokens.senior, '#/reading');
    await page.waitForSelector('[data-testid^=reference-]');
    expect(await page.locator('[data-testid^=reference-]').count()).toBe(before.length);
    await page.check('[data-testid=confirmation] input[aria-label=all]');
    await page.click('button:has-text("Confirm")');
    await page.waitForSelector('[data-testid^=reference-]', { state: 'detached' });
    const after = (await gqlOk(node().url, tokens.admin, `{ referenceGrades(first: 50) { nodes { confirmedAt } } }`)).referenceGrades.nodes;
    expect(after.length).toBe(before.length);
    expect(after.every((g: { confirmedAt: string | null }) => g.confirmedAt !== null)).toBe(true);
    await page.context().close();
  });

  it('refuses an unknown token with the API error and keeps the sign-in form', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${node().url}/`);
    await page.fill('input[name=token]', 'fct_not-a-token');
    await page.click('button[type=submit]');
    expect(await page.locator('[role=alert]').textContent()).toMatch(/UNAUTHENTICATED/);
    await context.close();
  });

  it('keeps the dashboard live across a server restart, without a reload', async () => {
    const page = await signIn(tokens.engineer, '#/jobs');
    await page.waitForSelector('[data-testid^=job-][data-status=SUCCEEDED]');
    const { port } = node().server;
    await node().server.close();
    let restarted: RunningServer | null = null;
    try {
      restarted = await startHttpServer({ host: '127.0.0.1', port, ...TEST_LIMITS }, node().services, await createSchema(node().services), node().dataSource);
      const started = await gqlOk(node().url, tokens.engineer, START, { id: modelId });
      await page.waitForSelector(`[data-testid=job-${started.startInferenceJob.id}][data-status=SUCCEEDED]`, { timeout: 60_000 });
    } finally {
      await restarted?.close();
    }
    await page.context().close();
  });
});
