import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { verifyAnswer, verifyCommand } from '../../../server/cli/verify';
import { canonicalSha256, type JsonValue } from '../../../server/federation/canonical-json';
import { EnvelopeKind, signEnvelope, type SignedEnvelope } from '../../../server/federation/envelope';
import { NodeIdentity } from '../../../server/federation/identity';
import { addSite, loadSiteRegistry, publicEntry, registryEntryFor, type SiteRegistry } from '../../../server/federation/site-registry';
import { filePassed } from '../../helpers/lifecycle';
import { Gen } from '../generators';
import { binaryCountsAggregate, generateSiteCases } from './cases';
import { START, startTestHub, type TestHub } from './hub-harness';

let hub: TestHub;
let registry: SiteRegistry;
let exported: SignedEnvelope<Record<string, JsonValue>>;
let otherResult: SignedEnvelope;
let dir: string;

const node = (code: string) => hub.nodes.get(code)!;
const EXPORT = `query($id: ID!) { federatedAnswer(id: $id) { id revision rowsSha256 export } }`;
const copy = <T>(value: T): T => structuredClone(value);

/** Re-signs a changed payload with the hub's own key: what a lying hub could do. */
const resignedByHub = (payload: Record<string, JsonValue>) =>
  signEnvelope(hub.identity, { kind: EnvelopeKind.ANSWER, signer: 'hub', audience: 'public', payload }) as SignedEnvelope<Record<string, JsonValue>>;

async function answerQuery(sites: string[], seed: number): Promise<string> {
  const query = (
    await hub.query(START, { input: { kind: 'BINARY_COUNTS', rater: { readerSlot: 'FIRST' }, groupBy: ['FEATURE'], sites, deadlineSeconds: 600 } })
  ).startFederatedQuery;
  const gen = new Gen(seed);
  let next = 0;
  for (const code of sites) {
    const task = (await node(code).claim(0)).tasks.find((t) => t.taskId === query.id)!;
    const cases = generateSiteCases(gen, 12, next);
    next += 12;
    await node(code).submit(node(code).sign(node(code).resultPayload(task, { aggregate: binaryCountsAggregate(code, cases, 5) })));
  }
  return query.id;
}

beforeAll(async () => {
  hub = await startTestHub(['NORTH', 'SOUTH', 'HARBOUR']);
  registry = await loadSiteRegistry(hub.sitesDir);
  const id = await answerQuery(['NORTH', 'SOUTH'], 31);
  const answer = (await hub.query(EXPORT, { id })).federatedAnswer;
  expect(answer).toMatchObject({ id, revision: 1 });
  exported = answer.export;
  expect(exported.payload.rowsSha256).toBe(answer.rowsSha256);
  const otherId = await answerQuery(['NORTH'], 32);
  otherResult = ((await hub.query(EXPORT, { id: otherId })).federatedAnswer.export.payload.results as SignedEnvelope[])[0];
  dir = await mkdtemp(path.join(os.tmpdir(), 'facet-verify-'));
});
afterAll(async () => {
  await hub?.close(filePassed());
  if (filePassed() && dir) await rm(dir, { recursive: true, force: true });
});

const problemsOf = (raw: unknown, reg = registry, key = hub.identity.public.signingKey) =>
  verifyAnswer(raw, reg, key).problems.map((p) => p.split(':').slice(0, 2).join(':'));

