import type { JsonValue } from './canonical-json';
import type { SignedEnvelope } from './envelope';

/**
 * Federated inference, the pure parts hub and node share: the INFERENCE task's query (the model pinned by sha256,
 * its manifest and the modalities to run), the node's signed progress report, the counts a site releases when its
 * job ends, the authorization header of a model download, and how the hub turns reports into per-site states,
 * rates and ETAs. docs/federation.md section 8 describes the flow around them.
 */

/** The query of an INFERENCE task: what every addressed node registers and runs. */
export interface InferenceQuery {
  [field: string]: JsonValue;
  /** The model as the hub holds it; nodes download the bytes and refuse any whose sha256 differs. */
  model: { [field: string]: JsonValue; sha256: string; name: string; version: string; bytes: number };
  /** The manifest the node registers the model with (its own manifest checks and dummy batch run on it). */
  manifest: { [field: string]: JsonValue };
  /** Modalities to run; empty: every modality the manifest preprocesses. */
  modalities: string[];
}

/** What a node says about its job, as the job moves: APPROVING until its ENGINEER or ADMIN decides, then the job's own states. */
export type InferencePhase = 'APPROVING' | 'QUEUED' | 'RUNNING' | 'FINISHED' | 'FAILED' | 'REFUSED' | 'CANCELLED';
export const INFERENCE_PHASES: readonly InferencePhase[] = ['APPROVING', 'QUEUED', 'RUNNING', 'FINISHED', 'FAILED', 'REFUSED', 'CANCELLED'];
const FINAL_PHASES: ReadonlySet<InferencePhase> = new Set(['FINISHED', 'FAILED', 'REFUSED', 'CANCELLED']);

/** node -> hub, inside a PROGRESS envelope: counts only (never an image, a joint or a prediction). */
export interface ProgressPayload {
  [field: string]: JsonValue;
  taskId: string;
  /** sha256 of the TaskPayload the job answers (as a result names it). */
  taskSha256: string;
  site: string;
  /** Grows with every report of this task from this node: the hub keeps only a report newer than the one it holds. */
  sequence: number;
  phase: InferencePhase;
  total: number;
  done: number;
  failed: number;
  /** Seconds since the job started running (0 before), by the node's clock: the hub's rate and ETA come from it. */
  elapsedSeconds: number;
  /** The ONNX Runtime execution provider that runs the job (null before it started). */
  executionProvider: string | null;
}

/** What a site releases when its job ended (a SUCCEEDED result's aggregate): the provenance of its predictions. */
export interface InferenceAggregate {
  [field: string]: JsonValue;
  modelSha256: string;
  executionProvider: string;
  facetVersion: string;
  job: { [field: string]: JsonValue; status: string; total: number; done: number; failed: number };
}

const SHA256 = /^[0-9a-f]{64}$/;
const count = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1e9;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const shortWord = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max && /^[A-Za-z0-9_.:+-]+$/.test(v);

/** A progress payload as received, or null when anything in it is not what a node sends (the hub answers MALFORMED_PROGRESS). */
export function parseProgressPayload(raw: unknown): ProgressPayload | null {
  if (!isObject(raw)) return null;
  const keys = ['taskId', 'taskSha256', 'site', 'sequence', 'phase', 'total', 'done', 'failed', 'elapsedSeconds', 'executionProvider'];
  if (Object.keys(raw).some((k) => !keys.includes(k)) || keys.some((k) => !(k in raw))) return null;
  const { taskId, taskSha256, site, sequence, phase, total, done, failed, elapsedSeconds, executionProvider } = raw;
  if (typeof taskId !== 'string' || taskId.length === 0 || taskId.length > 200) return null;
  if (typeof taskSha256 !== 'string' || !SHA256.test(taskSha256) || typeof site !== 'string' || site.length === 0 || site.length > 64) return null;
  if (!count(sequence) || !INFERENCE_PHASES.includes(phase as InferencePhase) || !count(total) || !count(done) || !count(failed)) return null;
  if (done + failed > total) return null;
  if (typeof elapsedSeconds !== 'number' || !Number.isFinite(elapsedSeconds) || elapsedSeconds < 0) return null;
  if (executionProvider !== null && !shortWord(executionProvider, 32)) return null;
  return raw as ProgressPayload;
}

/** Whether a SUCCEEDED INFERENCE result's aggregate is exactly the provenance a node releases (nothing else may travel). */
export function isInferenceAggregate(raw: unknown): raw is InferenceAggregate {
  if (!isObject(raw) || Object.keys(raw).sort().join() !== 'executionProvider,facetVersion,job,modelSha256') return false;
  const { modelSha256, executionProvider, facetVersion, job } = raw;
  if (typeof modelSha256 !== 'string' || !SHA256.test(modelSha256) || !shortWord(executionProvider, 32) || !shortWord(facetVersion, 64)) return false;
  if (!isObject(job) || Object.keys(job).sort().join() !== 'done,failed,status,total') return false;
  return job.status === 'SUCCEEDED' && count(job.total) && count(job.done) && count(job.failed) && job.done + job.failed === job.total;
}

/** Whether a phase ends the job at the node (no report follows it). */
export const isFinalPhase = (phase: InferencePhase): boolean => FINAL_PHASES.has(phase);

/**
 * Images a second and the seconds left, from a report: (done + failed) / elapsed, and what remains at that rate.
 * Null when not computable (not running yet, nothing done yet); the ETA is 0 once every item is counted.
 */
