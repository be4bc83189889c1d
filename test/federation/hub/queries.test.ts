import { Role } from '../../../server/domain';
import { federationDeadlineJob } from '../../../server/jobs/federation-deadline.job';
import { computeGroup } from '../../../server/stats/engine';
import { systemContext } from '../../../server/services';
import { codeOf, gql, gqlOverWebSocket } from '../../helpers/graphql-client';
import { filePassed, useTestNode } from '../../helpers/lifecycle';
import { Gen } from '../generators';
import { binaryCountsAggregate, FEATURES, generateSiteCases, type SiteCase } from './cases';
import { READ, ScriptedNode, START, startTestHub, type TestHub } from './hub-harness';
import type { HubRequestError } from '../../../server/federation/hub-client';
import { addSite, registryEntryFor, removeSite, type SiteRegistryError } from '../../../server/federation/site-registry';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

let hub: TestHub;
const plainNode = useTestNode();

beforeAll(async () => {
  hub = await startTestHub(['NORTH', 'SOUTH', 'HARBOUR']);
});
afterAll(async () => {
  await hub?.close(filePassed());
});

const node = (code: string) => hub.nodes.get(code)!;
const ENGINE = { threshold: 1, grades: 4, level: 0.95, bootstrap: { replicates: 20, seed: 1 } };
const close = (a: number | null, b: number | null) => (a === null || b === null ? expect(a).toBe(b) : expect(Math.abs(a - b)).toBeLessThan(1e-9));
const BINARY = { kind: 'BINARY_COUNTS', rater: { readerSlot: 'FIRST' }, groupBy: ['FEATURE'], deadlineSeconds: 600 };

