import { EnvHttpProxyAgent, fetch, type Dispatcher } from 'undici';
import type { SignedEnvelope } from './envelope';

/**
 * The node's only connection to the hub: plain HTTPS POSTs of GraphQL documents, dialled out, so that a hospital
 * opens no inbound port and needs no WebSocket through its proxy (Samply.Beam's reason for the same design). The
 * node long-polls `claimFederationTasks(waitSeconds: 25)`: the hub holds the request until a task is there or the wait
 * ends, which is about as prompt as a push channel and passes any proxy that passes a slow HTTPS response; 25 s stays
 * under the 30-60 s idle timeouts common in proxies and load balancers.
 *
 * Proxies come from the environment like every other tool on the machine: HTTPS_PROXY / HTTP_PROXY / NO_PROXY (upper
 * or lower case) through undici's EnvHttpProxyAgent, which tunnels with CONNECT; a TLS-inspecting proxy's CA is added
 * with Node's NODE_EXTRA_CA_CERTS at process start. Node 20's built-in fetch ignores proxy variables, hence undici.
 */
export class HubRequestError extends Error {
  constructor(
    readonly kind: 'NETWORK' | 'TIMEOUT' | 'HTTP_STATUS' | 'GRAPHQL' | 'BAD_RESPONSE',
    message: string,
    readonly details: { status?: number; code?: string; reason?: string; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.name = 'HubRequestError';
  }
}

export interface HubClientOptions {
  /** The hub's GraphQL endpoint, e.g. https://hub.example.org/graphql. */
  url: string;
  /** Proxy settings instead of the environment's (tests, a config file). */
  proxy?: { httpProxy?: string; httpsProxy?: string; noProxy?: string };
  /** PEM certificates to trust *instead of* the system store: pins the hub's CA. Omit to use Node's store. */
  ca?: string;
  /** How long a request may take beyond the long-poll wait before it counts as lost. */
  graceMs?: number;
  /** Timeout of requests that do not wait (result submission). */
  requestTimeoutMs?: number;
  userAgent?: string;
}

export interface ClaimAnswer {
  /** Signed TASK envelopes, unverified: the caller checks each against the hub's pinned key (envelope.ts). */
  tasks: unknown[];
  /** Ids of tasks this site holds that were cancelled at the hub (a federated inference job to stop). */
  cancelled: string[];
  /** The hub's clock: a node whose clock drifts outside the replay window sees it here first. */
  serverTime: string;
}

export interface SubmitAnswer {
  accepted: boolean;
  /** Why not (an envelope rejection code, a state conflict), null when accepted. */
  code: string | null;
  /** The hub's signed RECEIPT envelope, the node's proof that its result arrived. */
  receipt: unknown;
}

export const CLAIM_FEDERATION_TASKS = `mutation ClaimFederationTasks($claim: SignedEnvelope!, $waitSeconds: Int!) {
  claimFederationTasks(claim: $claim, waitSeconds: $waitSeconds) { tasks cancelled serverTime }
}`;

export const SUBMIT_FEDERATION_RESULT = `mutation SubmitFederationResult($result: SignedEnvelope!) {
  submitFederationResult(result: $result) { accepted code receipt }
}`;

export const REPORT_FEDERATION_PROGRESS = `mutation ReportFederationProgress($progress: SignedEnvelope!) {
  reportFederationProgress(progress: $progress) { accepted code }
}`;

/** The hub holds a claim at most this long: the GraphQL argument's maximum. */
export const MAX_WAIT_SECONDS = 25;

export class HubClient {
  private readonly dispatcher: Dispatcher;
  private readonly graceMs: number;
  private readonly requestTimeoutMs: number;
  private closing: Promise<void> | null = null;

  constructor(private readonly options: HubClientOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`the hub URL must be https (got ${url.protocol})`);
    const tls = options.ca ? { ca: options.ca } : undefined;
    // connect: TLS to the hub when no proxy is used; requestTls: TLS to the hub inside the CONNECT tunnel.
    this.dispatcher = new EnvHttpProxyAgent({ ...options.proxy, connect: tls, requestTls: tls });
    this.graceMs = options.graceMs ?? 15_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  }

