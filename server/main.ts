#!/usr/bin/env node
import './production-default';
import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from './config/config';
import { Client } from 'pg';
import { demoSitesNamed, loadDemoCohort } from './demo/demo-cohort';
import { startFederationDemo, type FederationDemoHost } from './demo/federation-demo';
import { startEmbeddedPostgres } from './db/embedded-postgres';
import { ReaderRole, ReaderSlot, Role } from './domain';
import { unavailableCause } from './errors/database-unavailable';
import { Reader, Site } from './entities';
import { tokenExpiry } from './cli/expiry';
import { nodeIdentity } from './cli/node-identity';
import { REPORT_KINDS, report, type ReportKind } from './cli/report';
import { mrmcReportCommand } from './cli/report-mrmc';
import { upload } from './cli/upload';
import { describeRegistryProblems, siteCommand } from './cli/site';
import { verifyCommand } from './cli/verify';
import { loadOrCreateNodeIdentity } from './federation/identity';
import { addSite, loadSiteRegistry, registryEntryFor, SiteRegistryError } from './federation/site-registry';
import { createSchema, SCHEMA_FILE } from './graphql/schema';
import { startHttpServer } from './http/app';
import { startMetricsServer } from './http/metrics';
import { log } from './log';
import { jobHandlers, workEveryQueue } from './jobs/job-registry';
import type { JobQueue } from './queue/job-queue';
import { bootstrapAdminToken, hasAnySite, openNode, type OpenNode } from './node';
import { createServices, systemContext, type HubOptions } from './services';

const USAGE = `facet <command> [options]

Commands:
  serve [--demo | --demo-site CODE[,CODE]] [--with-worker] [--hub]
                        Start the API (GraphQL, graphql-ws, GraphiQL, health). Without DATABASE_URL an embedded
                        PostgreSQL starts under FACET_DATA_DIR (default ./.facet-data). --demo loads a synthetic
                        three-site study into an empty database; --demo-site loads only those demo sites' share of it,
                        grades only (a federation demo node); --with-worker also runs the job worker. --hub (or
                        FACET_MODE=hub) runs a federation hub: no patient-level data, members in FACET_SITES_DIR
                        (default ./sites), validated at start (docs/federation.md).
  demo-federation [--record FILE]
                        Start a hub and three demo nodes (one per demo site, each holding only its own patients) on
                        this machine and print a federated query to try (npm run demo:federation). Under
                        FACET_DATA_DIR/federation-demo; without DATABASE_URL on an embedded PostgreSQL there, else
                        databases <name>_hub, <name>_north… on DATABASE_URL's server. --record appends every byte
                        between the nodes and the hub to FILE.
  hub identity          Print the hub's Ed25519 signing key (made under FACET_DATA_DIR on first use); nodes pin it.
  site add <file.json> [--replace] | site remove <CODE> | site list
                        Edit the hub's member registry (FACET_SITES_DIR).
  verify <answer.json> --sites <dir> --hub-key <base64>
                        Check an exported federated answer: every signature, task hash and pooled row.
  worker                Run background jobs from the PostgreSQL queue (needs DATABASE_URL; any number of workers,
                        on any machine, may share one database; on another machine than the server, with
                        FACET_OBJECT_STORE=s3 and the same FACET_S3_* settings).
  migrate               Apply pending migrations and exit.
  create-token          Print a new API token: --role ROLE --name NAME [--site CODE] [--reader CODE]
                        [--expires-in 90d | --expires-at 2027-01-31T18:00:00Z] (default: until revoked)
  create-reader         Register a reader and print their id: --code CODE --role READER|ADJUDICATOR|SENIOR --years N
                        [--site CODE] [--slot FIRST|SECOND] (a READER without --slot takes the site's first free slot).
  emit-schema           Write schema/schema.graphql from the code.
  node identity         Print this node's federation registry entry (keys made on first use under FACET_DATA_DIR):
                        --code CODE --name NAME --contact-name NAME --contact-email EMAIL (docs/federation.md).
  register-model        Register an ONNX model version: --url URL --token TOKEN --model FILE.onnx --manifest FILE.json
                        (docs/models.md).
  report [metrics|compare|agreement]
                        A report as CSV, JSON or HTML: --url URL --token TOKEN [--format csv|json|html] [--out FILE].
                        metrics (the default) and compare also take [--group-by SITE,FEATURE], [--unclustered]
                        (per-case intervals) and [--split-version ID [--splits TEST,VALIDATION]]. metrics: one rater,
                        --model ID | --reader ID | --reader-slot FIRST|SECOND | --reader-role READER|ADJUDICATOR|SENIOR
                        (STARD flow first); compare: --model ID against every reader, or --reader ID (repeatable) |
                        --reader-slot | --reader-role; agreement: [--pooled-sites]. Withheld rows say so
                        (docs/statistics.md). Against a hub: metrics with --model SHA256 or --reader-slot, answered by
                        the member sites (docs/federation.md).
                        report --mrmc: the model against the readers as a group (MRMC): --model ID [--role READER]
                        [--figure-of-merit AUC|SENSITIVITY|SPECIFICITY] [--covariance JACKKNIFE|DELONG|UNBIASED]
                        [--independent] [--threshold N] [--format csv|json].
  upload <folder>       Upload a cohort folder to a node: --url URL --token TOKEN [--site CODE]
                        [--batch-files 20] [--batch-mb 32]. DICOM in any structure plus patients.csv,
                        joint-images.csv, readings.csv, reference.csv; resumes after an interruption (docs/ingest.md).

Environment: DATABASE_URL, HOST, PORT, FACET_DATA_DIR, FACET_EMBEDDED_PG_PORT, FACET_INTROSPECTION,
FACET_MAX_QUERY_DEPTH, FACET_MAX_ALIASES, FACET_MAX_BODY_BYTES, FACET_MAX_ANONYMOUS_BODY_BYTES,
FACET_MAX_QUERY_TOKENS, FACET_OBJECT_STORE, FACET_S3_BUCKET, FACET_S3_ENDPOINT, FACET_MODE, FACET_SITES_DIR, FACET_HUB_URL, FACET_HUB_SIGNING_KEY, FACET_FEDERATION_SITE
(docs/configuration.md).`;

