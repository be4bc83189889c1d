import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { REFERENCE_MODEL_DIR } from '../../server/demo/demo-cohort';
import { Role } from '../../server/domain';
import { canonicalSha256 } from '../../server/federation/canonical-json';
import { EnvelopeKind, signEnvelope } from '../../server/federation/envelope';
import type { ProgressPayload } from '../../server/federation/federated-inference';
import type { TaskPayload } from '../../server/federation/protocol';
import { systemContext } from '../../server/services';
import { launchChromium, SCREENSHOTS, signIn } from '../helpers/browser';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { filePassed } from '../helpers/lifecycle';
import { Gen } from '../federation/generators';
import { binaryCountsAggregate, generateSiteCases } from '../federation/hub/cases';
import { eventually, START, startTestHub, type ScriptedNode, type TestHub } from '../federation/hub/hub-harness';

const INFERENCE_FIELDS = `id status sites { site state total done failed } total { done failed total finished }`;
const START_INFERENCE = `mutation ($input: FederatedInferenceInput!) { startFederatedInference(input: $input) { ${INFERENCE_FIELDS} } }`;
const READ_INFERENCE = `query ($id: ID!) { federatedInference(id: $id) { ${INFERENCE_FIELDS} } }`;

/**
 * The federation page and the federated jobs dashboard on a real hub whose member nodes are scripted (they claim,
 * report progress and sign results as real nodes do, over the nodes' own client).
 */
