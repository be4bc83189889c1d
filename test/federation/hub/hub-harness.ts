import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Role } from '../../../server/domain';
import { canonicalSha256, type JsonValue } from '../../../server/federation/canonical-json';
import { EnvelopeKind, signEnvelope, verifyEnvelope, type SignedEnvelope, type SignerKeys } from '../../../server/federation/envelope';
import { HubClient } from '../../../server/federation/hub-client';
import { keyIdOf, NodeIdentity, publicKeyFromBase64 } from '../../../server/federation/identity';
import type { ClaimPayload, ResultPayload, TaskPayload } from '../../../server/federation/protocol';
import { DEFAULT_RELEASE_POLICY } from '../../../server/federation/release-policy';
import { addSite, loadSiteRegistry, registryEntryFor } from '../../../server/federation/site-registry';
import { jobHandlers, workEveryQueue } from '../../../server/jobs/job-registry';
import { systemContext } from '../../../server/services';
import { gqlOk } from '../../helpers/graphql-client';
import { startTestNode, type TestNode } from '../../helpers/test-node';

/**
 * A scripted node: test code that speaks the hub's wire protocol with a real identity (identity.ts), signing its
 * claims and results and sending them through the node's own transport (hub-client.ts). It computes nothing; the
 * test hands it the aggregate to release. This is the "remote site" edge the house rules allow a fake at.
 */
export class ScriptedNode {
  readonly identity = NodeIdentity.generate();
  private client: HubClient | null = null;
  private hubKeys: SignerKeys | null = null;

  constructor(readonly code: string) {}

  /** Points the node at a hub, pinning the hub's signing key (base64) as FACET_HUB_SIGNING_KEY does. */
  connect(url: string, hubSigningKey: string): void {
    this.client = new HubClient({ url: `${url}/graphql`, graceMs: 10_000, requestTimeoutMs: 20_000 });
    const pinned = publicKeyFromBase64('ed25519', hubSigningKey);
    const keyId = keyIdOf(hubSigningKey);
    this.hubKeys = (signer, id) => (signer === 'hub' && id === keyId ? pinned : null);
  }

  get hub(): HubClient {
    if (!this.client) throw new Error('not connected');
    return this.client;
  }

  claimEnvelope(options: { waitSeconds?: number; working?: string[]; maxTasks?: number; audience?: string; site?: string } = {}): SignedEnvelope {
    const payload: ClaimPayload = {
      site: options.site ?? this.code,
      maxTasks: options.maxTasks ?? 5,
      waitSeconds: options.waitSeconds ?? 0,
      facetVersion: 'test',
      working: options.working ?? [],
    };
    return signEnvelope(this.identity, { kind: EnvelopeKind.CLAIM, signer: this.code, audience: options.audience ?? 'hub', payload });
  }

  /** One claim; resolves with the verified task payloads (a task that does not verify with the hub's key fails the test). */
  async claim(waitSeconds = 0, options: { working?: string[] } = {}): Promise<{ tasks: TaskPayload[]; cancelled: string[]; envelopes: SignedEnvelope[] }> {
    const answer = await this.hub.claimTasks(this.claimEnvelope({ waitSeconds, ...options }), waitSeconds);
    const tasks = answer.tasks.map((raw) => this.task(raw));
    return { tasks, cancelled: answer.cancelled, envelopes: answer.tasks as SignedEnvelope[] };
  }

  /** A TASK envelope as the node receives it, verified with the pinned hub key. */
  task(raw: unknown): TaskPayload {
    const checked = verifyEnvelope<TaskPayload>(raw, { kind: EnvelopeKind.TASK, audience: this.code, keys: this.hubKeys! });
    if (!checked.ok) throw new Error(`the hub's task does not verify: ${checked.code}`);
    return checked.envelope.payload;
  }

  resultPayload(task: TaskPayload, outcome: { state?: 'SUCCEEDED' | 'REFUSED' | 'FAILED'; aggregate?: JsonValue; reason?: string | null }): ResultPayload {
    const taskSha256 = canonicalSha256(task);
    const aggregate = outcome.aggregate ?? null;
    return {
      taskId: task.taskId,
      taskSha256,
      site: this.code,
      state: outcome.state ?? 'SUCCEEDED',
      reason: outcome.reason ?? null,
      aggregate,
      manifest: {
        facetVersion: 'test',
        taskSha256,
        splitVersionId: null,
        modelSha256: null,
        referenceSnapshotSha256: null,
        policySha256: canonicalSha256(DEFAULT_RELEASE_POLICY as unknown as JsonValue),
        aggregateSha256: canonicalSha256(aggregate),
      },
    };
  }

