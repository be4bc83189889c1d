import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { canonicalSha256, type JsonValue } from '../../../server/federation/canonical-json';
import { acceptEnvelope, EnvelopeKind, signEnvelope, type SignedEnvelope } from '../../../server/federation/envelope';
import { keyIdOf, NodeIdentity, publicKeyFromBase64 } from '../../../server/federation/identity';
import type { ResultPayload, SecureAnswerPayload, SecureRequestPayload, TaskPayload } from '../../../server/federation/protocol';
import { MemoryNonceStore, ReplayGuard } from '../../../server/federation/replay-guard';

/**
 * A hub as far as one node can tell: the remote end of the wire, so a scripted fake is allowed. It answers the two
 * mutations of hub-client.ts's documents, verifies the node's claims and results with the real envelope code and
 * replay guard, signs tasks and receipts with its own identity, and records every request body byte for byte.
 */
export class ScriptedHub {
  readonly identity = NodeIdentity.generate();
  readonly replay = new ReplayGuard(new MemoryNonceStore());
  /** Every request body as it arrived. */
  readonly bodies: Buffer[] = [];
  /** Verified results, in arrival order. */
  readonly results: SignedEnvelope<ResultPayload>[] = [];
  readonly claims: SignedEnvelope<{ working: string[] }>[] = [];
  /** Verified secure-round answers (masked vectors, seeds, refusals), in arrival order. */
  readonly roundAnswers: SignedEnvelope<SecureAnswerPayload>[] = [];
  /** Envelopes to deliver with the next claim answer (already signed, as the test wants them). */
  private readonly outbox: unknown[] = [];
  private readonly roundOutbox: unknown[] = [];
  private waiting: (() => void)[] = [];
  /** While set, every request is answered 503 (a hub down for maintenance). */
  down = false;
  /** Requests answered 503 while down. */
  refusedWhileDown = 0;
  /** Answer this many submissions with accepted but a receipt signed by another key. */
  forgeReceipts = 0;
  /** Answer this many submissions as already settled (an earlier delivery's reply was lost). */
  alreadySettled = 0;
  private taskCounter = 0;
  server: http.Server;
  url = '';

