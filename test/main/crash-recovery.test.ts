import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { systemContext } from '../../server/services';
import { createDataSource } from '../../server/db/data-source';
import { createServices } from '../../server/services';
import { Role } from '../../server/domain';
import { syntheticCtSeries, SYNTHETIC_PATIENT_ID } from '../helpers/synthetic-dicom';
import { filePassed } from '../helpers/lifecycle';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db';
import { multipartRelated } from '../helpers/stow';

const MAIN = path.resolve(__dirname, '../../dist/server/main.js');

/** Stored objects: every file under the store but its tmp/ folder. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory() && e.name !== 'tmp') out.push(...(await filesUnder(path.join(dir, e.name))));
    else if (e.isFile()) out.push(path.join(dir, e.name));
  }
  return out;
}

function serve(database: TestDatabase, dataDir: string, env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; url: string }> {
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

describe('a server killed mid-batch', () => {
  let database: TestDatabase;
  let dataDir: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'facet-crash-'));
  });
  afterAll(async () => {
    if (filePassed()) {
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('leaves no rows and, after the start-up sweep, no files', async () => {
    // A site, a patient known by the fixtures' Patient ID, and a coordinator token, made through the services.
    const ds = createDataSource(database.url, { poolSize: 2 });
    await ds.initialize();
    const services = createServices(ds, { objectRoot: path.join(dataDir, 'objects') });
    const admin = systemContext('test');
    const site = await services.sites.createSite(admin, { code: 'EAST', name: 'East' });
    const { secret } = await services.tokens.createApiToken(admin, { name: 'c', role: Role.COORDINATOR, siteId: site.id });
    await services.manifests.importPatients(admin, `site,patient_id\nEAST,${SYNTHETIC_PATIENT_ID}\n`);
    await ds.destroy();

    const first = await serve(database, dataDir);
    const { contentType, body } = multipartRelated(syntheticCtSeries(120).map((bytes) => ({ bytes })));
    const request = fetch(`${first.url}/dicomweb/studies`, {
      method: 'POST',
      headers: { 'content-type': contentType, authorization: `Bearer ${secret}` },
      body,
    }).catch(() => 'connection lost');
    // Kill the server as soon as the batch has started writing objects (before its transaction commits).
    const objects = path.join(dataDir, 'objects');
    const deadline = Date.now() + 60_000;
    while ((await filesUnder(objects)).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    first.child.kill('SIGKILL');
    expect(await request).toBe('connection lost');
    const leftBehind = await filesUnder(objects);
    expect(leftBehind.length).toBeGreaterThan(0);

    // Also a temp file of a write cut short.
    await mkdir(path.join(objects, 'tmp'), { recursive: true });
    await writeFile(path.join(objects, 'tmp', 'cut-short.part'), 'half a file');
    const longAgo = new Date(Date.now() - 3 * 3600 * 1000);
    await utimes(path.join(objects, 'tmp', 'cut-short.part'), longAgo, longAgo);
    const client = new Client({ connectionString: database.url });
    await client.connect();
    const rows = async () =>
      (await client.query(`SELECT (SELECT count(*) FROM instance)::int + (SELECT count(*) FROM study)::int + (SELECT count(*) FROM series)::int AS n`)).rows[0]
        .n;
    expect(await rows()).toBe(0);

    // A young orphan survives the sweep (another process may be committing it); an old one does not.
    const young = await serve(database, dataDir);
    young.child.kill('SIGTERM');
    await new Promise((r) => young.child.once('exit', r));
    expect(existsSync(path.join(objects, 'tmp', 'cut-short.part'))).toBe(false);
    expect((await filesUnder(objects)).length).toBe(leftBehind.length);
    const past = new Date(Date.now() - 2 * 3600 * 1000);
    for (const f of leftBehind) await utimes(f, past, past);
    const second = await serve(database, dataDir);
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
    expect(await filesUnder(objects)).toEqual([]);
    expect(await rows()).toBe(0);
    await client.end();
  });
});