  /** One long-poll: resolves with the tasks the hub had or got within `waitSeconds` (possibly none). */
  async claimTasks(claim: SignedEnvelope, waitSeconds = MAX_WAIT_SECONDS, signal?: AbortSignal): Promise<ClaimAnswer> {
    const wait = Math.max(0, Math.min(MAX_WAIT_SECONDS, Math.floor(waitSeconds)));
    const data = await this.request<{ claimFederationTasks: ClaimAnswer }>(
      CLAIM_FEDERATION_TASKS,
      { claim, waitSeconds: wait },
      wait * 1000 + this.graceMs,
      signal,
    );
    const answer = data.claimFederationTasks;
    if (!answer || !Array.isArray(answer.tasks) || typeof answer.serverTime !== 'string')
      throw new HubRequestError('BAD_RESPONSE', 'the claim answer has no tasks list');
    return answer;
  }

  async submitResult(result: SignedEnvelope, signal?: AbortSignal): Promise<SubmitAnswer> {
    const data = await this.request<{ submitFederationResult: SubmitAnswer }>(SUBMIT_FEDERATION_RESULT, { result }, this.requestTimeoutMs, signal);
    const answer = data.submitFederationResult;
    if (!answer || typeof answer.accepted !== 'boolean') throw new HubRequestError('BAD_RESPONSE', 'the submission answer has no accepted flag');
    return answer;
  }

  /** A signed PROGRESS report of a federated inference job (docs/federation.md section 8). */
  async reportProgress(progress: SignedEnvelope, signal?: AbortSignal): Promise<SubmitAnswer> {
    const data = await this.request<{ reportFederationProgress: SubmitAnswer }>(REPORT_FEDERATION_PROGRESS, { progress }, this.requestTimeoutMs, signal);
    const answer = data.reportFederationProgress;
    if (!answer || typeof answer.accepted !== 'boolean') throw new HubRequestError('BAD_RESPONSE', 'the progress answer has no accepted flag');
    return answer;
  }

  /**
   * GETs a model file from the hub with a signed model request as its Authorization (the same outbound channel and
   * proxy as the long-poll). HTTP_STATUS with the status for a refusal; at most `maxBytes` are read.
   */
  async fetchModel(url: string, authorization: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    const timeout = AbortSignal.timeout(this.requestTimeoutMs * 5);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Awaited<ReturnType<typeof fetch>>;
    let bytes: Buffer;
    try {
      response = await fetch(url, {
        method: 'GET',
        dispatcher: this.dispatcher,
        signal: combined,
        headers: { authorization, accept: 'application/octet-stream', 'user-agent': this.options.userAgent ?? 'facet-node' },
      });
      const declared = Number(response.headers.get('content-length') ?? '0');
      if (declared > maxBytes) {
        await response.body?.cancel();
        throw new HubRequestError('HTTP_STATUS', `the model is ${declared} bytes, more than ${maxBytes}`, { status: response.status });
      }
      bytes = Buffer.from(await response.arrayBuffer());
    } catch (error) {
      if (error instanceof HubRequestError) throw error;
      if (signal?.aborted) throw signal.reason ?? error;
      if (timeout.aborted) throw new HubRequestError('TIMEOUT', 'the model download did not finish in time');
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new HubRequestError('NETWORK', `cannot reach the hub: ${cause?.code ?? cause?.message ?? (error as Error).message}`, { code: cause?.code });
    }
    if (response.status !== 200)
      throw new HubRequestError('HTTP_STATUS', `the hub answered HTTP ${response.status} to the model download`, { status: response.status });
    if (bytes.length > maxBytes) throw new HubRequestError('HTTP_STATUS', `the model is more than ${maxBytes} bytes`, { status: response.status });
    return bytes;
  }