describe('the federation page of a hub in Chromium', () => {
  let hub: TestHub;
  let browser: Browser;
  let engineer: string;
  let hubRole: string;
  let model: { id: string; sha256: string };

  beforeAll(async () => {
    hub = await startTestHub(['NORTH', 'SOUTH']);
    const tokens = hub.node.services.tokens;
    engineer = (await tokens.createApiToken(systemContext('test'), { name: 'ml engineer', role: Role.ENGINEER })).secret;
    hubRole = (await tokens.createApiToken(systemContext('test'), { name: 'another hub', role: Role.HUB })).secret;
    const form = new FormData();
    form.append('manifest', new Blob([readFileSync(path.join(REFERENCE_MODEL_DIR, 'manifest.json'))]), 'manifest.json');
    form.append('model', new Blob([readFileSync(path.join(REFERENCE_MODEL_DIR, 'model.onnx'))]), 'model.onnx');
    const registered = await fetch(`${hub.url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form });
    expect(registered.status).toBe(201);
    model = (await registered.json()) as { id: string; sha256: string };
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

  const scripted = (code: string): ScriptedNode => hub.nodes.get(code)!;
  const claimTask = async (code: string, id: string): Promise<TaskPayload> => (await scripted(code).claim(0)).tasks.find((t) => t.taskId === id)!;
  const readInference = async (id: string) => (await gqlOk(hub.url, engineer, READ_INFERENCE, { id })).federatedInference;

  /** A node's signed progress report, as its worker relays it. */
  async function report(code: string, task: TaskPayload, progress: Partial<ProgressPayload>) {
    const node = scripted(code);
    const payload: ProgressPayload = {
      taskId: task.taskId,
      taskSha256: canonicalSha256(task),
      site: code,
      sequence: 1,
      phase: 'RUNNING',
      total: 40,
      done: 0,
      failed: 0,
      elapsedSeconds: 5,
      executionProvider: 'cpu',
      ...progress,
    };
    expect(await node.hub.reportProgress(signEnvelope(node.identity, { kind: EnvelopeKind.PROGRESS, signer: code, audience: 'hub', payload }))).toMatchObject({
      accepted: true,
    });
  }

  /** The node's signed result: exactly its run's provenance. */
  async function finish(code: string, task: TaskPayload, job: { total: number; done: number; failed: number }) {
    const node = scripted(code);
    const payload = node.resultPayload(task, {
      aggregate: { modelSha256: model.sha256, executionProvider: 'cpu', facetVersion: 'test', job: { status: 'SUCCEEDED', ...job } },
    });
    payload.manifest.modelSha256 = model.sha256;
    expect(await node.submit(node.sign(payload))).toMatchObject({ accepted: true });
  }

  const siteRow = (page: Page, id: string, code: string) => page.locator(`[data-testid=fedjob-${id}] tr[data-site=${code}]`);
  const waitForSite = (page: Page, id: string, code: string, state: string) =>
    page.waitForSelector(`[data-testid=fedjob-${id}] tr[data-site=${code}][data-state=${state}]`, { timeout: 20_000 });

  it("starts a federated job from the dashboard and follows each site's row to FINISHED live", async () => {
    const { page, outside } = await signIn(browser, hub.url, engineer, '#/jobs');
    await page.waitForSelector(`select[name=federated-model] option[value="${model.id}"]`, { state: 'attached' });
    // A hub runs no job of its own: no local start form, no local jobs table.
    expect(await page.locator('[data-testid=jobs-table]').count()).toBe(0);
    await page.selectOption('select[name=federated-model]', model.id);
    await page.fill('input[name=federated-sites]', 'NORTH, SOUTH');
    await page.check('input[name=federated-modality-XR]');
    await page.click('.start-federated-job button[type=submit]');
    const body = page.locator('[data-testid^=fedjob-]').first();
    await body.waitFor();
    const id = (await body.getAttribute('data-testid'))!.slice('fedjob-'.length);
    // What the page started is what the API holds.
    const started = (await gqlOk(hub.url, engineer, `query ($id: ID!) { federatedInference(id: $id) { modalities model { sha256 } sites { site } } }`, { id }))
      .federatedInference;
    expect(started).toEqual({ modalities: ['XR'], model: { sha256: model.sha256 }, sites: [{ site: 'NORTH' }, { site: 'SOUTH' }] });
    expect(await body.getAttribute('data-status')).toBe('RUNNING');
    await waitForSite(page, id, 'NORTH', 'WAITING');
    await waitForSite(page, id, 'SOUTH', 'WAITING');
    // From here on the list is never answered (its reads are held): only the job's subscription can move the rows.
    const isListRead = (body: string | null) => /query FederatedInferences\b/.test(body ?? '');
    let held = 0;
    await page.route('**/graphql', async (route) => {
      if (isListRead(route.request().postData())) held += 1;
      else await route.continue();
    });

    const north = await claimTask('NORTH', id);
    await report('NORTH', north, { sequence: 1, done: 10 });
    await waitForSite(page, id, 'NORTH', 'RUNNING');
    const row = siteRow(page, id, 'NORTH');
    await page.waitForFunction(
      `document.querySelector('[data-testid=fedjob-${id}] tr[data-site=NORTH] [data-testid=counts]')?.textContent === '10 done / 0 failed / 40'`,
    );
    expect(await row.locator('td').nth(4).textContent()).toBe('2.0/s');
    expect(await row.locator('td').nth(5).textContent()).toBe('15 s');
    expect(await row.locator('td').nth(6).textContent()).toBe('cpu');
    expect(await row.locator('progress').getAttribute('value')).toBe('25');
    const south = await claimTask('SOUTH', id);
    await report('SOUTH', south, { sequence: 1, total: 30, done: 6, failed: 0, elapsedSeconds: 3 });
    await waitForSite(page, id, 'SOUTH', 'RUNNING');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'jobs-federated-running.png'), fullPage: true });

    await report('NORTH', north, { sequence: 2, done: 40, elapsedSeconds: 20 });
    await finish('NORTH', north, { total: 40, done: 40, failed: 0 });
    await waitForSite(page, id, 'NORTH', 'FINISHED');
    await report('SOUTH', south, { sequence: 2, total: 30, done: 29, failed: 1, elapsedSeconds: 15 });
    await finish('SOUTH', south, { total: 30, done: 29, failed: 1 });
    await page.waitForSelector(`[data-testid=fedjob-${id}][data-status=COMPLETE]`, { timeout: 20_000 });
    await waitForSite(page, id, 'SOUTH', 'FINISHED');
    expect(await siteRow(page, id, 'SOUTH').locator('[data-testid=counts]').textContent()).toBe('29 done / 1 failed / 30');
    expect(await body.locator('tr.federated-job [data-testid=counts]').textContent()).toBe('69 done / 1 failed / 70');
    expect(await body.locator('[data-testid=sites-summary]').textContent()).toBe('2 of 2 finished');
    expect(await readInference(id)).toMatchObject({ status: 'COMPLETE', total: { done: 69, failed: 1, total: 70, finished: 2 } });
    expect(await body.locator('button', { hasText: 'Cancel' }).count()).toBe(0);
    if (held === 0) await page.waitForRequest((request) => isListRead(request.postData()));
    await page.screenshot({ path: path.join(SCREENSHOTS, 'jobs-federated.png'), fullPage: true });
    expect(outside).toEqual([]);
    await page.context().close();
  });

  it("cancels a federated job from the dashboard: the API stops it and the site's confirmation shows", async () => {
    const id = (await gqlOk(hub.url, engineer, START_INFERENCE, { input: { modelVersionId: model.id, sites: ['NORTH'] } })).startFederatedInference.id;
    const task = await claimTask('NORTH', id);
    await report('NORTH', task, { sequence: 1, done: 3 });
    const { page } = await signIn(browser, hub.url, engineer, '#/jobs');
    await waitForSite(page, id, 'NORTH', 'RUNNING');
    await page.locator(`[data-testid=fedjob-${id}] button`, { hasText: 'Cancel' }).click();
    const cancelled = await eventually(
      () => readInference(id),
      (job) => job.status === 'CANCELLED',
    );
    expect(cancelled.sites).toEqual([expect.objectContaining({ site: 'NORTH', state: 'CANCELLING' })]);
    await page.waitForSelector(`[data-testid=fedjob-${id}][data-status=CANCELLED]`);
    await waitForSite(page, id, 'NORTH', 'CANCELLING');
    expect(await page.locator(`[data-testid=fedjob-${id}] button`, { hasText: 'Cancel' }).count()).toBe(0);
    // The node hears it in its next claim and confirms: the page follows without a reload.
    expect((await scripted('NORTH').claim(0, { working: [id] })).cancelled).toEqual([id]);
    await report('NORTH', task, { sequence: 2, phase: 'CANCELLED', done: 3 });
    await waitForSite(page, id, 'NORTH', 'CANCELLED');
    expect(await siteRow(page, id, 'NORTH').locator('[data-testid=reason]').textContent()).toBe('CANCELLED');
    await page.context().close();
  });

  it('shows a statistician the federated jobs without start or cancel, an admin with both, and refuses a role that may not see them', async () => {
    const id = (await gqlOk(hub.url, engineer, START_INFERENCE, { input: { modelVersionId: model.id, sites: ['SOUTH'] } })).startFederatedInference.id;
    // The API's rules, which the page mirrors: a statistician reads but may neither start nor cancel; a HUB token reads nothing.
    expect(codeOf(await gql(hub.url, hub.token, START_INFERENCE, { input: { modelVersionId: model.id } }))).toBe('FORBIDDEN');
    expect(codeOf(await gql(hub.url, hub.token, `mutation ($id: ID!) { cancelFederatedInference(id: $id) { id } }`, { id }))).toBe('FORBIDDEN');
    expect(codeOf(await gql(hub.url, hubRole, `{ federatedInferences { id } }`))).toBe('FORBIDDEN');

    const { page, outside } = await signIn(browser, hub.url, hub.token, '#/jobs');
    await waitForSite(page, id, 'SOUTH', 'WAITING');
    expect(await page.locator(`[data-testid=fedjob-${id}]`).getAttribute('data-status')).toBe('RUNNING');
    expect(await page.locator('.start-federated-job').count()).toBe(0);
    expect(await page.locator('button', { hasText: 'Cancel' }).count()).toBe(0);
    // An ended job comes folded; its site rows open on demand.
    const ended = page.locator('[data-testid^=fedjob-][data-status=COMPLETE]').first();
    expect(await ended.locator('tr[data-site]').count()).toBe(0);
    await ended.locator('[data-testid=toggle-sites]').click();
    expect(await ended.locator('tr[data-site]').count()).toBe(2);
    // A job started elsewhere appears without a reload.
    const later = (await gqlOk(hub.url, engineer, START_INFERENCE, { input: { modelVersionId: model.id, sites: ['NORTH'] } })).startFederatedInference.id;
    await waitForSite(page, later, 'NORTH', 'WAITING');
    await page.context().close();

    // The federation view lists them too, each site's state live.
    const federation = await signIn(browser, hub.url, hub.token, '#/federation');
    await waitForSite(federation.page, id, 'SOUTH', 'WAITING');
    const task = await claimTask('SOUTH', id);
    await report('SOUTH', task, { sequence: 1, done: 5 });
    await waitForSite(federation.page, id, 'SOUTH', 'RUNNING');
    expect(await federation.page.locator('button', { hasText: 'Cancel' }).count()).toBe(0);
    await federation.page.screenshot({ path: path.join(SCREENSHOTS, 'federation-inference.png'), fullPage: true });
    await federation.page.context().close();
    expect([...outside, ...federation.outside]).toEqual([]);

    // An admin may do what an engineer does, and reads the registry: the form lists the members.
    const admin = (await hub.node.services.tokens.createApiToken(systemContext('test'), { name: 'hub admin', role: Role.ADMIN })).secret;
    const asAdmin = await signIn(browser, hub.url, admin, '#/jobs');
    await waitForSite(asAdmin.page, later, 'NORTH', 'WAITING');
    await asAdmin.page.waitForSelector('.start-federated-job .hint');
    expect(await asAdmin.page.locator('.start-federated-job .hint').textContent()).toBe('Members: NORTH, SOUTH');
    expect(await asAdmin.page.locator(`[data-testid=fedjob-${later}] button`, { hasText: 'Cancel' }).count()).toBe(1);
    await asAdmin.page.context().close();

    const other = await signIn(browser, hub.url, hubRole, '#/jobs');
    expect(await other.page.locator('[data-testid=refused]').textContent()).toMatch(/HUB role may not open this page/);
    expect(await other.page.locator('[data-testid=federated-jobs-table]').count()).toBe(0);
    await other.page.context().close();
    for (const job of [id, later]) await gqlOk(hub.url, engineer, `mutation ($id: ID!) { cancelFederatedInference(id: $id) { id } }`, { id: job });
  });
});
