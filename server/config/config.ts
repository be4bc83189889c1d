import path from 'node:path';

/** Everything the node reads from its environment, read once at start. */
export interface Config {
  /** null: start the embedded PostgreSQL under `dataDir`. */
  databaseUrl: string | null;
  host: string;
  port: number;
  /** Holds the embedded database, the file object store (the default) and the bootstrap admin token. */
  dataDir: string;
  /** FACET_OBJECT_STORE: where de-identified DICOM objects and ONNX models live (servers and workers must agree). */
  objectStore: ObjectStoreConfig;
  embeddedPostgresPort: number;
  introspection: boolean;
  /** Query limits: nesting depth and aliases per document. */
  maxQueryDepth: number;
  maxAliases: number;
  /** Estimated cost limit (graphql/limits.ts: connections multiply by `first`, nested lists by 10). */
  maxQueryCost: number;
  /** Largest JSON request body of an authenticated request, in bytes. */
  maxBodyBytes: number;
  /** Largest JSON request body without a valid token: an anonymous client cannot make the server read megabytes. */
  maxAnonymousBodyBytes: number;
  /** Most lexical tokens in one GraphQL document; the parser stops there (HTTP and graphql-ws). */
  maxQueryTokens: number;
  /** Largest STOW-RS request (one batch), in bytes; also the most its deflated DICOM data sets may inflate to, together. */
  maxStowBytes: number;
  /** Data elements, sequence items and pixel data fragments one DICOM object may hold (TOO_COMPLEX beyond). */
  dicomMaxElements: number;
  /** Deepest nesting of sequences in one DICOM object (TOO_COMPLEX beyond). */
  dicomMaxDepth: number;
  /** Stored objects no row references are removed at start once this old (a younger one may be mid-commit). */
  orphanMinAgeSeconds: number;
  /** ONNX Runtime execution providers in the order to try (the first that loads runs the session). */
  executionProviders: string[];
  /** Joint images per session.run. */
  inferenceBatchSize: number;
  /** A worker runs a job for about this long, then queues its next slice (so no queue job outlives its expiry). */
  jobSliceSeconds: number;
  /** A queue job still active this long is taken for dead (worker killed) and retried by another worker. */
  jobExpireSeconds: number;
  /** How often expired queue jobs are looked for. */
  queueMaintenanceSeconds: number;
  /** Retries of a failed or expired queue job before its inference job is marked FAILED. */
  jobRetryLimit: number;
  /** Smallest group of patients whose statistics roles without patient-level access may see (docs/statistics.md). */
  minGroupPatients: number;
  /** Their ROC curves have model-score thresholds only on the grid i / rocGridSteps. */
  rocGridSteps: number;
  /** FACET_MODE: `hub` runs a federation hub (as `serve --hub`): no patient-level data, the member registry in sitesDir. */
  mode: 'node' | 'hub';
  /** FACET_SITES_DIR: the hub's member registry, one <code>.json per site (default ./sites). */
  sitesDir: string;
  /** FACET_METRICS_TOKEN: a bearer secret that may scrape /metrics on the API port (ADMIN tokens may too); null: none. */
  metricsToken: string | null;
  /** FACET_METRICS_PORT: a listener of its own serving /metrics without a token (serve and worker alike); null: none. */
  metricsPort: number | null;
  /** FACET_METRICS_HOST: where that listener binds (127.0.0.1 by default: only a scraper on this machine reaches it). */
  metricsHost: string;
  /** This node's membership of a federation (docs/federation.md section 11); null: FACET_HUB_URL unset, not a member. */
  federation: NodeFederationConfig | null;
}

/**
 * `file`: a directory of this machine (`<dataDir>/objects`, the embedded default; every process of the node must
 * see it). `s3`: an S3-compatible bucket, so servers and workers on other machines share the objects; credentials
 * come from the AWS SDK's default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an instance role).
 */
export type ObjectStoreConfig =
  { kind: 'file'; root: string } | { kind: 's3'; bucket: string; prefix: string; endpoint: string | null; region: string | null; forcePathStyle: boolean };