/** --url and --token of the commands that talk to a running node (defaults: FACET_URL, FACET_TOKEN). */
const NODE_OPTIONS = {
  url: { type: 'string', default: process.env.FACET_URL },
  token: { type: 'string', default: process.env.FACET_TOKEN },
} as const;

/** The node's URL without trailing slashes, for joining paths. */
const baseUrl = (url: string): string => url.replace(/\/+$/, '');

/** Closes the node once on SIGINT/SIGTERM: HTTP first, then the pool, then the embedded database. */
function onShutdown(close: () => Promise<void>): void {
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    log.info('shutting down', { signal });
    close()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        log.error('shutdown failed', { error });
        process.exit(1);
      });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

/**
 * Reports errors of a database outage at most once per `everyMs` (pg-boss polls each queue twice a second, so a
 * minute's outage would otherwise be hundreds of identical lines), with how many were folded into the line.
 */
function outageReporter(source: string, everyMs = 10_000): (error: unknown) => void {
  let last = 0;
  let folded = 0;
  return (error) => {
    if (Date.now() - last < everyMs) {
      folded++;
      return;
    }
    log.warn('database unavailable; carrying on', { source, cause: unavailableCause(error), folded });
    last = Date.now();
    folded = 0;
  };
}

/**
 * A long-running process (serve, worker) outlives a database outage. pg-boss 10 ends a job with
 * `this.complete(...)` or `this.fail(...)` without awaiting it (src/manager.js), so a job that ends while the
 * database is away rejects with nobody to catch it, and Node's default for that is to exit. Such a rejection is
 * the outage, not a bug: it is reported and the process carries on (the job stays active until its expiry, then
 * pg-boss retries it). Any other unhandled rejection still ends the process, as before.
 */
function surviveDatabaseOutages(): void {
  const report = outageReporter('unhandled rejection');
  process.on('unhandledRejection', (reason) => {
    if (unavailableCause(reason)) return report(reason);
    log.error('fatal: unhandled rejection', { error: reason });
    process.exit(1);
  });
}

/**
 * A hub's registry and identity, or null for a node. The registry is validated before anything starts: any problem
 * stops the start, every problem listed with its file and field.
 */
