import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { syntheticImage, SYNTHETIC_PATIENT_ID } from '../helpers/synthetic-dicom';
import { tag } from '../../server/dicom/dictionary';
import { createDataSource } from '../../server/db/data-source';
import { Role } from '../../server/domain';
import { createServices, systemContext } from '../../server/services';
import { emptyItemsSequence, insertElement } from '../helpers/dicom-mutations';
import { filePassed } from '../helpers/lifecycle';
import { failureCode, stow } from '../helpers/stow';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db';

const MAIN = path.resolve(__dirname, '../../dist/server/main.js');

/** `serve` from the build, with `env` added; resolves once it prints its URL. */
function serve(database: TestDatabase, dataDir: string, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'serve'], {
      env: { ...process.env, DATABASE_URL: database.url, FACET_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const url = /GraphQL:\s+(http:\/\/\S+)\/graphql/.exec(out)?.[1];
      if (url && /Press Ctrl-C/.test(out)) resolve({ child, url });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
}

describe('FACET_DICOM_MAX_ELEMENTS, FACET_DICOM_MAX_DEPTH and FACET_MAX_STOW_BYTES for deflated objects', () => {
  let database: TestDatabase;
  let dataDir: string;
  let server: { child: ChildProcess; url: string } | null = null;
  let token: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'facet-limits-'));
    const ds = createDataSource(database.url, { poolSize: 2 });
    await ds.initialize();
    const services = createServices(ds, { objectRoot: path.join(dataDir, 'objects') });
    const admin = systemContext('test');
    const site = await services.sites.createSite(admin, { code: 'EAST', name: 'East' });
    token = (await services.tokens.createApiToken(admin, { name: 'c', role: Role.COORDINATOR, siteId: site.id })).secret;
    await services.manifests.importPatients(admin, `site,patient_id\nEAST,${SYNTHETIC_PATIENT_ID}\n`);
    await ds.destroy();
    server = await serve(database, dataDir, { FACET_DICOM_MAX_ELEMENTS: '500', FACET_DICOM_MAX_DEPTH: '2', FACET_MAX_STOW_BYTES: '200000' });
  });

  afterAll(async () => {
    if (server) {
      server.child.kill('SIGTERM');
      await new Promise((r) => server?.child.once('exit', r));
    }
    if (filePassed()) {
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('sets the limits of the running server: 600 items or three nested sequences are TOO_COMPLEX, the same image without them is stored', async () => {
    const url = (server as { url: string }).url;
    const referencedSeries = tag(0x0008, 0x1115);
    const items = insertElement(syntheticImage({ instance: 1 }), referencedSeries, emptyItemsSequence(referencedSeries, 600));
    // Three levels of Content Sequence, encoded by hand with undefined lengths.
    const open = Buffer.from([0x40, 0x00, 0x30, 0xa7, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]);
    const close = Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0, 0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
    const deep = insertElement(syntheticImage({ instance: 2 }), tag(0x0040, 0xa730), Buffer.concat([open, open, open, close, close, close]));
    for (const bytes of [items, deep]) {
      const answer = await stow(url, token, [{ bytes }]);
      expect(answer.status).toBe(409);
      expect(answer.failed.map(failureCode)).toEqual(['TOO_COMPLEX']);
    }
    expect((await stow(url, token, [{ bytes: syntheticImage({ instance: 3 }) }])).status).toBe(202);
  });

  it('bounds what the deflated objects of one request inflate to by FACET_MAX_STOW_BYTES, together', async () => {
    const url = (server as { url: string }).url;
    // 256 x 256 x 16 bits: 131,072 bytes of pixel data, a few kilobytes deflated.
    const deflated = (instance: number) => syntheticImage({ syntax: 'deflated', size: 256, instance });
    expect(deflated(10).length).toBeLessThan(20_000);
    const two = await stow(url, token, [{ bytes: deflated(10) }, { bytes: deflated(11) }]);
    expect(two.status).toBe(409);
    expect(two.failed.map(failureCode)).toEqual(['TOO_COMPLEX', 'BATCH_REJECTED']);
    expect(two.failed[0]['00000902'].Value[0]).toMatch(/^TOO_COMPLEX part 2: The deflated data set inflates to more than/);
    expect((await stow(url, token, [{ bytes: deflated(10) }])).status).toBe(202);
  });
});
