/**
 * GraphQL speed against a floor: the real server on the demo cohort beside a bare Node http server that answers the
 * same JSON from one hand-written `pg` query (no auth, no audit, no GraphQL), both in this process, over the same
 * PostgreSQL. Each query is driven closed-loop at 16 and 64 connections, the two servers alternated three times;
 * the medians of req/s and p99 are printed with the ratio Facet / bare.
 *
 *   npm run bench:graphql                       # BENCH_SECONDS=5 BENCH_CONNECTIONS=16,64 BENCH_ROUNDS=3
 */
import '../server/production-default';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool as PgPool } from 'pg';
import { Pool } from 'undici';
import { loadDemoCohort } from '../server/demo/demo-cohort';
import { Role } from '../server/domain';
import { systemContext } from '../server/services';
import { withBenchNode } from './bench-node';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '16,64').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Case {
  name: string;
  graphql: string;
  /** The bare server's one SQL statement: returns one row whose `body` column is the whole response JSON. */
  sql: string;
}

const CASES: Case[] = [
  {
    name: 'sites list',
    graphql: '{ sites { nodes { code name } } }',
    sql: `SELECT json_build_object('data', json_build_object('sites', json_build_object('nodes',
            coalesce((SELECT json_agg(json_build_object('code', code, 'name', name) ORDER BY code) FROM site), '[]'::json)))) AS body`,
  },
  {
    name: '50 patients with joints and reference grades',
    graphql: '{ patients(first: 50) { nodes { pseudonym sex joints { level side referenceGrades { modality feature grade notAssessable source } } } } }',
    sql: `SELECT json_build_object('data', json_build_object('patients', json_build_object('nodes', coalesce((
            SELECT json_agg(json_build_object('pseudonym', p.pseudonym, 'sex', p.sex, 'joints', (
              SELECT coalesce(json_agg(json_build_object('level', j.level, 'side', j.side, 'referenceGrades', (
                SELECT coalesce(json_agg(json_build_object('modality', r.modality, 'feature', r.feature, 'grade', r.grade,
                         'notAssessable', r.not_assessable, 'source', r.source) ORDER BY r.modality, r.feature), '[]'::json)
                FROM reference_grade r WHERE r.joint_id = j.id)) ORDER BY j.level, j.side), '[]'::json)
              FROM joint j WHERE j.patient_id = p.id)) ORDER BY p.id)
            FROM (SELECT * FROM patient ORDER BY id LIMIT 50) p), '[]'::json)))) AS body`,
  },
];

interface Run {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  bytes: number;
}

/** Closed loop: `connections` requests in flight for SECONDS, each answered in full before the next. */
async function drive(url: string, headers: Record<string, string>, body: string, connections: number): Promise<Run> {
  const origin = new URL(url);
  const pool = new Pool(origin.origin, { connections, pipelining: 1 });
  const latencies: number[] = [];
  let bytes = 0;
  const end = Date.now() + SECONDS * 1000;
  const loop = async () => {
    while (Date.now() < end) {
      const started = process.hrtime.bigint();
      const response = await pool.request({ path: origin.pathname, method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      const text = await response.body.text();
      if (response.statusCode !== 200 || text.startsWith('{"errors"')) throw new Error(`${response.statusCode}: ${text.slice(0, 300)}`);
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      bytes = text.length;
    }
  };
  const startedAt = Date.now();
  await Promise.all(Array.from({ length: connections }, loop));
  const seconds = (Date.now() - startedAt) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { requestsPerSecond: latencies.length / seconds, p50: at(0.5), p99: at(0.99), bytes };
}

/** The floor: Node's http server, one pooled `pg` query, the JSON as PostgreSQL built it. */
async function startBareServer(databaseUrl: string, connections: number): Promise<{ url: string; close: () => Promise<void> }> {
  const pg = new PgPool({ connectionString: databaseUrl, max: 10 });
  const byQuery = new Map(CASES.map((c) => [JSON.stringify({ query: c.graphql }), c.sql]));
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const sql = byQuery.get(Buffer.concat(chunks).toString());
      if (!sql) {
        res.writeHead(400).end();
        return;
      }
      pg.query(sql).then(
        ({ rows }) => {
          const body = JSON.stringify(rows[0].body);
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
        },
        (error: Error) => res.writeHead(500).end(error.message),
      );
    });
  });
  server.maxConnections = connections * 2;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      await pg.end();
    },
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  await withBenchNode({ http: true }, async (node) => {
    await loadDemoCohort(node.services);
    const { secret } = await node.services.tokens.createApiToken(systemContext('bench'), { name: 'bench', role: Role.ADMIN });
    const bare = await startBareServer(node.databaseUrl, Math.max(...CONNECTIONS));
    try {
      console.log(`GraphQL against a bare pg + http server, ${SECONDS} s per run, medians of ${ROUNDS} alternated rounds`);
      for (const c of CASES) {
        const body = JSON.stringify({ query: c.graphql });
        for (const connections of CONNECTIONS) {
          const facet: Run[] = [];
          const floor: Run[] = [];
          for (let round = 0; round < ROUNDS; round++) {
            facet.push(await drive(`${node.url}/graphql`, { authorization: `Bearer ${secret}` }, body, connections));
            floor.push(await drive(bare.url, {}, body, connections));
          }
          const f = { rps: median(facet.map((r) => r.requestsPerSecond)), p99: median(facet.map((r) => r.p99)), p50: median(facet.map((r) => r.p50)) };
          const b = { rps: median(floor.map((r) => r.requestsPerSecond)), p99: median(floor.map((r) => r.p99)), p50: median(floor.map((r) => r.p50)) };
          console.log(
            `${c.name} (${(facet[0].bytes / 1024).toFixed(1)} KB), ${connections} connections: ` +
              `Facet ${f.rps.toFixed(0)} req/s (p50 ${f.p50.toFixed(1)} ms, p99 ${f.p99.toFixed(1)} ms), ` +
              `bare ${b.rps.toFixed(0)} req/s (p50 ${b.p50.toFixed(1)} ms, p99 ${b.p99.toFixed(1)} ms): ` +
              `throughput ${(f.rps / b.rps).toFixed(2)}x, p99 ${(f.p99 / b.p99).toFixed(2)}x`,
          );
        }
      }
    } finally {
      await bare.close();
    }
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