async function hubOptions(config: Config, asHub: boolean): Promise<HubOptions | null> {
  if (!asHub && config.mode !== 'hub') return null;
  let registry;
  try {
    registry = await loadSiteRegistry(config.sitesDir);
  } catch (error) {
    if (!(error instanceof SiteRegistryError)) throw error;
    process.stderr.write(
      `Refusing to start the hub: the registry ${config.sitesDir} has ${error.problems.length} problem(s):\n${describeRegistryProblems(error)}\n`,
    );
    process.exit(1);
  }
  return {
    sitesDir: config.sitesDir,
    secureRoundSeconds: config.secureRoundSeconds,
    registry,
    identity: await loadOrCreateNodeIdentity(config.dataDir),
    onRegistryProblem: (error) => log.warn('the site registry changed and is not valid; the last valid one stays in force', { error }),
  };
}

async function serve(config: Config, argv: string[]): Promise<void> {
  surviveDatabaseOutages();
  const { values } = parseArgs({
    args: argv,
    options: {
      demo: { type: 'boolean', default: false },
      'demo-site': { type: 'string' },
      'with-worker': { type: 'boolean', default: false },
      hub: { type: 'boolean', default: false },
    },
  });
  // A federation demo node's share: those sites' patients and grades (statistics need no images), checked before anything starts.
  const demoSites = values['demo-site'] === undefined ? null : demoSitesNamed(values['demo-site'].split(','));
  if (demoSites && values.demo) throw new Error('--demo loads every demo site and --demo-site only some: use one of them');
  if ((values.hub || config.mode === 'hub') && (values.demo || demoSites)) {
    throw new Error('--demo loads patients, and a hub holds none: start the demo nodes separately (facet demo-federation does)');
  }
  const hub = await hubOptions(config, values.hub);
  const node = await openNode(config, { hub });
  let server: Awaited<ReturnType<typeof startHttpServer>> | null = null;
  let metrics: Awaited<ReturnType<typeof startMetricsServer>> | null = null;
  let queue: JobQueue | null = null;
  onShutdown(async () => {
    await metrics?.close();
    await server?.close();
    await node.services.federationClaimLoop?.stop();
    await node.services.federatedInferenceRunner.stopRelay();
    await queue?.stop();
    await node.services.federationNode.close();
    await node.close();
  });
  let admin: Awaited<ReturnType<typeof bootstrapAdminToken>>;
  try {
    const swept = await node.services.ingest.sweepStorage(config.orphanMinAgeSeconds * 1000);
    if (swept.temp || swept.orphans) log.info('object store swept', swept);
    // The queue first: mutations (and the demo's inference job) enqueue in their own transactions.
    queue = await startQueue(node);
    if ((values.demo || demoSites) && !(await hasAnySite(node))) {
      const started = Date.now();
      const loaded = await loadDemoCohort(node.services, demoSites ? { sites: demoSites.map((s) => s.code), images: false } : {});
      log.info('demo cohort loaded', { ...loaded, ms: Date.now() - started });
    }
    const schema = await createSchema(node.services);
    server = await startHttpServer(config, node.services, schema, node.dataSource);
    metrics = await serveMetrics(config, node);
    admin = await bootstrapAdminToken(node, config.dataDir);
    // A hub's only jobs are its deadlines and its secure rounds' attempt deadlines, which must run for answers to come: it works them itself.
    if (values['with-worker'] || hub) await startWorking(node);
  } catch (error) {
    await metrics?.close();
    await server?.close();
    await queue?.stop();
    await node.close();
    throw error;
  }
  const tryWith = admin.fileWorks ? `$(cat '${admin.file}')` : '<token>';
  process.stdout.write(
    [
      '',
      `Facet ${hub ? 'hub ' : ''}is running${node.embedded ? ' on its embedded PostgreSQL' : ''}.`,
      ...(hub
        ? [
            `  Members:   ${hub.registry.sites.map((s) => s.code).join(', ') || 'none yet (facet site add <file.json>)'} (${hub.sitesDir})`,
            `  Hub signing key (nodes set FACET_HUB_SIGNING_KEY to it): ${hub.identity.public.signingKey}`,
          ]
        : []),
      `  Web app:   ${server.url}/  (sign in with a token)`,
      `  GraphQL:   ${server.url}/graphql  (graphql-ws on the same URL)`,
      `  GraphiQL:  ${server.url}/graphiql`,
      ...(metrics ? [`  Metrics:   ${metrics.url}  (Prometheus, no token on this port)`] : []),
      // The secret is printed on the one start that minted it, never again (a log must not keep handing it out).
      ...(admin.secret
        ? [`  Admin token (shown this once; also in ${admin.file}):`, `    ${admin.secret}`]
        : admin.fileWorks
          ? [`  Admin token: in ${admin.file} (made at the first start, not shown again)`]
          : [`  Admin token: none made (this database already has tokens). Make one: facet create-token --role ADMIN --name NAME`]),
      `  Try: curl -s ${server.url}/graphql -H 'content-type: application/json' -H "authorization: Bearer ${tryWith}" -d '{"query":"{ sites { nodes { code name } } }"}'`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
}

/** Starts the node's queue (creating pg-boss's schema and our queues), for sending. */
async function startQueue(node: OpenNode): Promise<JobQueue> {
  const queue = node.services.queue;
  const outage = outageReporter('queue');
  queue.onError((error) => (unavailableCause(error) ? outage(error) : log.error('queue error', { error })));
  await queue.start();
  return queue;
}

/** Runs every queue's handler in this process (the queue is started), and the federation claim loop of a member node. */
async function startWorking(node: OpenNode): Promise<void> {
  const queues = await workEveryQueue(node.services.queue, jobHandlers(node.services));
  log.info('worker ready', { queues });
  const loop = node.services.federationClaimLoop;
  if (loop) {
    const identity = await node.services.federationNode.identity();
    loop.start();
    // Progress of federated inference jobs to the hub, and their results when they end (docs/federation.md section 8).
    node.services.federatedInferenceRunner.startRelay(500, (error) => log.warn('federated inference relay', { error: (error as Error).message }));
    log.info('federation claim loop started (one per node: the worker holding the advisory lock claims)', {
      site: node.services.federationNode.options?.site,
      keyId: identity.public.keyId,
    });
  }
}

async function worker(config: Config): Promise<void> {
  if (!config.databaseUrl) {
    throw new Error('worker needs DATABASE_URL: the embedded database belongs to `serve` (use `serve --with-worker` there)');
  }
  surviveDatabaseOutages();
  const node = await openNode(config, { applicationName: 'facet-worker', hub: await hubOptions(config, false) });
  let queue: JobQueue | null = null;
  let metrics: Awaited<ReturnType<typeof startMetricsServer>> | null = null;
  onShutdown(async () => {
    await metrics?.close();
    await node.services.federationClaimLoop?.stop();
    await node.services.federatedInferenceRunner.stopRelay();
    await queue?.stop();
    await node.services.federationNode.close();
    await node.close();
  });
  queue = await startQueue(node);
  // Before the handlers: a scraper finds the worker's counters from its first job on.
  metrics = await serveMetrics(config, node);
  await startWorking(node);
}

/** The Prometheus listener of FACET_METRICS_PORT, when set: every process (serve, worker) has its own counters. */
async function serveMetrics(config: Config, node: OpenNode): Promise<Awaited<ReturnType<typeof startMetricsServer>> | null> {
  if (config.metricsPort === null) return null;
  const metrics = await startMetricsServer(config.metricsHost, config.metricsPort, node.services);
  log.info('metrics listening', { url: metrics.url });
  return metrics;
}

async function migrate(config: Config): Promise<void> {
  const node = await openNode(config);
  await node.close();
  process.stdout.write('Migrations are up to date.\n');
}

async function createToken(config: Config, argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      role: { type: 'string' },
      name: { type: 'string' },
      site: { type: 'string' },
      reader: { type: 'string' },
      'expires-in': { type: 'string' },
      'expires-at': { type: 'string' },
    },
  });
  const role = values.role as Role;
  if (!Object.values(Role).includes(role) || !values.name) throw new Error(`create-token needs --role (${Object.values(Role).join('|')}) and --name`);
  const expiresAt = tokenExpiry({ expiresIn: values['expires-in'], expiresAt: values['expires-at'] });
  const node: OpenNode = await openNode(config);
  try {
    const site = values.site ? await node.dataSource.getRepository(Site).findOneBy({ code: values.site }) : null;
    if (values.site && !site) throw new Error(`No site with code ${values.site}`);
    const reader = values.reader ? await node.dataSource.getRepository(Reader).findOneBy({ code: values.reader }) : null;
    if (values.reader && !reader) throw new Error(`No reader with code ${values.reader}`);
    const { secret } = await node.services.tokens.createApiToken(systemContext('cli'), {
      name: values.name,
      role,
      siteId: site?.id,
      readerId: reader?.id,
      expiresAt,
    });
    process.stdout.write(`${secret}\n`);
  } finally {
    await node.close();
  }
}

