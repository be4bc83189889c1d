import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Role } from '../../server/domain';
import type { Site } from '../../server/entities';
import type { AppError } from '../../server/errors/app-error';
import type { RequestContext } from '../../server/services';
import { syntheticCtSeries, SYNTHETIC_PATIENT_ID } from '../helpers/synthetic-dicom';
import { Factory } from '../helpers/factories';
import { subscribe } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { stow } from '../helpers/stow';

const PROGRESS = `subscription ($site: ID!) { ingestProgress(siteId: $site) { batchId siteId status objectsTotal objectsDone rejected bytes at } }`;

interface Event {
  ingestProgress: { batchId: string; status: string; objectsTotal: number; objectsDone: number; rejected: number; bytes: number };
}

describe('ingestProgress subscription', () => {
  const node = useTestNode();
  let east: Site;
  let coordinator: string;
  let westCoordinator: string;
  let west: Site;

  beforeAll(async () => {
    const factory = new Factory(node().services);
    east = await factory.site('EAST');
    west = await factory.site('WEST');
    coordinator = await factory.token(Role.COORDINATOR, { site: east });
    westCoordinator = await factory.token(Role.COORDINATOR, { site: west });
    await node().services.manifests.importPatients(factory.admin, `site,patient_id\nEAST,${SYNTHETIC_PATIENT_ID}\n`);
  });

  it('reports a stored batch from RUNNING to STORED with its counts, in order, over graphql-ws', async () => {
    const live = await subscribe<Event>(node().url, coordinator, PROGRESS, { site: east.id });
    try {
      const files = syntheticCtSeries(12, 256).map((bytes) => ({ bytes }));
      const answer = await stow(node().url, coordinator, files);
      expect(answer.status).toBe(202);
      const done = await live.waitFor((e) => e.ingestProgress.status === 'STORED');
      expect(done.ingestProgress).toMatchObject({ objectsTotal: 12, objectsDone: 12, rejected: 0 });
      expect(done.ingestProgress.bytes).toBe(files.reduce((s, f) => s + f.bytes.length, 0));
      const mine = live.events.map((e) => e.ingestProgress).filter((e) => e.batchId === done.ingestProgress.batchId);
      expect(mine[0]).toMatchObject({ status: 'RUNNING', objectsDone: 0 });
      const counts = mine.map((e) => e.objectsDone);
      expect([...counts].sort((a, b) => a - b)).toEqual(counts); // never goes backwards
    } finally {
      await live.close();
    }
  });

  it('reports a rejected batch as REJECTED with the number of rejected objects', async () => {
    const live = await subscribe<Event>(node().url, coordinator, PROGRESS, { site: east.id });
    try {
      const truncated = await readFile(path.resolve(__dirname, '../fixtures/dicom/truncated.dcm'));
      expect((await stow(node().url, coordinator, [{ bytes: truncated }, { bytes: syntheticCtSeries(1, 64, '9')[0] }])).status).toBe(409);
      const done = await live.waitFor((e) => e.ingestProgress.status === 'REJECTED');
      expect(done.ingestProgress).toMatchObject({ objectsTotal: 2, objectsDone: 2, rejected: 1 });
    } finally {
      await live.close();
    }
  });

  it('checks who may follow a site when its stream is asked for, before any event: the coordinators who may ingest there', async () => {
    const asWest: RequestContext = { requestId: 'watch', actor: await node().services.tokens.authenticate(westCoordinator) };
    const refused = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return (error as AppError).extensions.code;
      }
      return 'not refused';
    };
    expect(refused(() => node().services.ingest.watchIngest(asWest, east.id))).toBe('FORBIDDEN');
    expect(refused(() => node().services.ingest.assertMayIngest(asWest, east.id))).toBe('FORBIDDEN');
    expect(refused(() => node().services.ingest.watchIngest({ requestId: 'watch', actor: null }, east.id))).toBe('UNAUTHENTICATED');
    let own: AsyncIterator<unknown> | undefined;
    expect(refused(() => (own = node().services.ingest.watchIngest(asWest, west.id)[Symbol.asyncIterator]()))).toBe('not refused');
    await own?.return?.();
  });

  it('refuses to follow another site’s ingest (FORBIDDEN) and an anonymous client (UNAUTHENTICATED)', async () => {
    const other = await subscribe<Event>(node().url, westCoordinator, PROGRESS, { site: east.id });
    await expect(other.waitFor(() => false, 3000)).rejects.toThrow(/FORBIDDEN/);
    await other.close();
    const anonymous = await subscribe<Event>(node().url, null, PROGRESS, { site: east.id });
    await expect(anonymous.waitFor(() => false, 3000)).rejects.toThrow(/UNAUTHENTICATED/);
    await anonymous.close();
  });
});