  constructor(
    private readonly site: string,
    private nodeSigningKey: string | null,
    tls: { key: string; cert: string } | null = null,
  ) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  }

  setNodeKey(signingKey: string): void {
    this.nodeSigningKey = signingKey;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as net.AddressInfo;
    this.url = `${this.server instanceof https.Server ? 'https' : 'http'}://127.0.0.1:${port}/graphql`;
    return this;
  }

  close(): Promise<void> {
    for (const wake of this.waiting.splice(0)) wake();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** A task payload for this hub's site. */
  task(kind: string, query: JsonValue, overrides: Partial<TaskPayload> = {}): TaskPayload {
    return {
      taskId: `task-${++this.taskCounter}-${Date.now()}`,
      kind: kind as TaskPayload['kind'],
      site: this.site,
      query: query as TaskPayload['query'],
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
      minSites: 1,
      sites: [this.site],
      ...overrides,
    };
  }

  /** Signs `payload` (by default with the hub's key, for the site) and delivers it with the next claim answer. */
  send(payload: TaskPayload, options: { signer?: NodeIdentity; audience?: string } = {}): SignedEnvelope<TaskPayload> {
    const envelope = signEnvelope(options.signer ?? this.identity, {
      kind: EnvelopeKind.TASK,
      signer: 'hub',
      audience: options.audience ?? this.site,
      payload,
    });
    this.deliver(envelope);
    return envelope;
  }

  /** Signs a secure-round request with the hub's key and delivers it in the `rounds` of the next claim answer. */
  sendRound(payload: SecureRequestPayload): void {
    this.roundOutbox.push(signEnvelope(this.identity, { kind: EnvelopeKind.SECURE_REQUEST, signer: 'hub', audience: this.site, payload }));
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Delivers an envelope as it is (a replay of one already sent). */
  deliver(envelope: unknown): void {
    this.outbox.push(envelope);
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Resolves once `predicate` holds over the results (polling, as a test waits for a remote party). */
  async waitFor<T>(what: string, probe: () => T | undefined | null | false, timeoutMs = 30_000): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value) return value;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  resultFor(taskId: string): SignedEnvelope<ResultPayload> | undefined {
    return this.results.find((r) => r.payload.taskId === taskId);
  }

  private keys = (signer: string, keyId: string) =>
    signer === this.site && this.nodeSigningKey && keyIdOf(this.nodeSigningKey) === keyId ? publicKeyFromBase64('ed25519', this.nodeSigningKey) : null;

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    this.bodies.push(body);
    const reply = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    if (this.down) {
      this.refusedWhileDown++;
      return reply(503, { errors: [{ message: 'hub down for maintenance' }] });
    }
    const { query, variables } = JSON.parse(body.toString('utf8'));
    if (query.includes('submitFederationResult')) {
      const checked = await acceptEnvelope<ResultPayload>(variables.result, {
        kind: EnvelopeKind.RESULT,
        audience: 'hub',
        keys: this.keys,
        replay: this.replay,
      });
      if (!checked.ok) return reply(200, { data: { submitFederationResult: { accepted: false, code: checked.code, receipt: null } } });
      this.results.push(checked.envelope);
      if (this.alreadySettled > 0) {
        this.alreadySettled--;
        return reply(200, { data: { submitFederationResult: { accepted: false, code: 'ALREADY_SETTLED', receipt: null } } });
      }
      const signer = this.forgeReceipts > 0 ? (this.forgeReceipts--, NodeIdentity.generate()) : this.identity;
      const receipt = signEnvelope(signer, {
        kind: EnvelopeKind.RECEIPT,
        signer: 'hub',
        audience: this.site,
        payload: { taskId: checked.envelope.payload.taskId, resultSha256: canonicalSha256(checked.envelope) },
      });
      return reply(200, { data: { submitFederationResult: { accepted: true, code: null, receipt } } });
    }
    if (query.includes('submitFederationRound')) {
      const checked = await acceptEnvelope<SecureAnswerPayload>(variables.answer, {
        kind: EnvelopeKind.SECURE_ANSWER,
        audience: 'hub',
        keys: this.keys,
        replay: this.replay,
      });
      if (!checked.ok) return reply(200, { data: { submitFederationRound: { accepted: false, code: checked.code, receipt: null } } });
      this.roundAnswers.push(checked.envelope);
      const receipt = signEnvelope(this.identity, {
        kind: EnvelopeKind.RECEIPT,
        signer: 'hub',
        audience: this.site,
        payload: { taskId: checked.envelope.payload.taskId, resultSha256: canonicalSha256(checked.envelope) },
      });
      return reply(200, { data: { submitFederationRound: { accepted: true, code: null, receipt } } });
    }
    if (query.includes('claimFederationTasks')) {
      const checked = await acceptEnvelope<{ working: string[] }>(variables.claim, {
        kind: EnvelopeKind.CLAIM,
        audience: 'hub',
        keys: this.keys,
        replay: this.replay,
      });
      if (!checked.ok) return reply(200, { data: null, errors: [{ message: checked.message, extensions: { code: 'UNAUTHENTICATED', reason: checked.code } }] });
      this.claims.push(checked.envelope);
      // A node that gave up on this claim (its loop stopped) never reads the answer: tasks stay for the next claim.
      let gone = false;
      res.on('close', () => (gone = true));
      if (this.outbox.length === 0 && this.roundOutbox.length === 0 && variables.waitSeconds > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, variables.waitSeconds * 1000);
          this.waiting.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      if (gone) return;
      return reply(200, {
        data: {
          claimFederationTasks: { tasks: this.outbox.splice(0), cancelled: [], rounds: this.roundOutbox.splice(0), serverTime: new Date().toISOString() },
        },
      });
    }
    reply(400, { errors: [{ message: 'unknown operation', extensions: { code: 'BAD_USER_INPUT' } }] });
  }
}