async function createReader(config: Config, argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { code: { type: 'string' }, role: { type: 'string' }, years: { type: 'string' }, site: { type: 'string' }, slot: { type: 'string' } },
  });
  const role = values.role as ReaderRole;
  const slot = values.slot as ReaderSlot | undefined;
  const years = Number(values.years);
  if (!values.code || !Object.values(ReaderRole).includes(role) || !Number.isInteger(years) || (slot && !Object.values(ReaderSlot).includes(slot))) {
    throw new Error(
      `create-reader needs --code, --role (${Object.values(ReaderRole).join('|')}) and --years; --slot is ${Object.values(ReaderSlot).join('|')}`,
    );
  }
  const node: OpenNode = await openNode(config);
  try {
    const site = values.site ? await node.dataSource.getRepository(Site).findOneBy({ code: values.site }) : null;
    if (values.site && !site) throw new Error(`No site with code ${values.site}`);
    const reader = await node.services.readers.createReader(systemContext('cli'), {
      code: values.code,
      role,
      yearsOfExperience: years,
      siteId: site?.id,
      slot,
    });
    process.stdout.write(`${JSON.stringify({ id: reader.id, code: reader.code, role: reader.role, slot: reader.slot })}\n`);
  } finally {
    await node.close();
  }
}