describe('federated queries at the hub', () => {
  it('pools BINARY_COUNTS from three sites to the single-node metrics on the union (generated data, within 1e-9)', async () => {
    for (const seed of [21, 22, 23]) {
      const query = (await hub.query(START, { input: BINARY })).startFederatedQuery;
      expect(query.query).toMatchObject({ groupBy: ['SITE', 'FEATURE'], threshold: 1, rater: { readerSlot: 'FIRST' } });
      const gen = new Gen(seed);
      let next = 0;
      const union: SiteCase[] = [];
      for (const code of ['HARBOUR', 'NORTH', 'SOUTH']) {
        const patients = gen.int(8, 60);
        const cases = generateSiteCases(gen, patients, next);
        next += patients;
        union.push(...cases);
        const task = (await node(code).claim(0)).tasks.find((t) => t.taskId === query.id)!;
        const submitted = await node(code).submit(node(code).sign(node(code).resultPayload(task, { aggregate: binaryCountsAggregate(code, cases, 1) })));
        expect(submitted).toMatchObject({ accepted: true });
      }
      const answer = (await hub.query(READ, { id: query.id })).federatedQuery;
      expect(answer.status).toBe('COMPLETE');
      expect(answer.missing).toEqual([]);
      for (const feature of FEATURES) {
        const cases = union.filter((c) => c.feature === feature);
        const row = answer.answer.metrics.find((r: { pooled: boolean; feature: string }) => r.pooled && r.feature === feature);
        const clustered = computeGroup(cases, { ...ENGINE, clustered: true });
        const independent = computeGroup(cases, { ...ENGINE, clustered: false });
        expect(row.confusion).toEqual(clustered.confusion);
        for (const name of ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv'] as const) {
          for (const field of ['value', 'lower', 'upper'] as const) {
            close(row[name][field], clustered[name][field]);
            close(row.wilson[name][field], independent[name][field]);
          }
        }
        close(row.f1.value, clustered.f1.value);
        expect(row.site).toBeNull();
        expect(row.sites).toEqual(['HARBOUR', 'NORTH', 'SOUTH']);
      }
      // Each site's rows as it released them, with SITE as a grouping.
      expect(
        answer.answer.metrics.filter((r: { pooled: boolean }) => !r.pooled).map((r: { site: string; feature: string }) => `${r.site}:${r.feature}`),
      ).toEqual(['HARBOUR', 'NORTH', 'SOUTH'].flatMap((s) => [...FEATURES].sort().map((f) => `${s}:${f}`)));
    }
  });

  it('takes a result larger than an anonymous body may otherwise be (the signature authenticates the node)', async () => {
    const query = (await hub.query(START, { input: { ...BINARY, groupBy: ['FEATURE', 'MODALITY', 'LEVEL', 'SIDE'], sites: ['NORTH'] } })).startFederatedQuery;
    const cases = generateSiteCases(new Gen(5), 30, 0);
    const groups = [];
    for (const modality of ['XR', 'CT', 'MR'])
      for (const level of ['L1_L2', 'L2_L3', 'L3_L4', 'L4_L5', 'L5_S1'])
        for (const side of ['LEFT', 'RIGHT']) {
          for (const g of binaryCountsAggregate('NORTH', cases, 1).groups)
            groups.push({ ...g, key: { ...g.key, MODALITY: modality, LEVEL: level, SIDE: side } });
        }
    const envelope = node('NORTH').sign(
      node('NORTH').resultPayload(
        (await node('NORTH').claim(0)).tasks.find((t) => t.taskId === query.id)!,
        { aggregate: { groups } },
      ),
    );
    expect(JSON.stringify(envelope).length).toBeGreaterThan(3 * 8 * 1024);
    expect(await node('NORTH').submit(envelope)).toMatchObject({ accepted: true });
    expect((await hub.query(READ, { id: query.id })).federatedQuery.answer.metrics).toHaveLength(groups.length * 2);
  });

  it('lists queries latest first and the registry with each member’s last claim', async () => {
    const list = await hub.query(
      `{ federatedQueries(limit: 2) { id createdAt } federationSites { code keyId lastClaimAt contactEmail } hubIdentity { signer signingKey keyId } }`,
    );
    expect(list.federatedQueries).toHaveLength(2);
    expect(Date.parse(list.federatedQueries[0].createdAt)).toBeGreaterThanOrEqual(Date.parse(list.federatedQueries[1].createdAt));
    expect(list.federationSites.map((s: { code: string }) => s.code)).toEqual(['HARBOUR', 'NORTH', 'SOUTH']);
    for (const site of list.federationSites) {
      expect(site.keyId).toBe(node(site.code).identity.public.keyId);
      expect(Date.now() - Date.parse(site.lastClaimAt)).toBeLessThan(120_000);
    }
    expect(list.hubIdentity).toEqual({ signer: 'hub', signingKey: hub.identity.public.signingKey, keyId: hub.identity.public.keyId });
  });

  it.each([
    ['an unknown site', { kind: 'STUDY_FLOW', sites: ['NOWHERE'] }],
    ['minSites above the sites asked', { kind: 'STUDY_FLOW', sites: ['NORTH'], minSites: 2 }],
    ['minSites 0', { kind: 'STUDY_FLOW', minSites: 0 }],
    ['a deadline beyond 30 days', { kind: 'STUDY_FLOW', deadlineSeconds: 31 * 86_400 }],
    ['BINARY_COUNTS without a rater', { kind: 'BINARY_COUNTS' }],
    ['BINARY_COUNTS with two raters', { kind: 'BINARY_COUNTS', rater: { readerSlot: 'FIRST', modelSha256: 'a'.repeat(64) } }],
    ['a model hash that is not a sha256', { kind: 'BINARY_COUNTS', rater: { modelSha256: 'model-1' } }],
    ['STUDY_FLOW with a rater', { kind: 'STUDY_FLOW', rater: { readerSlot: 'FIRST' } }],
  ])('refuses a query with %s (BAD_USER_INPUT) and creates nothing', async (_label, input) => {
    const before = (await hub.node.dataSource.query('SELECT count(*)::int AS n FROM federation_task'))[0].n;
    expect(codeOf(await gql(hub.url, hub.token, START, { input }))).toBe('BAD_USER_INPUT');
    expect((await hub.node.dataSource.query('SELECT count(*)::int AS n FROM federation_task'))[0].n).toBe(before);
  });

  it('lets only STATISTICIAN (and ADMIN) tokens ask, and answers NOT_FOUND for an unknown query', async () => {
    const { secret: engineer } = await hub.node.services.tokens.createApiToken(systemContext('test'), { name: 'engineer', role: Role.ENGINEER });
    expect(codeOf(await gql(hub.url, engineer, START, { input: { kind: 'STUDY_FLOW' } }))).toBe('FORBIDDEN');
    expect(codeOf(await gql(hub.url, null, START, { input: { kind: 'STUDY_FLOW' } }))).toBe('UNAUTHENTICATED');
    expect(codeOf(await gql(hub.url, hub.token, READ, { id: '00000000-0000-4000-8000-000000000000' }))).toBe('NOT_FOUND');
    const watched = await gqlOverWebSocket(hub.url, engineer, `subscription { federatedQueryUpdated(id: "00000000-0000-4000-8000-000000000000") { status } }`);
    expect(codeOf(watched)).toBe('FORBIDDEN');
  });
});

