import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { drawFacetSlice, PHANTOM_UID_ROOT, phantomPart10, prng, sampleJointGrades, type FacetSlice } from '../../server/demo/phantoms';
import { readPart10 } from '../../server/dicom/reader';
import { Role } from '../../server/domain';
import { decodeFrame } from '../../server/inference/pixels';
import { launchChromium, SCREENSHOTS, signIn } from '../helpers/browser';
import { fixture, READABLE } from '../helpers/dicom-fixtures';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { stow } from '../helpers/stow';

const MRN = 'MRN-7734021'; // the patient of every identified fixture
const FIXTURE_ROI = { x: 8, y: 8, width: 40, height: 40 };
const IMAGES = `{ jointImages(first: 100) { nodes { joint { level side } roiX roiY roiWidth roiHeight instance { sopInstanceUid transferSyntaxUid
  series { modality seriesInstanceUid study { studyInstanceUid } } } } } }`;

interface Shot {
  width: number;
  height: number;
  /** Canvas pixels per CSS pixel. */
  ratio: number;
  grey: number[];
}
interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The viewport canvas as drawn (red channel: the image is grey), read through a copy. In the page's own words (a
 * string): the tests are type-checked without the DOM's types.
 */
const shoot = (page: Page): Promise<Shot> =>
  page.evaluate(`(() => {
    const canvas = document.querySelector('[data-testid=viewport-element] canvas');
    const copy = document.createElement('canvas');
    copy.width = canvas.width;
    copy.height = canvas.height;
    const context = copy.getContext('2d');
    context.drawImage(canvas, 0, 0);
    const rgba = context.getImageData(0, 0, copy.width, copy.height).data;
    const grey = Array.from({ length: copy.width * copy.height }, (_, i) => rgba[4 * i]);
    return { width: copy.width, height: copy.height, ratio: copy.width / canvas.clientWidth, grey };
  })()`);

/** Waits until the outline's attribute passes `test`, a JavaScript condition on `value`. */
const outlineUntil = (page: Page, attribute: string, test: string) =>
  page.waitForFunction(
    `(() => { const value = Number(document.querySelector('[data-testid=roi-outline]')?.getAttribute('${attribute}')); return ${test}; })()`,
  );

const outline = async (page: Page): Promise<Rect> => {
  const rect = page.locator('[data-testid=roi-outline]');
  const [x, y, width, height] = await Promise.all(['x', 'y', 'width', 'height'].map(async (a) => Number(await rect.getAttribute(a))));
  return { x, y, width, height };
};

/** Pearson's r. */
function correlation(a: number[], b: number[]): number {
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const ma = mean(a);
  const mb = mean(b);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

/**
 * How well the canvas shows an image of `columns` x `rows` values, placed where the region's outline says: the
 * outline is the region in image pixels, so it gives the image's scale and offset on the canvas. Each image pixel
 * visible on the canvas is paired with the canvas pixel at its centre. Returns r and the share of pixels visible.
 */
function match(shot: Shot, rect: Rect, roi: Rect, expected: ArrayLike<number>, columns: number, rows: number): { r: number; visible: number } {
  const scale = rect.width / roi.width;
  const ox = rect.x - roi.x * scale;
  const oy = rect.y - roi.y * scale;
  const drawn: number[] = [];
  const wanted: number[] = [];
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < columns; i++) {
      const px = Math.floor((ox + (i + 0.5) * scale) * shot.ratio);
      const py = Math.floor((oy + (j + 0.5) * scale) * shot.ratio);
      if (px < 0 || py < 0 || px >= shot.width || py >= shot.height) continue;
      drawn.push(shot.grey[py * shot.width + px]);
      wanted.push(expected[j * columns + i]);
    }
  }
  return { r: correlation(drawn, wanted), visible: drawn.length / (columns * rows) };
}

/** The modality values of a phantom through its window: what a linear VOI maps to grey, up to scale. */
const windowed = (slice: FacetSlice, window = slice.window) =>
  Array.from(slice.pixels, (stored) => {
    const value = stored * slice.rescaleSlope + slice.rescaleIntercept;
    return Math.min(window.center + window.width / 2, Math.max(window.center - window.width / 2, value));
  });

