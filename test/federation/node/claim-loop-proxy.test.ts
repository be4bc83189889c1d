import { promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { canonicalSha256 } from '../../../server/federation/canonical-json';
import { FederationTaskKind } from '../../../server/federation/protocol';
import { jobHandlers, workEveryQueue } from '../../../server/jobs/job-registry';
import { filePassed } from '../../helpers/lifecycle';
import { startSquid, type Squid } from '../../helpers/squid';
import { startTestNode, type TestNode } from '../../helpers/test-node';
import { makeHubCertificates } from './certificates';
import { ScriptedHub } from './scripted-hub';

const SITE = 'NORTH';
const ALL = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };

/** A WebSocket upgrade asked of the proxy for the hub's port: what a push channel would need. */
function upgradeThroughProxy(proxyPort: number, hubPort: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: 'GET',
      path: `http://127.0.0.1:${hubPort}/graphql`,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('upgrade', () => resolve(101));
    req.on('error', reject);
    req.end();
  });
}

describe('a federation node whose only way out is a proxy that refuses WebSocket upgrades', () => {
  let squid: Squid;
  let hub: ScriptedHub;
  let node: TestNode;
  let dir: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facet-node-proxy-'));
    const certs = await makeHubCertificates(dir);
    squid = await startSquid();
    hub = await new ScriptedHub(SITE, null, { key: certs.key, cert: certs.cert }).listen();
    node = await startTestNode({
      federation: {
        site: SITE,
        hubUrl: hub.url,
        hubSigningKey: hub.identity.public.signingKey,
        // NO_PROXY empty: 127.0.0.1 goes through the proxy like any outside host would.
        client: { ca: certs.ca, proxy: { httpsProxy: squid.url, httpProxy: squid.url, noProxy: '' } },
        claim: { waitSeconds: 2, lockRetryMs: 200, backoff: { baseMs: 100, maxMs: 800 } },
      },
    });
    hub.setNodeKey((await node.services.federationNode.identity()).public.signingKey);
    await workEveryQueue(node.services.queue, jobHandlers(node.services));
    node.services.federationClaimLoop?.start();
  });

  afterAll(async () => {
    await node?.close(filePassed());
    await hub?.close();
    await squid?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('long-polls through CONNECT, answers the task and delivers the result, while the proxy refuses a WebSocket upgrade', async () => {
    expect(await upgradeThroughProxy(squid.port, (hub.server.address() as { port: number }).port)).toBe(403);
    const task = hub.task(FederationTaskKind.STUDY_FLOW, { scope: ALL });
    hub.send(task);
    const result = await hub.waitFor('the result through the proxy', () => hub.resultFor(task.taskId));
    expect(result.payload).toMatchObject({ state: 'SUCCEEDED', taskSha256: canonicalSha256(task), aggregate: { groups: [] } });
    // Each long-poll holds its tunnel until the answer: squid logs CONNECT lines for the hub's port as they close.
    const hubPort = (hub.server.address() as { port: number }).port;
    await hub.waitFor('a logged tunnel', () => hub.claims.length >= 2);
    await node.services.federationClaimLoop?.stop();
    const log = await squid.accessLog();
    expect(log.some((line) => line.includes('CONNECT') && line.includes(`127.0.0.1:${hubPort}`))).toBe(true);
  });
});