async function emitSchema(): Promise<void> {
  // Building the schema needs no database: resolvers are only constructed, never called.
  const { DataSource } = await import('typeorm');
  await createSchema(createServices(new DataSource({ type: 'postgres' }), { objectRoot: os.tmpdir() }), { emitSchemaFile: SCHEMA_FILE });
  process.stdout.write(`Wrote ${SCHEMA_FILE}\n`);
}

async function uploadFolder(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...NODE_OPTIONS,
      site: { type: 'string' },
      'batch-files': { type: 'string', default: '20' },
      'batch-mb': { type: 'string', default: '32' },
    },
  });
  if (positionals.length !== 1 || !values.url || !values.token) throw new Error('upload needs a folder, --url (or FACET_URL) and --token (or FACET_TOKEN)');
  const { rejected } = await upload({
    folder: positionals[0],
    url: baseUrl(values.url),
    token: values.token,
    site: values.site,
    batchFiles: Number(values['batch-files']),
    batchBytes: Number(values['batch-mb']) * 1024 * 1024,
  });
  process.exitCode = rejected ? 1 : 0;
}

async function registerModel(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...NODE_OPTIONS,
      model: { type: 'string' },
      manifest: { type: 'string' },
    },
  });
  if (!values.url || !values.token || !values.model || !values.manifest) throw new Error('register-model needs --url, --token, --model and --manifest');
  const form = new FormData();
  form.append('manifest', new Blob([await readFile(values.manifest)], { type: 'application/json' }), 'manifest.json');
  form.append('model', new Blob([await readFile(values.model)], { type: 'application/octet-stream' }), 'model.onnx');
  const response = await fetch(`${baseUrl(values.url)}/api/model-versions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${values.token}` },
    body: form,
  });
  const body = (await response.json()) as { id?: string; sha256?: string; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  if (!response.ok) throw new Error(`${body.errors?.[0]?.extensions?.code ?? response.status}: ${body.errors?.[0]?.message ?? 'registration failed'}`);
  process.stdout.write(`${JSON.stringify(body)}\n`);
}