  sign(payload: JsonValue, options: { audience?: string; kind?: EnvelopeKind; signer?: string } = {}): SignedEnvelope {
    return signEnvelope(this.identity, {
      kind: options.kind ?? EnvelopeKind.RESULT,
      signer: options.signer ?? this.code,
      audience: options.audience ?? 'hub',
      payload,
    });
  }

  submit(envelope: unknown) {
    return this.hub.submitResult(envelope as SignedEnvelope);
  }

  /** Verifies a receipt with the pinned hub key. */
  receipt(raw: unknown) {
    return verifyEnvelope<{ taskId: string; resultSha256: string }>(raw, { kind: EnvelopeKind.RECEIPT, audience: this.code, keys: this.hubKeys! });
  }

  close(): Promise<void> {
    return this.client?.close() ?? Promise.resolve();
  }
}

export interface TestHub {
  node: TestNode;
  url: string;
  sitesDir: string;
  identity: NodeIdentity;
  nodes: Map<string, ScriptedNode>;
  /** A STATISTICIAN token of the hub. */
  token: string;
  /** What the hub reported when the registry folder became invalid. */
  registryProblems: unknown[];
  query<T = Record<string, any>>(document: string, variables?: Record<string, unknown>): Promise<T>;
  close(passed: boolean): Promise<void>;
}

/** A real hub (server, database, pg-boss worker for deadlines) with a registry of scripted nodes. */
export async function startTestHub(codes: readonly string[], options: { leaseSeconds?: number } = {}): Promise<TestHub> {
  const sitesDir = await mkdtemp(path.join(os.tmpdir(), 'facet-sites-'));
  const nodes = new Map(codes.map((code) => [code, new ScriptedNode(code)]));
  for (const node of nodes.values()) {
    await addSite(
      sitesDir,
      registryEntryFor(node.identity, {
        code: node.code,
        name: `${node.code} hospital`,
        contact: { name: 'Admin', email: `admin@${node.code.toLowerCase()}.example` },
      }),
    );
  }
  const identity = NodeIdentity.generate();
  const registryProblems: unknown[] = [];
  const node = await startTestNode({
    hub: {
      sitesDir,
      identity,
      registry: await loadSiteRegistry(sitesDir),
      leaseSeconds: options.leaseSeconds,
      onRegistryProblem: (error) => registryProblems.push(error),
    },
  });
  await workEveryQueue(node.services.queue, jobHandlers(node.services));
  const { secret } = await node.services.tokens.createApiToken(systemContext('test'), { name: 'researcher', role: Role.STATISTICIAN });
  for (const n of nodes.values()) n.connect(node.url, identity.public.signingKey);
  return {
    node,
    url: node.url,
    sitesDir,
    identity,
    nodes,
    token: secret,
    registryProblems,
    query: (document, variables = {}) => gqlOk(node.url, secret, document, variables),
    close: async (passed) => {
      for (const n of nodes.values()) await n.close();
      await node.close(passed);
      if (passed) await rm(sitesDir, { recursive: true, force: true });
    },
  };
}

/** Polls `read` until `done` holds or `ms` pass. */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > until) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export const QUERY_FIELDS = `id kind status minSites deadline revision updated query
  sites { site state reason late claimedAt settledAt }
  missing { site code reason }
  contributions { site resultSha256 aggregateSha256 manifest }
  answer { rowsSha256
    studyFlow { pooled node site suppressed suppression patients sites withheld enrolled excluded eligible joints assessable notAssessable analysed }
    metrics { pooled node site feature suppressed suppression patients sites withheld confusion { tp fp tn fn }
      prevalence { value lower upper method reason } accuracy { value lower upper method reason } sensitivity { value lower upper method reason }
      specificity { value lower upper method reason } precision { value lower upper method reason } npv { value lower upper method reason }
      f1 { value method reason } youden { value method reason }
      wilson { accuracy { value lower upper method } sensitivity { value lower upper method } specificity { value lower upper method } precision { value lower upper method } npv { value lower upper method } prevalence { value lower upper method } } } }`;

export const START = `mutation Start($input: FederatedQueryInput!) { startFederatedQuery(input: $input) { ${QUERY_FIELDS} } }`;
export const READ = `query Read($id: ID!) { federatedQuery(id: $id) { ${QUERY_FIELDS} } }`;