const meanAbsoluteDifference = (a: number[], b: number[]) => a.reduce((s, x, i) => s + Math.abs(x - b[i]), 0) / a.length;

/** The Part 10 bytes WADO-RS answers for an instance (the first part of the multipart/related body). */
async function retrieve(url: string, token: string, uids: { study: string; series: string; instance: string }): Promise<Buffer> {
  const response = await fetch(`${url}/dicomweb/studies/${uids.study}/series/${uids.series}/instances/${uids.instance}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(response.status).toBe(200);
  const boundary = /boundary=([^;]+)/.exec(response.headers.get('content-type') ?? '')![1];
  const body = Buffer.from(await response.arrayBuffer());
  const start = body.indexOf('\r\n\r\n') + 4;
  return body.subarray(start, body.indexOf(`\r\n--${boundary}--`));
}

/**
 * The reader's joint image in the cornerstone3D viewport of the reading page, in Debian's Chromium without a GPU
 * (cornerstone's CPU renderer): the right pixels under the region's outline, window/level, zoom and pan by mouse,
 * every transfer syntax the server stores decoded in the browser, and keyboard grading untouched by the viewport.
 */
describe('the joint image viewer in Chromium', () => {
  const node = useTestNode();
  let browser: Browser;
  let reader: string;
  let coordinator: string;
  let admin: string;
  let readerId: string;
  // A demo phantom (server/demo/phantoms.ts): a CT slice whose every pixel the test knows.
  const slice = drawFacetSlice('CT', sampleJointGrades(prng(3)), sampleJointGrades(prng(4)), prng(5));
  const phantomUid = `${PHANTOM_UID_ROOT}.77.3`;
  // The demo's other modalities: an X-ray (DX, no image position) and an MR slice, 12-bit unsigned.
  const others = {
    XR: drawFacetSlice('XR', sampleJointGrades(prng(6)), sampleJointGrades(prng(7)), prng(8)),
    MR: drawFacetSlice('MR', sampleJointGrades(prng(9)), sampleJointGrades(prng(10)), prng(11)),
  };
  const otherUid = (modality: string, part: number) => `${PHANTOM_UID_ROOT}.78.${modality === 'XR' ? 1 : 2}.${part}`;

  beforeAll(async () => {
    const factory = new Factory(node().services);
    const site = await factory.site('EAST');
    coordinator = await factory.token(Role.COORDINATOR, { site });
    admin = await factory.token(Role.ADMIN);
    const first = await factory.readerWithToken(site);
    reader = first.token;
    readerId = first.reader.id;
    await gqlOk(node().url, coordinator, `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored } }`, {
      csv: `site,patient_id\nEAST,${MRN}\n`,
    });
    const phantom = phantomPart10({
      patientId: MRN,
      patientName: 'Phantom^CT',
      studyInstanceUid: `${PHANTOM_UID_ROOT}.77.1`,
      seriesInstanceUid: `${PHANTOM_UID_ROOT}.77.2`,
      sopInstanceUid: phantomUid,
      seriesNumber: 1,
      instanceNumber: 1,
      slice,
    });
    const otherPhantoms = Object.entries(others).map(([modality, other]) =>
      phantomPart10({
        patientId: MRN,
        patientName: 'Phantom^Other',
        studyInstanceUid: otherUid(modality, 1),
        seriesInstanceUid: otherUid(modality, 2),
        sopInstanceUid: otherUid(modality, 3),
        seriesNumber: 1,
        instanceNumber: 1,
        slice: other,
      }),
    );
    const files = [phantom, ...otherPhantoms, ...READABLE.map(([file]) => fixture(file)), fixture('identified-mr.dcm'), fixture('identified-dx-8bit.dcm')];
    expect(
      (
        await stow(
          node().url,
          coordinator,
          files.map((bytes) => ({ bytes })),
        )
      ).status,
    ).toBe(202);
    const roi = (r: Rect) => `${r.x},${r.y},${r.width},${r.height}`;
    const fixtureRows = [...READABLE.map(([file]) => file), 'identified-mr.dcm', 'identified-dx-8bit.dcm'].map((file) => {
      const uid = readPart10(fixture(file)).dataset;
      return `${MRN},L4_L5,LEFT,${new TextDecoder().decode(uid.get(0x00080018)!.bytes).replace(/\0/g, '').trim()},0,${roi(FIXTURE_ROI)}`;
    });
    const csv = [
      'patient_id,level,side,sop_instance_uid,frame,x,y,width,height',
      `${MRN},L3_L4,LEFT,${phantomUid},0,${roi(slice.rois.LEFT)}`,
      `${MRN},L3_L4,RIGHT,${phantomUid},0,${roi(slice.rois.RIGHT)}`,
      ...fixtureRows,
      ...Object.entries(others).map(([modality, other]) => `${MRN},L5_S1,LEFT,${otherUid(modality, 3)},0,${roi(other.rois.LEFT)}`),
    ].join('\n');
    await gqlOk(node().url, coordinator, `mutation ($site: ID!, $csv: String!) { importJointImagesManifest(siteId: $site, csv: $csv) { stored } }`, {
      site: site.id,
      csv,
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  const pages: Array<{ outside: string[]; errors: string[] }> = [];
  afterEach(() => {
    // The codecs, the decoding worker and its WASM come from this server only, and nothing throws on the way.
    for (const { outside, errors } of pages.splice(0)) expect({ outside, errors }).toEqual({ outside: [], errors: [] });
  });

  async function readingPage(token = reader): Promise<Page> {
    const { page, outside } = await signIn(browser, node().url, token, '#/reading');
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    pages.push({ outside, errors });
    return page;
  }

  it('draws the phantom under its region, and window/level, zoom and pan change what is drawn while the outline follows', async () => {
    const page = await readingPage();
    await page.waitForSelector('[data-testid=joint-viewport][data-state=loaded]', { timeout: 120_000 });
    expect(await page.locator('[data-testid=worklist] li.active').textContent()).toMatch(/L3_L4 LEFT CT/);
    const roi = slice.rois.LEFT;
    const expected = windowed(slice);
    const before = await shoot(page);
    const fitted = await outline(page);
    // The image fills the viewport's width or height, aspect kept: the outline has that scale.
    const fit = Math.min(before.width / before.ratio / slice.columns, before.height / before.ratio / slice.rows);
    expect(fitted.width / roi.width).toBeCloseTo(fit, 1);
    expect(fitted.height / fitted.width).toBeCloseTo(roi.height / roi.width, 2);
    const drawn = match(before, fitted, roi, expected, slice.columns, slice.rows);
    expect(drawn.visible).toBe(1);
    expect(drawn.r).toBeGreaterThan(0.95);
    // Beside the image (the viewport is wider than 2:1 or taller), the background is black.
    expect(Math.max(...before.grey.slice(0, 4))).toBe(0);
    expect(await page.locator('[data-testid=window]').textContent()).toBe(`W ${slice.window.width} · L ${slice.window.center}`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'reading-viewer.png'), fullPage: true });

    const box = (await page.locator('[data-testid=viewport-element]').boundingBox())!;
    const centre = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    // Zoom: the wheel over the image.
    await page.mouse.move(centre.x, centre.y);
    for (let notch = 0; notch < 5; notch++) await page.mouse.wheel(0, -120);
    await outlineUntil(page, 'width', `Math.abs(value / ${fitted.width} - 1) > 0.2`);
    const zoomed = await outline(page);
    const afterZoom = await shoot(page);
    expect(meanAbsoluteDifference(afterZoom.grey, before.grey)).toBeGreaterThan(5);
    const zoomedMatch = match(afterZoom, zoomed, roi, expected, slice.columns, slice.rows);
    expect(zoomed.width).toBeGreaterThan(fitted.width); // the wheel away from the reader zooms in
    expect(zoomedMatch.visible).toBeLessThan(1);
    expect(zoomedMatch.r).toBeGreaterThan(0.95);

    // Pan: the middle button drags the image, and the outline with it.
    await page.mouse.move(centre.x, centre.y);
    await page.mouse.down({ button: 'middle' });
    await page.mouse.move(centre.x + 40, centre.y + 25, { steps: 8 });
    await page.mouse.up({ button: 'middle' });
    await outlineUntil(page, 'x', `value > ${zoomed.x + 20}`);
    const panned = await outline(page);
    expect(panned.x - zoomed.x).toBeCloseTo(40, -1);
    expect(panned.y - zoomed.y).toBeCloseTo(25, -1);
    const afterPan = await shoot(page);
    expect(match(afterPan, panned, roi, expected, slice.columns, slice.rows).r).toBeGreaterThan(0.95);

    // Window/level: the left button; the outline stays, the grey levels change, the readout says the new window.
    await page.mouse.move(centre.x, centre.y);
    await page.mouse.down();
    await page.mouse.move(centre.x + 60, centre.y + 80, { steps: 8 });
    await page.mouse.up();
    await page.waitForFunction(
      `document.querySelector('[data-testid=window]')?.textContent !== ${JSON.stringify(`W ${slice.window.width} · L ${slice.window.center}`)}`,
    );
    const afterLevel = await shoot(page);
    expect(await outline(page)).toEqual(panned);
    expect(meanAbsoluteDifference(afterLevel.grey, afterPan.grey)).toBeGreaterThan(5);
    const [width, center] = (await page.locator('[data-testid=window]').textContent())!.match(/-?\d+/g)!.map(Number);
    expect(match(afterLevel, panned, roi, windowed(slice, { width, center }), slice.columns, slice.rows).r).toBeGreaterThan(0.9);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'reading-viewer-adjusted.png'), fullPage: true });

    // The left button can drive zoom instead; Reset brings back the fitted image and the object's window.
    await page.click('[data-testid=joint-viewport] button:has-text("Zoom")');
    expect(await page.locator('[data-testid=joint-viewport] button:has-text("Zoom")').getAttribute('aria-pressed')).toBe('true');
    await page.click('[data-testid=joint-viewport] button:has-text("Reset")');
    await outlineUntil(page, 'width', `Math.abs(value - ${fitted.width}) < 0.5`);
    expect(await page.locator('[data-testid=window]').textContent()).toBe(`W ${slice.window.width} · L ${slice.window.center}`);
    await page.mouse.move(centre.x, centre.y);
    await page.mouse.down();
    await page.mouse.move(centre.x, centre.y - 80, { steps: 8 });
    await page.mouse.up();
    await outlineUntil(page, 'width', `Math.abs(value - ${fitted.width}) > 2`);
    expect(await page.locator('[data-testid=window]').textContent()).toBe(`W ${slice.window.width} · L ${slice.window.center}`);

    // The viewport never holds the focus: the keys grade the highlighted feature, and the reading lands.
    expect(await page.evaluate(`document.activeElement?.closest('[data-testid=viewport-element]') ?? null`)).toBeNull();
    await page.keyboard.press('1');
    await page.waitForSelector('[data-testid=grading] tr:first-child [data-testid=own-grade]:has-text("1")');
    const readings = (await gqlOk(node().url, reader, `{ readings(first: 10) { nodes { modality grade joint { level side } } } }`)).readings.nodes;
    expect(readings).toEqual([{ modality: 'CT', grade: 1, joint: { level: 'L3_L4', side: 'LEFT' } }]);
    await page.context().close();
  });

  it("shows WADO-RS's refusal in place of the image, and the page keeps working", async () => {
    const created = (
      await gqlOk(node().url, admin, `mutation ($input: CreateApiTokenInput!) { createApiToken(input: $input) { secret token { id } } }`, {
        input: { name: 'viewer-revoked', role: 'READER', readerId },
      })
    ).createApiToken;
    const page = await readingPage(created.secret);
    await page.waitForSelector('[data-testid=joint-viewport][data-state=loaded]', { timeout: 120_000 });
    // The token is revoked while the page is open: the next image's retrieval is refused.
    await gqlOk(node().url, admin, `mutation ($id: ID!) { revokeApiToken(id: $id) { id } }`, { id: created.token.id });
    await page.click('[data-testid=worklist] button:has-text("L4_L5 LEFT MR")');
    await page.waitForSelector('[data-testid=joint-viewport][data-state=error]', { timeout: 60_000 });
    expect(await page.locator('[data-testid=joint-viewport] [role=alert]').textContent()).toMatch(/^UNAUTHENTICATED: /);
    expect(await page.locator('[data-testid=roi-outline]').count()).toBe(0);
    expect(await page.locator('[data-testid=worklist] li.active').textContent()).toMatch(/L4_L5 LEFT MR/);
    await page.context().close();
  });

  it("draws the demo's X-ray and MR phantoms under their regions", async () => {
    const images = (await gqlOk(node().url, reader, IMAGES)).jointImages.nodes as Array<{
      joint: { level: string };
      instance: { sopInstanceUid: string; series: { modality: string } };
    }>;
    const page = await readingPage();
    for (const [modality, other] of Object.entries(others)) {
      const uid = images.find((i) => i.joint.level === 'L5_S1' && i.instance.series.modality === modality)!.instance.sopInstanceUid;
      await page.click(`[data-testid=worklist] button:has-text("L5_S1 LEFT ${modality}")`);
      await page.waitForSelector(`[data-testid=joint-viewport][data-state=loaded][data-instance="${uid}"]`, { timeout: 60_000 });
      const drawn = match(await shoot(page), await outline(page), other.rois.LEFT, windowed(other), other.columns, other.rows);
      expect({ modality, visible: drawn.visible, good: drawn.r > 0.95 }).toEqual({ modality, visible: 1, good: true });
      expect(await page.locator('[data-testid=window]').textContent()).toBe(`W ${other.window.width} · L ${other.window.center}`);
    }
    await page.context().close();
  });

  it('decodes every transfer syntax the server stores, and shows each image of a joint', async () => {
    const images = (await gqlOk(node().url, reader, IMAGES)).jointImages.nodes as Array<{
      joint: { level: string; side: string };
      instance: {
        sopInstanceUid: string;
        transferSyntaxUid: string;
        series: { modality: string; seriesInstanceUid: string; study: { studyInstanceUid: string } };
      };
    }>;
    const fixtures = images.filter((i) => i.joint.level === 'L4_L5');
    expect(new Set(fixtures.map((i) => i.instance.transferSyntaxUid)).size).toBe(new Set(READABLE.map(([, name]) => name)).size);
    const page = await readingPage();
    for (const modality of ['CT', 'MR', 'XR']) {
      const ofModality = fixtures.filter((i) => i.instance.series.modality === modality);
      await page.click(`[data-testid=worklist] button:has-text("L4_L5 LEFT ${modality}")`);
      for (let k = 0; k < ofModality.length; k++) {
        if (ofModality.length > 1) await page.click(`.image-choice button:has-text("Image ${k + 1}")`);
        const shownUid = await page
          .locator('[data-testid=joint-viewport][data-state=loaded]')
          .getAttribute('data-instance', { timeout: 60_000 })
          .catch(async () => {
            throw new Error(`not loaded: ${await page.locator('[data-testid=joint-viewport]').textContent()}`);
          });
        await page.waitForSelector(`[data-testid=joint-viewport][data-state=loaded][data-instance="${shownUid}"]`);
        const image = ofModality.find((i) => i.instance.sopInstanceUid === shownUid)!;
        const { instance } = image;
        const bytes = await retrieve(node().url, reader, {
          study: instance.series.study.studyInstanceUid,
          series: instance.series.seriesInstanceUid,
          instance: instance.sopInstanceUid,
        });
        const frame = await decodeFrame(readPart10(bytes), 0);
        const shot = await shoot(page);
        const drawn = match(shot, await outline(page), FIXTURE_ROI, frame.values, frame.width, frame.height);
        expect({ syntax: instance.transferSyntaxUid, visible: drawn.visible, good: drawn.r > 0.9 }).toEqual({
          syntax: instance.transferSyntaxUid,
          visible: 1,
          good: true,
        });
      }
    }
    await page.context().close();
  });
});