/** Where this node's hub is and how the node knows it: the hub's signing key is pinned, never learnt from the hub. */
export interface NodeFederationConfig {
  /** The hub's GraphQL endpoint (https in production; http only for a hub on the same machine or a test). */
  hubUrl: string;
  /** The hub's Ed25519 public key, base64 of the raw 32 bytes: a task signed by any other key is not executed. */
  hubSigningKey: string;
  /** This node's code in the hub's registry: the audience of the tasks it accepts and the signer of its results. */
  site: string;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  // Decimal digits only: Number() would also take ' ', '0x1F' and '1e3'.
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value > max) throw new Error(`${name} must be an integer from 0 to ${max}, got ${JSON.stringify(raw)}`);
  return value;
}

const MAX_PORT = 65_535;

/** A disclosure setting: 0 would switch the control off silently, so it is refused rather than raised to 1. */
function atLeastOne(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const value = integer(env, name, fallback, max);
  if (value < 1) throw new Error(`${name} must be an integer from 1 to ${max}, got ${JSON.stringify(env[name])}`);
  return value;
}

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new Error(`${name} must be true or false, got ${JSON.stringify(env[name])}`);
}

function mode(env: NodeJS.ProcessEnv): 'node' | 'hub' {
  const raw = (env.FACET_MODE ?? '').toLowerCase();
  if (raw === '' || raw === 'node') return 'node';
  if (raw === 'hub') return 'hub';
  throw new Error(`FACET_MODE must be node or hub, got ${JSON.stringify(env.FACET_MODE)}`);
}

/** S3's rule for bucket names (3-63 lower-case letters, digits, dots and hyphens; a letter or digit at each end). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function objectStore(env: NodeJS.ProcessEnv, dataDir: string): ObjectStoreConfig {
  const kind = (env.FACET_OBJECT_STORE ?? '').toLowerCase();
  if (kind === '' || kind === 'file') return { kind: 'file', root: path.join(dataDir, 'objects') };
  if (kind !== 's3') throw new Error(`FACET_OBJECT_STORE must be file or s3, got ${JSON.stringify(env.FACET_OBJECT_STORE)}`);
  const bucket = env.FACET_S3_BUCKET ?? '';
  if (!BUCKET_NAME.test(bucket))
    throw new Error(`FACET_S3_BUCKET must name a bucket (3-63 of a-z 0-9 . -) when FACET_OBJECT_STORE=s3, got ${JSON.stringify(bucket)}`);
  const endpoint = env.FACET_S3_ENDPOINT || null;
  if (endpoint !== null) {
    let url: URL | null = null;
    try {
      url = new URL(endpoint);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
      throw new Error(`FACET_S3_ENDPOINT must be the store's http(s) URL, e.g. http://minio:9000, got ${JSON.stringify(endpoint)}`);
  }
  // A prefix is a folder of the bucket: `objects` and `objects/` mean the same.
  const rawPrefix = env.FACET_S3_PREFIX ?? 'objects/';
  const prefix = rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/`;
  return { kind: 's3', bucket, prefix, endpoint, region: env.FACET_S3_REGION || null, forcePathStyle: flag(env, 'FACET_S3_FORCE_PATH_STYLE', false) };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = path.resolve(env.FACET_DATA_DIR || '.facet-data');
  return {
    databaseUrl: env.DATABASE_URL || null,
    host: env.HOST || '127.0.0.1',
    port: integer(env, 'PORT', 4000, MAX_PORT),
    dataDir,
    objectStore: objectStore(env, dataDir),
    embeddedPostgresPort: integer(env, 'FACET_EMBEDDED_PG_PORT', 54329, MAX_PORT),
    introspection: flag(env, 'FACET_INTROSPECTION', true),
    maxQueryDepth: integer(env, 'FACET_MAX_QUERY_DEPTH', 12),
    maxAliases: integer(env, 'FACET_MAX_ALIASES', 30),
    maxQueryCost: integer(env, 'FACET_MAX_QUERY_COST', 250_000),
    maxBodyBytes: integer(env, 'FACET_MAX_BODY_BYTES', 16 * 1024 * 1024),
    // GraphiQL's introspection query is about 2 KB; anonymous clients have nothing larger to send.
    maxAnonymousBodyBytes: integer(env, 'FACET_MAX_ANONYMOUS_BODY_BYTES', 8 * 1024),
    // The full introspection query is about 180 tokens, the CLI's largest query under 200; 1000 ids inlined in a
    // filter are about 1000. Parsing stops at the limit, so a document's parse cost is bounded whatever its size.
    maxQueryTokens: Math.max(1, integer(env, 'FACET_MAX_QUERY_TOKENS', 5000)),
    maxStowBytes: integer(env, 'FACET_MAX_STOW_BYTES', 1024 * 1024 * 1024),
    dicomMaxElements: Math.max(1, integer(env, 'FACET_DICOM_MAX_ELEMENTS', 100_000)),
    dicomMaxDepth: Math.max(1, integer(env, 'FACET_DICOM_MAX_DEPTH', 16, 128)),
    orphanMinAgeSeconds: integer(env, 'FACET_ORPHAN_MIN_AGE_SECONDS', 3600),
    executionProviders: (env.FACET_EXECUTION_PROVIDERS || 'cpu')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
    inferenceBatchSize: Math.max(1, integer(env, 'FACET_INFERENCE_BATCH_SIZE', 16, 4096)),
    jobSliceSeconds: Math.max(1, integer(env, 'FACET_JOB_SLICE_SECONDS', 20, 3600)),
    jobExpireSeconds: Math.max(1, integer(env, 'FACET_JOB_EXPIRE_SECONDS', 120, 86_400)),
    queueMaintenanceSeconds: Math.max(1, integer(env, 'FACET_QUEUE_MAINTENANCE_SECONDS', 30, 86_400)),
    jobRetryLimit: integer(env, 'FACET_JOB_RETRY_LIMIT', 5, 100),
    minGroupPatients: atLeastOne(env, 'FACET_MIN_GROUP_PATIENTS', 5, 1_000_000),
    rocGridSteps: atLeastOne(env, 'FACET_ROC_GRID_STEPS', 20, 10_000),
    mode: mode(env),
    sitesDir: path.resolve(env.FACET_SITES_DIR || 'sites'),
    federation: nodeFederation(env),
    metricsToken: metricsToken(env),
    metricsPort: env.FACET_METRICS_PORT ? integer(env, 'FACET_METRICS_PORT', 0, MAX_PORT) : null,
    metricsHost: env.FACET_METRICS_HOST || '127.0.0.1',
  };
}

/** A scrape secret short enough to guess would open the metrics to anyone: at least 32 characters. */
function metricsToken(env: NodeJS.ProcessEnv): string | null {
  const raw = env.FACET_METRICS_TOKEN;
  if (raw === undefined || raw === '') return null;
  if (raw.length < 32 || /\s/.test(raw)) throw new Error('FACET_METRICS_TOKEN must be at least 32 characters without spaces (e.g. openssl rand -hex 32)');
  return raw;
}

