import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Role } from '../../server/domain';
import { IngestService } from '../../server/services/ingest/ingest.service';
import type { ObjectStore } from '../../server/storage/object-store';
import { FIXTURES, IDENTIFIERS } from '../helpers/dicom-fixtures';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { filePassed } from '../helpers/lifecycle';
import { startS3Server, type S3Server } from '../helpers/s3-server';
import { stow } from '../helpers/stow';
import { startTestNode, type TestNode } from '../helpers/test-node';

const ONNX = path.resolve(__dirname, '../fixtures/onnx');

/** Every sha256 the store lists. */
async function listed(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const page of store.list()) out.push(...page.map((o) => o.sha256));
  return out.sort();
}

/** The start-of-process sweep over an S3 bucket: referenced objects (DICOM and models) stay, old orphans go, young ones wait. */
describe(`${IngestService.name}.sweepStorage over S3`, () => {
  let s3: S3Server;
  let node: TestNode;

  beforeAll(async () => {
    s3 = await startS3Server();
    await s3.createBucket('facet-sweep');
    node = await startTestNode({ objects: s3.store('facet-sweep') });
  });
  afterAll(async () => {
    await node?.close(filePassed());
    await node?.services.objects.close();
    await s3?.stop();
  });

  it('removes only objects no instance or model version references, once old enough', async () => {
    const factory = new Factory(node.services);
    const site = await factory.site('EAST');
    const coordinator = await factory.token(Role.COORDINATOR, { site });
    const engineer = await factory.token(Role.ENGINEER);
    await gqlOk(node.url, coordinator, `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored } }`, {
      csv: `site,patient_id\nEAST,${IDENTIFIERS.PatientID}\n`,
    });
    const answer = await stow(node.url, coordinator, [{ bytes: readFileSync(path.join(FIXTURES, 'identified-explicit-le.dcm')) }]);
    expect(answer.failed).toEqual([]);
    const form = new FormData();
    form.append('manifest', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.manifest.json'))]), 'manifest.json');
    form.append('model', new Blob([readFileSync(path.join(ONNX, 'tiny-multitask.onnx'))]), 'model.onnx');
    const model = (await (
      await fetch(`${node.url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${engineer}` }, body: form })
    ).json()) as {
      sha256: string;
    };
    const [{ sha256: instance }] = await node.dataSource.query(`SELECT trim(sha256) AS sha256 FROM instance`);
    // Objects a crashed batch left behind: bytes no row will ever reference.
    const orphans = await Promise.all(Array.from({ length: 5 }, () => node.services.objects.put(randomBytes(2048))));
    const kept = [instance, model.sha256].sort();
    expect(await listed(node.services.objects)).toEqual([...kept, ...orphans.map((o) => o.sha256)].sort());

    // Young: another server may be about to commit them.
    expect(await node.services.ingest.sweepStorage(3600_000)).toEqual({ temp: 0, orphans: 0 });
    expect(await listed(node.services.objects)).toHaveLength(7);
    expect(await node.services.ingest.sweepStorage(0)).toEqual({ temp: 0, orphans: 5 });
    expect(await listed(node.services.objects)).toEqual(kept);
    // The survivors read back whole.
    for (const sha of kept) expect((await node.services.objects.read(sha)).length).toBeGreaterThan(0);
  });
});
