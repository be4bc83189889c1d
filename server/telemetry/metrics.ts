import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's Prometheus metrics (prom-client), one registry per process: counters and histograms are counted
 * where things happen (HTTP, GraphQL, ingest, inference, LISTEN), gauges of shared state (jobs, queues, the
 * connection pool) are set just before each scrape by MonitoringService. Served at /metrics (server/http/metrics.ts).
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'facet_' });

/** Request latency buckets, in seconds: 5 ms to 30 s (a STOW batch or a metrics query with a bootstrap is seconds). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const httpRequests = new Counter({
  name: 'facet_http_requests_total',
  help: 'HTTP requests answered, by method, route pattern (not the path: UIDs stay out of labels) and status code',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [registry],
});
export const httpDuration = new Histogram({
  name: 'facet_http_request_duration_seconds',
  help: 'HTTP request latency until the answer was sent, by method and route pattern',
  labelNames: ['method', 'route'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});
export const graphqlOperations = new Counter({
  name: 'facet_graphql_operations_total',
  help: 'GraphQL operations over HTTP, by operation type and name (bounded: see operationLabel) and outcome',
  labelNames: ['type', 'operation', 'outcome'] as const,
  registers: [registry],
});
export const graphqlDuration = new Histogram({
  name: 'facet_graphql_operation_duration_seconds',
  help: 'GraphQL operation latency over HTTP, by operation type and name',
  labelNames: ['type', 'operation'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});
export const ingestObjects = new Counter({
  name: 'facet_ingest_objects_total',
  help: 'DICOM objects received by STOW-RS, by outcome (stored: the batch landed; rejected: the batch was refused)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
export const ingestBytes = new Counter({
  name: 'facet_ingest_bytes_total',
  help: 'Bytes of DICOM objects received by STOW-RS, by outcome',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
export const predictions = new Counter({
  name: 'facet_predictions_total',
  help: 'Predictions written by inference jobs in this process (rate() of it is predictions per second)',
  registers: [registry],
});
export const listenReconnects = new Counter({
  name: 'facet_listen_reconnects_total',
  help: 'Times the pub/sub LISTEN connection to PostgreSQL was lost and opened again',
  registers: [registry],
});
export const jobsByStatus = new Gauge({
  name: 'facet_inference_jobs',
  help: 'Inference jobs by status (the shared database: every process reports the same numbers)',
  labelNames: ['status'] as const,
  registers: [registry],
});
export const queueDepth = new Gauge({
  name: 'facet_queue_depth',
  help: 'pg-boss jobs waiting or running per queue (created, retry, active), from the shared database',
  labelNames: ['queue'] as const,
  registers: [registry],
});
export const dbPool = new Gauge({
  name: 'facet_db_pool_connections',
  help: "This process's PostgreSQL pool: total connections open, idle ones, and clients waiting for one",
  labelNames: ['state'] as const,
  registers: [registry],
});

/** Distinct GraphQL operation names kept as labels; later ones share `other`, so a client cannot grow the series without bound. */
export const MAX_OPERATION_LABELS = 200;
const operationNames = new Set<string>();

/**
 * The label of a GraphQL operation: its name when it is a GraphQL name of at most 64 characters and one of the
 * first MAX_OPERATION_LABELS names seen, `anonymous` without a name, `other` beyond the bound.
 */
export function operationLabel(name: string | null | undefined): string {
  if (!name) return 'anonymous';
  if (!/^[_A-Za-z][_0-9A-Za-z]{0,63}$/.test(name)) return 'other';
  if (operationNames.has(name)) return name;
  if (operationNames.size >= MAX_OPERATION_LABELS) return 'other';
  operationNames.add(name);
  return name;
}