export function rateAndEta(progress: { done: number; failed: number; total: number; elapsedSeconds: number }): {
  rate: number | null;
  etaSeconds: number | null;
} {
  const counted = progress.done + progress.failed;
  if (counted >= progress.total && progress.total > 0) return { rate: progress.elapsedSeconds > 0 ? counted / progress.elapsedSeconds : null, etaSeconds: 0 };
  if (counted === 0 || progress.elapsedSeconds <= 0) return { rate: null, etaSeconds: null };
  const rate = counted / progress.elapsedSeconds;
  return { rate, etaSeconds: (progress.total - counted) / rate };
}

/** The hub's record of one site on an INFERENCE task: its site-task and the latest progress report it holds. */
export interface SiteInferenceFacts {
  /** The site-task's state (protocol.ts FederationSiteState). */
  siteTaskState: 'QUEUED' | 'CLAIMED' | 'SUCCEEDED' | 'REFUSED' | 'FAILED' | 'EXPIRED';
  /** The site-task's reason (a refusal or failure code, CANCELLED, SITE_TIMEOUT, SITE_UNAVAILABLE). */
  reason: string | null;
  taskCancelled: boolean;
  phase: InferencePhase | null;
}

export type SiteInferenceState = 'WAITING' | 'APPROVING' | 'QUEUED' | 'RUNNING' | 'FINISHED' | 'REFUSED' | 'FAILED' | 'CANCELLING' | 'CANCELLED' | 'EXPIRED';

/**
 * One site's state at the hub. A settled site-task decides (its signed result is the site's last word); a cancelled
 * task is CANCELLED once the node confirmed it (a CANCELLED report) or never had it, CANCELLING while its job may
 * still run; before that, the node's latest report; a task the site has not claimed is WAITING, never failed: an
 * offline site is simply not there yet.
 */
export function siteInferenceState(facts: SiteInferenceFacts): SiteInferenceState {
  if (facts.siteTaskState === 'SUCCEEDED') return 'FINISHED';
  if (facts.siteTaskState === 'REFUSED') return 'REFUSED';
  if (facts.taskCancelled) {
    if (facts.phase === 'CANCELLED' || facts.phase === null) return 'CANCELLED';
    return isFinalPhase(facts.phase) ? (facts.phase as SiteInferenceState) : 'CANCELLING';
  }
  if (facts.siteTaskState === 'FAILED') return facts.reason === 'CANCELLED' ? 'CANCELLED' : 'FAILED';
  if (facts.siteTaskState === 'EXPIRED') return 'EXPIRED';
  if (facts.phase === null) return facts.siteTaskState === 'QUEUED' ? 'WAITING' : 'QUEUED';
  // FINISHED before the result arrived: still running as far as the hub's answer goes, but the node is done.
  return facts.phase === 'REFUSED' ? 'REFUSED' : facts.phase === 'CANCELLED' ? 'CANCELLED' : facts.phase;
}

/** The job over every site: counts summed, the rate summed over running sites, the ETA of the slowest of them. */
export function inferenceTotal(
  sites: readonly { state: SiteInferenceState; total: number; done: number; failed: number; rate: number | null; etaSeconds: number | null }[],
) {
  const sum = (f: (s: (typeof sites)[number]) => number) => sites.reduce((a, s) => a + f(s), 0);
  const running = sites.filter((s) => s.state === 'RUNNING');
  const rates = running.map((s) => s.rate).filter((r): r is number => r !== null);
  const etas = running.map((s) => s.etaSeconds);
  const ended = (s: SiteInferenceState) => ['FINISHED', 'REFUSED', 'FAILED', 'CANCELLED', 'EXPIRED'].includes(s);
  return {
    sites: sites.length,
    finished: sites.filter((s) => s.state === 'FINISHED').length,
    ended: sites.filter((s) => ended(s.state)).length,
    total: sum((s) => s.total),
    done: sum((s) => s.done),
    failed: sum((s) => s.failed),
    rate: rates.length > 0 ? rates.reduce((a, b) => a + b, 0) : null,
    etaSeconds: etas.length > 0 && etas.every((e) => e !== null) ? Math.max(...(etas as number[])) : null,
  };
}

/** The scheme of the model download's Authorization header: a signed MODEL_REQUEST envelope, base64url JSON. */
export const MODEL_REQUEST_SCHEME = 'Facet-Envelope';

/** node -> hub, inside a MODEL_REQUEST envelope (the download's Authorization): which task's model, for which site. */
export interface ModelRequestPayload {
  [field: string]: JsonValue;
  site: string;
  taskId: string;
  modelSha256: string;
}

export function modelRequestAuthorization(envelope: SignedEnvelope<ModelRequestPayload>): string {
  return `${MODEL_REQUEST_SCHEME} ${Buffer.from(JSON.stringify(envelope), 'utf8').toString('base64url')}`;
}

/** The envelope in a download's Authorization header, or null when the header is absent or not one (the hub answers 401). */
export function envelopeFromAuthorization(header: string | undefined): unknown {
  if (!header) return null;
  const [scheme, value, ...rest] = header.trim().split(/\s+/);
  if (scheme !== MODEL_REQUEST_SCHEME || !value || rest.length > 0 || value.length > 8192 || !/^[A-Za-z0-9_-]+$/.test(value)) return null;
  try {
    return JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

/** The model download's path at the hub (beside /graphql): GET <hub>/federation/models/<sha256>. */
export function modelDownloadUrl(hubGraphqlUrl: string, sha256: string): string {
  return new URL(`federation/models/${sha256}`, new URL('.', hubGraphqlUrl)).toString();
}