async function metricsReport(argv: string[]): Promise<void> {
  const kind: ReportKind = REPORT_KINDS.includes(argv[0] as ReportKind) ? (argv.shift() as ReportKind) : 'metrics';
  const { values } = parseArgs({
    args: argv,
    options: {
      ...NODE_OPTIONS,
      model: { type: 'string' },
      reader: { type: 'string', multiple: true },
      'reader-slot': { type: 'string' },
      'reader-role': { type: 'string' },
      'group-by': { type: 'string', default: kind === 'compare' ? '' : 'SITE,FEATURE' },
      'split-version': { type: 'string' },
      splits: { type: 'string' },
      unclustered: { type: 'boolean', default: false },
      'pooled-sites': { type: 'boolean', default: false },
      format: { type: 'string', default: 'csv' },
      out: { type: 'string' },
    },
  });
  const format = values.format as 'csv' | 'json' | 'html';
  const readers = values.reader ?? [];
  const raters = [values.model, readers.length ? readers : undefined, values['reader-slot'], values['reader-role']].filter((r) => r !== undefined);
  const others = [readers.length ? readers : undefined, values['reader-slot'], values['reader-role']].filter((r) => r !== undefined);
  const problem =
    !values.url || !values.token
      ? 'report needs --url and --token'
      : !['csv', 'json', 'html'].includes(format)
        ? 'report needs --format csv|json|html'
        : kind === 'metrics' && (raters.length !== 1 || readers.length > 1)
          ? 'report metrics needs one rater: --model, --reader, --reader-slot or --reader-role'
          : kind === 'compare' && (!values.model || others.length > 1)
            ? 'report compare needs --model, and at most one of --reader (repeatable), --reader-slot, --reader-role'
            : values.splits && !values['split-version']
              ? '--splits needs --split-version'
              : kind === 'agreement' && values['split-version']
                ? 'report agreement covers every eligible patient: it takes no --split-version'
                : kind === 'agreement' && (raters.length > 0 || values.unclustered)
                  ? 'report agreement takes no rater and no --unclustered (kappas have no intervals)'
                  : kind !== 'agreement' && values['pooled-sites']
                    ? '--pooled-sites is for report agreement (metrics and compare group with --group-by)'
                    : null;
  if (problem) throw new Error(problem);
  const text = await report({
    kind,
    url: baseUrl(values.url as string),
    token: values.token as string,
    modelVersionId: values.model,
    readerIds: readers,
    readerSlot: values['reader-slot']?.toUpperCase(),
    readerRole: values['reader-role']?.toUpperCase(),
    groupBy: values['group-by'] ? values['group-by'].split(',').map((g) => g.trim().toUpperCase()) : [],
    splitVersionId: values['split-version'],
    splits: values.splits ? values.splits.split(',').map((x) => x.trim().toUpperCase()) : [],
    clustered: !values.unclustered,
    bySite: !values['pooled-sites'],
    format,
    out: values.out,
  });
  if (!values.out) process.stdout.write(text);
}

/** `facet hub identity`: the hub's public signing key, made on first use (the same file a serving hub uses). */
async function hubIdentity(config: Config, argv: string[]): Promise<void> {
  if (argv[0] !== 'identity' || argv.length !== 1) throw new Error('usage: facet hub identity');
  const identity = await loadOrCreateNodeIdentity(config.dataDir);
  process.stdout.write(`${JSON.stringify({ signer: 'hub', signingKey: identity.public.signingKey, keyId: identity.public.keyId }, null, 2)}\n`);
}

async function site(config: Config, argv: string[]): Promise<void> {
  try {
    process.stdout.write(await siteCommand(config.sitesDir, argv));
  } catch (error) {
    if (!(error instanceof SiteRegistryError)) throw error;
    process.stderr.write(`${describeRegistryProblems(error)}\n`);
    process.exitCode = 1;
  }
}

async function verify(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { sites: { type: 'string' }, 'hub-key': { type: 'string' } } });
  if (positionals.length !== 1 || !values.sites || !values['hub-key']) throw new Error('usage: facet verify <answer.json> --sites <dir> --hub-key <base64>');
  const { text, exitCode } = await verifyCommand(positionals[0], values.sites, values['hub-key']);
  process.stdout.write(text);
  process.exitCode = exitCode;
}

/** `facet node identity`: the registry entry on stdout (redirect it to <code>.json), the key id to compare on stderr. */
async function nodeCommand(config: Config, argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'identity') throw new Error('usage: facet node identity --code CODE --name NAME --contact-name NAME --contact-email EMAIL');
  const { entry, keyId } = await nodeIdentity(config.dataDir, rest);
  process.stdout.write(`${JSON.stringify(entry, null, 2)}\n`);
  process.stderr.write(`Key id (read it to the hub operator): ${keyId}\n`);
}