describe('facet verify', () => {
  it('verifies an exported answer and lists each contributing site’s manifest', () => {
    const report = verifyAnswer(exported, registry, hub.identity.public.signingKey);
    expect(report).toMatchObject({ ok: true, problems: [] });
    expect(report.manifests.map((m) => m.site)).toEqual(['NORTH', 'SOUTH']);
    expect(exported.payload.tasks).toHaveLength(2);
    expect((exported.payload.rows as unknown[]).length).toBeGreaterThan(0);
  });

  it('fails on each class of tampering, naming what does not check out', async () => {
    const pooledRow = (payload: Record<string, JsonValue>) =>
      (payload.rows as { pooled: boolean; values: { tp: number } | null }[]).find((r) => r.pooled && r.values)!;
    const cases: [string, () => unknown, string[]][] = [
      [
        'a pooled number changed in transit',
        () => {
          const t = copy(exported);
          pooledRow(t.payload).values!.tp += 1;
          return t;
        },
        ['ANSWER: BAD_SIGNATURE', 'ROWS: ROWS_MISMATCH'],
      ],
      [
        'rowsSha256 changed',
        () => ({ ...copy(exported), payload: { ...copy(exported.payload), rowsSha256: canonicalSha256('x') } }),
        ['ANSWER: BAD_SIGNATURE', 'ROWS: ROWS_SHA256_MISMATCH'],
      ],
      [
        "a site's aggregate changed (the hub re-signed the answer)",
        () => {
          const payload = copy(exported.payload);
          const result = (payload.results as { payload: { aggregate: { groups: { values?: { tp: number } }[] } } }[])[0];
          result.payload.aggregate.groups.find((g) => g.values)!.values!.tp += 5;
          return resignedByHub(payload);
        },
        ['RESULT NORTH: BAD_SIGNATURE', 'RESULT NORTH: MANIFEST_MISMATCH', 'ROWS: ROWS_MISMATCH', 'ROWS: ROWS_SHA256_MISMATCH'],
      ],
      [
        'pooled rows the signed results do not give (the hub re-signed them)',
        () => {
          const payload = copy(exported.payload);
          pooledRow(payload).values!.tp += 1;
          return resignedByHub(payload);
        },
        ['ROWS: ROWS_MISMATCH'],
      ],
      [
        'a contribution dropped (the hub re-signed the answer)',
        () => {
          const payload = copy(exported.payload);
          payload.results = (payload.results as JsonValue[]).slice(1);
          return resignedByHub(payload);
        },
        ['ROWS: ROWS_MISMATCH', 'ROWS: ROWS_SHA256_MISMATCH'],
      ],
      [
        "another task's result put in (the hub re-signed the answer)",
        () => {
          const payload = copy(exported.payload);
          (payload.results as JsonValue[])[0] = otherResult as unknown as JsonValue;
          return resignedByHub(payload);
        },
        ['RESULT NORTH: UNKNOWN_TASK', 'RESULT NORTH: TASK_HASH_MISMATCH', 'ROWS: ROWS_MISMATCH', 'ROWS: ROWS_SHA256_MISMATCH'],
      ],
      [
        'a task changed after the site answered it (re-signed by the hub)',
        () => {
          const payload = copy(exported.payload);
          const tasks = payload.tasks as unknown as SignedEnvelope<Record<string, JsonValue>>[];
          const changed = { ...tasks[0].payload, minSites: 2 };
          tasks[0] = signEnvelope(hub.identity, { kind: EnvelopeKind.TASK, signer: 'hub', audience: tasks[0].audience, payload: changed });
          return resignedByHub(payload);
        },
        ['RESULT NORTH: TASK_HASH_MISMATCH'],
      ],
    ];
    for (const [label, tamper, expected] of cases) expect([label, problemsOf(tamper())]).toEqual([label, expected]);
  });

  it('fails with another hub key, or a registry where a site has another key', async () => {
    const stranger = NodeIdentity.generate();
    expect(problemsOf(exported, registry, stranger.public.signingKey)).toEqual([
      'ANSWER: UNKNOWN_SIGNER',
      'TASK NORTH: UNKNOWN_SIGNER',
      'TASK SOUTH: UNKNOWN_SIGNER',
    ]);
    const sites = await mkdtemp(path.join(dir, 'sites-'));
    for (const site of registry.sites) {
      const identity = site.code === 'SOUTH' ? NodeIdentity.generate() : null;
      await addSite(sites, identity ? registryEntryFor(identity, { code: site.code, name: site.name, contact: site.contact }) : publicEntry(site));
    }
    expect(problemsOf(exported, await loadSiteRegistry(sites))).toEqual(['RESULT SOUTH: UNKNOWN_SIGNER']);
  });

  it('runs as a command: exit 0 with the manifests, 1 on a mismatch, 2 on unreadable input', async () => {
    const good = path.join(dir, 'answer.json');
    await writeFile(good, JSON.stringify({ export: exported }));
    const ok = await verifyCommand(good, hub.sitesDir, hub.identity.public.signingKey);
    expect(ok.exitCode).toBe(0);
    expect(ok.text).toMatch(/^manifest NORTH: \{.*"taskSha256"/m);
    expect(ok.text).toMatch(/^manifest SOUTH: /m);
    const bad = path.join(dir, 'tampered.json');
    const t = copy(exported);
    (t.payload.rows as { patients: number | null }[])[0].patients = 999;
    await writeFile(bad, JSON.stringify(t));
    const failed = await verifyCommand(bad, hub.sitesDir, hub.identity.public.signingKey);
    expect(failed.exitCode).toBe(1);
    expect(failed.text).toMatch(/MISMATCH ANSWER: BAD_SIGNATURE/);
    expect(failed.text).toMatch(/NOT VERIFIED: 2 problem/);
    expect((await verifyCommand(path.join(dir, 'missing.json'), hub.sitesDir, hub.identity.public.signingKey)).exitCode).toBe(2);
    expect((await verifyCommand(good, hub.sitesDir, 'not-a-key')).exitCode).toBe(2);
    expect((await verifyCommand(good, path.join(dir, 'no-such-sites'), hub.identity.public.signingKey)).exitCode).toBe(2);
  });
});
