import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Role } from '../../server/domain';
import { launchChromium, SCREENSHOTS, signIn } from '../helpers/browser';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const EXAMPLE = path.resolve(__dirname, '../../docs/examples/cohort');
const read = (file: string) => readFile(path.join(EXAMPLE, file), 'utf8');
const METRICS = `query ($input: MetricsInput!) { metrics(input: $input) { groups { pooled feature suppressed auc { value lower upper } f1 { value } } } }`;

/** The example cohort (docs/examples/cohort) uploaded from the upload page, then the metrics explorer over it. */
describe('the upload and metrics pages in Chromium', () => {
  const node = useTestNode();
  let browser: Browser;
  const tokens: Record<string, string> = {};
  let modelId: string;

  beforeAll(async () => {
    const factory = new Factory(node().services);
    tokens.admin = await factory.token(Role.ADMIN);
    const east = await factory.site('EAST');
    tokens.coordinator = await factory.token(Role.COORDINATOR, { site: east });
    tokens.engineer = await factory.token(Role.ENGINEER);
    tokens.statistician = await factory.token(Role.STATISTICIAN);
    for (const [code, role, slot] of [
      ['EAST-R1', 'READER', 'FIRST'],
      ['EAST-R2', 'READER', 'SECOND'],
      ['EAST-SEN', 'SENIOR', null],
    ]) {
      const { createReader } = await gqlOk(node().url, tokens.coordinator, `mutation ($input: CreateReaderInput!) { createReader(input: $input) { id } }`, {
        input: { code, role, yearsOfExperience: 10, siteId: east.id, slot },
      });
      if (code === 'EAST-SEN') tokens.senior = await factory.token(Role.READER, { reader: { id: createReader.id } as never });
    }
    browser = await launchChromium();
  });

  it('uploads the example cohort folder from the upload page, with progress and a report, and sends only the rest after a reload', async () => {
    const { page, outside } = await signIn(browser, node().url, tokens.coordinator, '#/upload');
    await page.setInputFiles('input[name=folder]', EXAMPLE);
    expect(await page.locator('[data-testid=chosen]').textContent()).toMatch(/^\d+ file\(s\)$/);
    await page.click('button:has-text("Upload to EAST")');
    await page.waitForSelector('[data-testid=upload-summary]', { timeout: 60_000 });
    const report = async () =>
      (await page
        .locator('[data-testid=upload-report] tbody tr')
        .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)))) as string[][];
    const first = await report();
    const manifests = ['patients.csv', 'joint-images.csv', 'readings.csv', 'reference.csv'];
    // The CLI's order: patients, the DICOM, then joint images, readings and the reference standard.
    expect(first.map(([kind, source, status]) => [kind, source, status])).toEqual([
      ['patients', 'patients.csv', 'stored'],
      ['dicom', 'CT/IM0001.dcm', 'stored'],
      ['dicom', 'MR/IM0001.dcm', 'stored'],
      ['joint-images', 'joint-images.csv', 'stored'],
      ['readings', 'readings.csv', 'stored'],
      ['reference', 'reference.csv', 'stored'],
    ]);
    expect(
      await page
        .locator('progress[aria-label="upload progress"]')
        .evaluate((p) => (p as unknown as { value: number; max: number }).value === (p as unknown as { max: number }).max),
    ).toBe(true);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'upload.png'), fullPage: true });
    // What the page reported is what the server holds.
    const held = await gqlOk(node().url, tokens.coordinator, `{ patients { totalCount } instances { totalCount } referenceImports { totalCount } }`);
    expect(held).toEqual({ patients: { totalCount: 3 }, instances: { totalCount: 2 }, referenceImports: { totalCount: 1 } });

    // A drop is read like the picker: hidden files left out (a browser's folder drop keeps the paths below the folder).
    // Browser code as text: the tests' TypeScript has no DOM types.
    const dropped = await page.evaluateHandle(`(() => {
      const transfer = new DataTransfer();
      for (const name of ['patients.csv', 'IM0001.dcm', '.DS_Store']) transfer.items.add(new File(['x'], name));
      return transfer;
    })()`);
    await page.dispatchEvent('[data-testid=drop-zone]', 'drop', { dataTransfer: dropped });
    await page.waitForFunction(`document.querySelector('[data-testid=chosen]')?.textContent === '2 file(s)'`);

    await page.reload();
    await page.waitForSelector('[data-testid=viewer]'); // the token survives a reload (sessionStorage)
    await page.setInputFiles('input[name=folder]', EXAMPLE);
    await page.click('button:has-text("Upload to EAST")');
    await page.waitForSelector('[data-testid=upload-summary]');
    const second = await report();
    expect(second.every(([, , status]) => status === 'skipped')).toBe(true);
    expect(second.map(([, source]) => source).sort()).toEqual(['CT/IM0001.dcm', 'MR/IM0001.dcm', ...manifests].sort());
    expect(outside).toEqual([]);
    await page.context().close();

    const reference = (await gqlOk(node().url, tokens.coordinator, `{ referenceImports { nodes { id } } }`)).referenceImports.nodes[0];
    await gqlOk(node().url, tokens.senior, `mutation ($id: ID!) { confirmReferenceImport(id: $id) { grades } }`, { id: reference.id });
    modelId = (await gqlOk(node().url, tokens.engineer, `mutation { registerExternalModel(input: { name: "example-model", version: "1.0.0" }) { id } }`))
      .registerExternalModel.id;
    await gqlOk(node().url, tokens.engineer, `mutation ($id: ID!, $csv: String!) { importPredictions(modelVersionId: $id, csv: $csv) { stored } }`, {
      id: modelId,
      csv: await read('predictions.csv'),
    });
  });

  afterAll(async () => {
    await browser?.close();
  });

  /** Signs in, opens Metrics, picks the model and groups by feature alone, and computes. */
  async function compute(token: string): Promise<Page> {
    const { page, outside } = await signIn(browser, node().url, token, '#/metrics');
    await page.selectOption('select[name=rater]', `model:${modelId}`);
    await page.uncheck('input[name=group-SITE]');
    await page.click('.metrics-form button[type=submit]');
    await page.waitForSelector('[data-testid=metrics-table] tbody tr');
    expect(outside).toEqual([]);
    return page;
  }

  it("shows the model's metrics with intervals as the API gives them, and draws the forest plot, ROC curves and heatmaps", async () => {
    const page = await compute(tokens.admin);
    const api = (await gqlOk(node().url, tokens.admin, METRICS, { input: { rater: { modelVersionId: modelId }, groupBy: ['FEATURE'], clustered: true } }))
      .metrics.groups as Array<{
      pooled: boolean;
      feature: string | null;
      suppressed: boolean;
      auc: { value: number | null; lower: number | null; upper: number | null };
      f1: { value: number | null };
    }>;
    const rows = page.locator('[data-testid=metrics-table] tbody tr');
    expect(await rows.count()).toBe(api.length);
    const pooled = api.find((g) => g.pooled)!;
    const pooledRow = page.locator('[data-testid=metrics-table] tbody tr.pooled');
    expect(await pooledRow.textContent()).toContain(`${pooled.auc.value!.toFixed(3)} [${pooled.auc.lower!.toFixed(3)}, ${pooled.auc.upper!.toFixed(3)}]`);

    // The forest plot: one dot per AUC or F1 the API gave a value, the pooled row among them.
    const forest = page.locator('[data-testid=chart-forest] svg');
    await forest.waitFor();
    const values = api.flatMap((g) => [g.auc?.value, g.f1?.value]).filter((v) => v !== null && v !== undefined);
    expect(await forest.locator('circle').count()).toBe(values.length);
    // ROC curves: one line per feature with a curve, and the two readers' operating points.
    const roc = page.locator('[data-testid=chart-roc] svg');
    await roc.waitFor();
    await page.waitForSelector('[data-testid=chart-roc] svg circle');
    const features = api.filter((g) => g.feature !== null && !g.suppressed).length;
    expect(await roc.locator('path[d]').count()).toBeGreaterThanOrEqual(features);
    expect(await roc.textContent()).toMatch(/EAST-R1/);
    expect(await roc.textContent()).toMatch(/EAST-R2/);
    await page.locator('[data-testid=chart-confusion] svg').waitFor();
    await page.locator('[data-testid=chart-agreement] svg').waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'metrics.png'), fullPage: true });

    // Exports: the CSV of the table and the plot as SVG and PNG, made in the browser.
    const csv = await download(page, () => page.click('button:has-text("Export CSV")'));
    const lines = csv.toString('utf8').trim().split('\r\n');
    expect(lines[0]).toMatch(/^site,feature,modality,level,side,split,pooled,suppressed,suppression,cases,patients,auc,auc_lower,auc_upper,auc_method/);
    expect(lines).toHaveLength(api.length + 1);
    const svg = (await download(page, () => page.click('[data-testid=chart-forest] button:has-text("SVG")'))).toString('utf8');
    expect(svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('<circle');
    const png = await download(page, () => page.click('[data-testid=chart-forest] button:has-text("PNG")'));
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    await page.context().close();
  });

  it('shows the groups withheld from a statistician as suppressed, as the API withholds them', async () => {
    const page = await compute(tokens.statistician);
    const api = (
      await gqlOk(node().url, tokens.statistician, METRICS, { input: { rater: { modelVersionId: modelId }, groupBy: ['FEATURE'], clustered: true } })
    ).metrics.groups as Array<{ suppressed: boolean }>;
    const withheld = api.filter((g) => g.suppressed).length;
    expect(withheld).toBeGreaterThan(0); // three patients: under the default minimum group size
    expect(await page.locator('[data-testid=metrics-table] tbody tr[data-suppressed=true]').count()).toBe(withheld);
    expect(await page.locator('[data-testid=metrics-table] tbody tr[data-suppressed=true]').first().textContent()).toMatch(/suppressed/);
    await page.context().close();
  });

  async function download(page: Page, click: () => Promise<void>): Promise<Buffer> {
    const [file] = await Promise.all([page.waitForEvent('download'), click()]);
    return readFile((await file.path())!);
  }
});