  /** POSTs one GraphQL document; throws HubRequestError, or the caller's AbortError when `signal` aborts it. */
  async request<T>(query: string, variables: Record<string, unknown>, timeoutMs: number, signal?: AbortSignal): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Awaited<ReturnType<typeof fetch>>;
    let text: string;
    try {
      response = await fetch(this.options.url, {
        method: 'POST',
        dispatcher: this.dispatcher,
        signal: combined,
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          'user-agent': this.options.userAgent ?? 'facet-node',
        },
        body: JSON.stringify({ query, variables }),
      });
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error;
      if (timeout.aborted) throw new HubRequestError('TIMEOUT', `no answer from the hub within ${timeoutMs} ms`);
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new HubRequestError('NETWORK', `cannot reach the hub: ${cause?.code ?? cause?.message ?? (error as Error).message}`, { code: cause?.code });
    }
    const retryAfterMs = retryAfter(response.headers.get('retry-after'));
    let body: { data?: T | null; errors?: { message?: string; extensions?: { code?: string; reason?: string } }[] } | null = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const firstError = body?.errors?.[0];
    if (firstError) {
      // The hub refuses a bad envelope as UNAUTHENTICATED with the envelope check's code as `reason`.
      const code = firstError.extensions?.code ?? 'UNKNOWN';
      const reason = firstError.extensions?.reason;
      throw new HubRequestError('GRAPHQL', `the hub refused the request: ${code}${reason ? ` (${reason})` : ''}`, {
        status: response.status,
        code,
        reason,
        retryAfterMs,
      });
    }
    if (response.status !== 200)
      throw new HubRequestError('HTTP_STATUS', `the hub answered HTTP ${response.status}`, { status: response.status, retryAfterMs });
    if (!body || body.data === undefined || body.data === null) throw new HubRequestError('BAD_RESPONSE', 'the hub answered without data');
    return body.data;
  }

  /** Closes the connections (and, through a proxy, the tunnels); safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.dispatcher.close();
    return this.closing;
  }
}

/** Retry-After in seconds or as an HTTP date, in ms; undefined when absent or unreadable. */
function retryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header)) return Number(header) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export interface Backoff {
  baseMs: number;
  maxMs: number;
}

/** 1 s doubling to a minute: a hub back from a restart sees its nodes return over a minute, not all in one second. */
export const DEFAULT_BACKOFF: Backoff = { baseMs: 1000, maxMs: 60_000 };

/**
 * "Full jitter" exponential backoff (Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog 2015): a delay
 * drawn uniformly from [0, min(max, base * 2^(failures-1))]. The spread keeps nodes that failed together (the hub
 * restarted) from retrying together.
 */
export function backoffDelay(failures: number, backoff: Backoff = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, Math.min(30, failures - 1)));
  return Math.floor(random() * ceiling);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The node's claim loop: long-poll, hand tasks over, repeat until `signal` aborts. A failure (hub down, proxy error,
 * refused claim) waits a jittered, growing delay, or the hub's Retry-After if longer; a success resets it. An empty
 * answer that came back sooner than `minIntervalMs` waits out the rest, so a misconfigured hub that does not hold
 * requests is polled once a second, not in a tight loop. A claim is signed afresh for every request (new nonce).
 */
export async function runClaimLoop(options: {
  client: Pick<HubClient, 'claimTasks'>;
  makeClaim: () => SignedEnvelope;
  onTasks: (tasks: unknown[]) => Promise<void>;
  /** Ids of tasks the site claimed that were cancelled at the hub (a federated inference job to stop). */
  onCancelled?: (taskIds: string[]) => Promise<void>;
  signal: AbortSignal;
  waitSeconds?: number;
  onError?: (error: unknown, delayMs: number) => void;
  backoff?: Backoff;
  minIntervalMs?: number;
  random?: () => number;
  now?: () => number;
  wait?: (ms: number, signal: AbortSignal) => Promise<void>;
}): Promise<void> {
  const now = options.now ?? Date.now;
  const wait = options.wait ?? sleep;
  const minInterval = options.minIntervalMs ?? 1000;
  let failures = 0;
  while (!options.signal.aborted) {
    const started = now();
    try {
      const answer = await options.client.claimTasks(options.makeClaim(), options.waitSeconds ?? MAX_WAIT_SECONDS, options.signal);
      failures = 0;
      const cancelled = Array.isArray(answer.cancelled) ? answer.cancelled.filter((id): id is string => typeof id === 'string') : [];
      if (cancelled.length > 0) await options.onCancelled?.(cancelled);
      if (answer.tasks.length > 0) await options.onTasks(answer.tasks);
      else if (cancelled.length > 0) continue;
      else if (now() - started < minInterval) await wait(minInterval - (now() - started), options.signal);
    } catch (error) {
      if (options.signal.aborted) break;
      failures++;
      const hinted = error instanceof HubRequestError ? (error.details.retryAfterMs ?? 0) : 0;
      const delay = Math.max(backoffDelay(failures, options.backoff, options.random), Math.min(hinted, (options.backoff ?? DEFAULT_BACKOFF).maxMs * 5));
      options.onError?.(error, delay);
      await wait(delay, options.signal);
    }
  }
}