/** The database server and identities of `demo-federation`, which server/demo may not reach itself. */
function federationDemoHost(config: Config, root: string): FederationDemoHost {
  return {
    facet: { command: process.execPath, args: [__filename] },
    databases: async (names) => {
      const embedded = config.databaseUrl
        ? null
        : await startEmbeddedPostgres(root, config.embeddedPostgresPort, (line) => {
            if (/FATAL|PANIC/.test(line)) log.warn('embedded postgres', { line });
          });
      const base = new URL(embedded?.url ?? (config.databaseUrl as string));
      const urls = names.map((name) => Object.assign(new URL(base), { pathname: `/${name}` }).toString());
      try {
        // DATABASE_URL's own database need not exist: then the server's maintenance database takes the CREATEs.
        let admin = new Client({ connectionString: base.toString() });
        await admin.connect().catch(async (error: { code?: string }) => {
          if (error.code !== '3D000') throw error;
          admin = new Client({ connectionString: Object.assign(new URL(base), { pathname: '/postgres' }).toString() });
          await admin.connect();
        });
        try {
          for (const name of names) {
            const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
            // 42P04: a launcher starting at the same moment made it first.
            if (!rowCount)
              await admin.query(`CREATE DATABASE "${name}"`).catch((error: { code?: string }) => (error.code === '42P04' ? undefined : Promise.reject(error)));
          }
        } finally {
          await admin.end();
        }
      } catch (error) {
        await embedded?.stop();
        throw error;
      }
      return { urls, embedded: embedded !== null, stop: async () => embedded?.stop() };
    },
    nodeEntry: async (dataDir, site) => {
      const identity = await loadOrCreateNodeIdentity(dataDir);
      return { entry: registryEntryFor(identity, site), keyId: identity.public.keyId };
    },
    hubSigningKey: async (dataDir) => (await loadOrCreateNodeIdentity(dataDir)).public.signingKey,
    addMember: async (sitesDir, entry) => {
      await addSite(sitesDir, entry, { replace: true });
    },
  };
}

/** `facet demo-federation`: runs until Ctrl-C (or until a member dies), then stops every process it started. */
async function demoFederation(config: Config, argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { record: { type: 'string' } } });
  const root = path.join(config.dataDir, 'federation-demo');
  const databasePrefix = config.databaseUrl ? decodeURIComponent(new URL(config.databaseUrl).pathname.slice(1)) || 'facet' : 'facet';
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(databasePrefix))
    throw new Error(`DATABASE_URL's database name must be lower-case letters, digits and _ (at most 41), got ${JSON.stringify(databasePrefix)}`);
  process.stdout.write(`Starting a hub and three demo nodes under ${root} (first start: a minute or two) ...\n`);
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  let running = false;
  // Ctrl-C while starting: exit now; the exit hooks kill the members started so far and stop the embedded database.
  void signalled.then(() => {
    if (running) return;
    process.stderr.write('Stopped while starting.\n');
    process.exit(130);
  });
  const demo = await startFederationDemo(federationDemoHost(config, root), {
    root,
    host: config.host,
    port: config.port,
    databasePrefix,
    env: process.env,
    record: values.record ? path.resolve(values.record) : null,
  });
  running = true;
  process.stdout.write(demo.instructions);
  const ended = await Promise.race([signalled.then((signal) => ({ signal })), demo.firstExit]);
  if ('name' in ended) process.stderr.write(`${ended.name} stopped on its own (exit ${ended.code}); stopping the others. See its log under ${root}.\n`);
  await demo.stop();
  process.stdout.write('The federation demo stopped.\n');
  process.exitCode = 'name' in ended ? 1 : 0;
}

async function main(): Promise<void> {
  const [command, ...argv] = process.argv.slice(2);
  const config = loadConfig();
  switch (command) {
    case 'serve':
      return serve(config, argv);
    case 'worker':
      return worker(config);
    case 'migrate':
      return migrate(config);
    case 'create-token':
      return createToken(config, argv);
    case 'create-reader':
      return createReader(config, argv);
    case 'emit-schema':
      return emitSchema();
    case 'upload':
      return uploadFolder(argv);
    case 'report':
      return argv.includes('--mrmc') ? mrmcReportCommand(argv, { url: process.env.FACET_URL, token: process.env.FACET_TOKEN }) : metricsReport(argv);
    case 'register-model':
      return registerModel(argv);
    case 'hub':
      return hubIdentity(config, argv);
    case 'site':
      return site(config, argv);
    case 'verify':
      return verify(argv);
    case 'node':
      return nodeCommand(config, argv);
    case 'demo-federation':
      return demoFederation(config, argv);
    default:
      process.stderr.write(`${USAGE}\n`);
      process.exit(command === undefined || command === '--help' ? 0 : 2);
  }
}

main().catch((error: unknown) => {
  log.error('fatal', { error });
  process.exit(1);
});