describe('registry changes on a running hub', () => {
  it('accepts a member added while running and refuses a removed member at its next claim', async () => {
    const west = new ScriptedNode('WEST');
    west.connect(hub.url, hub.identity.public.signingKey);
    const claimOf = async () => {
      try {
        await west.claim(0);
        return 'ACCEPTED';
      } catch (error) {
        return (error as HubRequestError).details.reason;
      }
    };
    try {
      expect(await claimOf()).toBe('UNKNOWN_SIGNER');
      await addSite(hub.sitesDir, registryEntryFor(west.identity, { code: 'WEST', name: 'West', contact: { name: 'A', email: 'a@west.example' } }));
      expect(await claimOf()).toBe('ACCEPTED');
      // A broken file keeps the last valid registry in force (one bad file must not stop the federation), and says so.
      await writeFile(path.join(hub.sitesDir, 'BROKEN.json'), '{ not json');
      expect(await claimOf()).toBe('ACCEPTED');
      expect(await claimOf()).toBe('ACCEPTED');
      expect(hub.registryProblems.map((e) => (e as SiteRegistryError).problems[0].code)).toEqual(['NOT_JSON']);
      await rm(path.join(hub.sitesDir, 'BROKEN.json'));
      await removeSite(hub.sitesDir, 'WEST');
      expect(await claimOf()).toBe('UNKNOWN_SIGNER');
    } finally {
      await west.close();
    }
  });
});

describe('hub mode', () => {
  it('refuses patient-level writes on a hub with HUB_HOLDS_NO_PATIENT_DATA', async () => {
    const { secret: admin } = await hub.node.services.tokens.createApiToken(systemContext('test'), { name: 'admin', role: Role.ADMIN });
    const mutations = [
      `mutation { createSite(input: { code: "X", name: "X" }) { id } }`,
      `mutation { startInferenceJob(modelVersionId: "00000000-0000-4000-8000-000000000000") { id } }`,
      `mutation { recordReading(input: { jointId: "00000000-0000-4000-8000-000000000000", modality: XR, feature: "OSTEOPHYTES", grade: 1 }) { id } }`,
      `mutation { importPatientsManifest(csv: "hospital_id,site\\nH1,X\\n") { __typename } }`,
    ];
    for (const mutation of mutations) expect(codeOf(await gql(hub.url, admin, mutation))).toBe('HUB_HOLDS_NO_PATIENT_DATA');
    const stow = await fetch(`${hub.url}/dicomweb/studies`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'multipart/related; type="application/dicom"; boundary=x' },
      body: '--x--',
    });
    expect(stow.status).toBe(409);
    expect(((await stow.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code).toBe('HUB_HOLDS_NO_PATIENT_DATA');
    const upload = await fetch(`${hub.url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${admin}` }, body: new FormData() });
    // Model upload stays open on a hub (it sends model versions to the sites): an empty form is a bad request, not a refusal.
    expect(upload.status).toBe(400);
    expect(((await upload.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code).toBe('BAD_USER_INPUT');
    // Token management stays: a hub has its own researchers.
    const created = await gql(hub.url, admin, `mutation { createApiToken(input: { name: "r2", role: STATISTICIAN }) { secret } }`);
    expect(created.errors).toBeUndefined();
  });

  it('fails a deadline job on a worker that is not in hub mode (retried, not dropped), and skips a malformed one', async () => {
    const job = federationDeadlineJob(plainNode().services);
    await expect(job({ taskId: '00000000-0000-4000-8000-000000000000' }, null)).rejects.toThrow(/hub mode/);
    expect(await job({} as { taskId: string }, null)).toBe('skipped');
    expect(await job({ taskId: 'not-a-uuid' }, null)).toBe('skipped');
    expect(await federationDeadlineJob(hub.node.services)({ taskId: '00000000-0000-4000-8000-000000000000' }, null)).toBe('skipped');
  });

  it('answers NOT_A_HUB on a deployment that is not a hub', async () => {
    const { secret } = await plainNode().services.tokens.createApiToken(systemContext('test'), { name: 'statistician', role: Role.STATISTICIAN });
    expect(codeOf(await gql(plainNode().url, secret, START, { input: { kind: 'STUDY_FLOW' } }))).toBe('NOT_A_HUB');
    const claim = node('NORTH').claimEnvelope();
    expect(
      codeOf(
        await gql(plainNode().url, null, `mutation($c: SignedEnvelope!) { claimFederationTasks(claim: $c, waitSeconds: 0) { serverTime } }`, { c: claim }),
      ),
    ).toBe('NOT_A_HUB');
  });
});
