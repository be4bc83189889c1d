/**
 * WADO-RS rendering off the event loop, over the real server with one render thread and a queue of three: the
 * server answers /healthz while renders are in the pool, a full queue answers 503 SERVICE_UNAVAILABLE with
 * Retry-After, and the rendered bytes are those renderFrame makes in this process.
 */
import { Role } from '../../server/domain';
import { readPart10 } from '../../server/dicom/reader';
import { Instance } from '../../server/entities';
import { renderFrame } from '../../server/inference/render';
import { systemContext } from '../../server/services';
import { useTestNode } from '../helpers/lifecycle';
import { stow } from '../helpers/stow';
import { syntheticCtSeries, SYNTHETIC_PATIENT_ID } from '../helpers/synthetic-dicom';

describe('WADO-RS rendered on the worker pool', () => {
  const node = useTestNode({ render: { threads: 1, maxQueue: 3 } });
  let token: string;
  let urls: string[];
  let expectedJpeg: Map<string, Buffer>;

  beforeAll(async () => {
    const { services } = node();
    const ctx = systemContext('test');
    const site = await services.sites.createSite(ctx, { code: 'POOL', name: 'Pool' });
    await services.manifests.importPatients(ctx, `site,patient_id\nPOOL,${SYNTHETIC_PATIENT_ID}\n`);
    token = (await services.tokens.createApiToken(ctx, { name: 'pool', role: Role.COORDINATOR, siteId: site.id })).secret;
    const answer = await stow(
      node().url,
      token,
      syntheticCtSeries(8, 512, '1').map((bytes) => ({ bytes })),
    );
    expect(answer.failed).toEqual([]);
    urls = answer.stored.map((s: any) => `${s['00081190'].Value[0]}/rendered`);
    expectedJpeg = new Map();
    for (const row of await node().dataSource.getRepository(Instance).find()) {
      const url = urls.find((u) => u.includes(`/instances/${row.sopInstanceUid}/`)) as string;
      expectedJpeg.set(url, await renderFrame(readPart10(await services.objects.read(row.sha256)), 0, 'image/jpeg'));
    }
  });

  const render = (url: string) => fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'image/jpeg' } });
  const untilInFlight = async (n: number) => {
    while (node().services.renderPool.inFlight < n) await new Promise((resolve) => setImmediate(resolve));
  };

  it('answers /healthz, issued while four JPEG renders are in the pool, before the last of them', async () => {
    const finished: string[] = [];
    const renders = urls.slice(0, 4).map(async (url) => {
      const response = await render(url);
      const body = Buffer.from(await response.arrayBuffer());
      finished.push('render');
      expect({ status: response.status, same: body.equals(expectedJpeg.get(url) as Buffer) }).toEqual({ status: 200, same: true });
    });
    await untilInFlight(4);
    const health = fetch(`${node().url}/healthz`).then(async (response) => {
      await response.arrayBuffer();
      finished.push('healthz');
      expect(response.status).toBe(200);
    });
    await Promise.all([...renders, health]);
    // One thread renders the four one after another; the event loop, free meanwhile, answers /healthz at once.
    expect(finished.indexOf('healthz')).toBeLessThan(finished.lastIndexOf('render'));
  });

  it('answers 503 SERVICE_UNAVAILABLE with Retry-After beyond the queue, the same JPEG within it, and renders after', async () => {
    const answers = await Promise.all(
      urls.map(async (url) => {
        const response = await render(url);
        const body = Buffer.from(await response.arrayBuffer());
        return { url, status: response.status, retryAfter: response.headers.get('retry-after'), body };
      }),
    );
    const refused = answers.filter((a) => a.status === 503);
    expect(refused.length).toBeGreaterThan(0);
    for (const a of refused) {
      expect(a.retryAfter).toMatch(/^\d+$/);
      expect(JSON.parse(a.body.toString('utf8')).errors[0].extensions.code).toBe('SERVICE_UNAVAILABLE');
    }
    for (const a of answers.filter((x) => x.status !== 503))
      expect({ status: a.status, same: a.body.equals(expectedJpeg.get(a.url) as Buffer) }).toEqual({ status: 200, same: true });
    const again = await render(urls[0]);
    expect(Buffer.from(await again.arrayBuffer()).equals(expectedJpeg.get(urls[0]) as Buffer)).toBe(true);
  });
});