/** The registry's rules (federation/site-registry.ts), repeated here because config imports nothing of the server. */
const SITE_CODE = /^[A-Za-z0-9_-]{1,32}$/;
const ED25519_PUBLIC_KEY = /^[A-Za-z0-9+/]{43}=$/;

/**
 * A node is a member when FACET_HUB_URL is set; then the pinned hub key and the site code are required, because a
 * member that trusted whichever key the hub presents would execute anyone's tasks.
 */
function nodeFederation(env: NodeJS.ProcessEnv): NodeFederationConfig | null {
  const hubUrl = env.FACET_HUB_URL;
  if (!hubUrl) return null;
  let url: URL;
  try {
    url = new URL(hubUrl);
  } catch {
    throw new Error(`FACET_HUB_URL must be the hub's GraphQL URL, e.g. https://hub.example.org/graphql, got ${JSON.stringify(hubUrl)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`FACET_HUB_URL must be an https URL, got ${JSON.stringify(hubUrl)}`);
  const hubSigningKey = env.FACET_HUB_SIGNING_KEY ?? '';
  if (!ED25519_PUBLIC_KEY.test(hubSigningKey)) {
    throw new Error('FACET_HUB_SIGNING_KEY must be the hub\'s Ed25519 public key (base64 of 32 bytes, 44 characters ending in "=") when FACET_HUB_URL is set');
  }
  const site = env.FACET_FEDERATION_SITE ?? '';
  if (!SITE_CODE.test(site)) {
    throw new Error(`FACET_FEDERATION_SITE must be this node's code in the hub's registry (1-32 letters, digits, _ or -) when FACET_HUB_URL is set`);
  }
  return { hubUrl, hubSigningKey, site };
}
