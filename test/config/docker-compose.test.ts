import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../server/config/config';

const ROOT = path.resolve(__dirname, '../..');
interface Service {
  image?: string;
  build?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
}
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const facet = (role: 'serve' | 'worker') => Object.entries(services).filter(([, s]) => s.command?.[0] === 'node' && s.command.at(-1) === role);
const servers = facet('serve');
const workers = facet('worker');
const nginx = readFileSync(path.join(ROOT, 'deploy/nginx.conf'), 'utf8');

/** The FACET_* variables the server's code reads (as test/docs/configuration.test.ts finds them). */
function variablesTheCodeReads(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else if (name.endsWith('.ts')) {
        const code = readFileSync(file, 'utf8');
        for (const m of code.matchAll(/\benv(?:\.([A-Z][A-Z0-9_]+)|\[\s*['"]([A-Z][A-Z0-9_]+)['"]\s*\])/g)) names.add(m[1] ?? m[2]);
        for (const m of code.matchAll(/\(\s*env\s*,\s*'([A-Z][A-Z0-9_]+)'/g)) names.add(m[1]);
      }
    }
  };
  walk(path.join(ROOT, 'server'));
  return names;
}

/** The settings every process of a node must agree on: one database, one object store, one set of credentials for it. */
const SHARED = /^(DATABASE_URL|FACET_OBJECT_STORE|FACET_S3_.*|AWS_.*)$/;
const shared = (env: Record<string, string> = {}) => Object.fromEntries(Object.entries(env).filter(([k]) => SHARED.test(k)));

describe('docker-compose.yml', () => {
  it('runs two servers and two workers of the built image, PostgreSQL, MinIO, its bucket and a proxy', () => {
    expect(servers.map(([name]) => name)).toHaveLength(2);
    expect(workers.map(([name]) => name)).toHaveLength(2);
    for (const [, s] of [...servers, ...workers]) expect(s.build).toBe('.');
    expect(services.postgres.image).toMatch(/^postgres:\d+$/);
    expect(services.minio.image).toMatch(/^minio\/minio:RELEASE\./);
    expect(services.proxy.image).toMatch(/^nginx:/);
  });

  it('sets no FACET_* variable the code does not read, and each process configuration loads', () => {
    const read = variablesTheCodeReads();
    for (const [name, s] of [...servers, ...workers]) {
      const set = Object.keys(s.environment ?? {}).filter((k) => k.startsWith('FACET_') || k === 'DATABASE_URL' || k === 'HOST' || k === 'PORT');
      expect([name, set.filter((k) => !read.has(k))]).toEqual([name, []]);
      const config = loadConfig(s.environment);
      expect(config.objectStore).toEqual({
        kind: 's3',
        bucket: 'facet-objects',
        prefix: 'objects/',
        endpoint: 'http://minio:9000',
        region: 'us-east-1',
        forcePathStyle: true,
      });
      expect(config.databaseUrl).toBe(s.environment!.DATABASE_URL);
    }
  });

  it('gives servers and workers the same database and object store, and workers nothing on disk', () => {
    const [first] = servers;
    const reference = shared(first[1].environment);
    expect(Object.keys(reference).sort()).toEqual(
      [
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'DATABASE_URL',
        'FACET_OBJECT_STORE',
        'FACET_S3_BUCKET',
        'FACET_S3_ENDPOINT',
        'FACET_S3_FORCE_PATH_STYLE',
        'FACET_S3_REGION',
      ].sort(),
    );
    for (const [name, s] of [...servers, ...workers]) expect([name, shared(s.environment)]).toEqual([name, reference]);
    for (const [name, s] of workers) {
      expect([name, s.volumes ?? [], s.environment?.FACET_DATA_DIR]).toEqual([name, [], undefined]);
    }
    // A data directory per server, never shared: it holds only the bootstrap admin token.
    const volumes = servers.map(([, s]) => s.volumes?.[0]?.split(':')[0]);
    expect(new Set(volumes).size).toBe(servers.length);
  });

  it('points the database URL and the object store at the services that provide them, with their credentials', () => {
    const env = servers[0][1].environment!;
    const db = new URL(env.DATABASE_URL);
    const pg = services.postgres.environment!;
    expect([db.hostname, db.username, db.password, db.pathname.slice(1)]).toEqual(['postgres', pg.POSTGRES_USER, pg.POSTGRES_PASSWORD, pg.POSTGRES_DB]);
    const minio = services.minio.environment!;
    expect(new URL(env.FACET_S3_ENDPOINT).hostname).toBe('minio');
    expect([env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY]).toEqual([minio.MINIO_ROOT_USER, minio.MINIO_ROOT_PASSWORD]);
    // The bucket service makes exactly the bucket the node uses, at the same endpoint, with the same credentials, before any server starts.
    const script = services.bucket.entrypoint!.join(' ');
    expect(script).toContain(`mc alias set facet ${env.FACET_S3_ENDPOINT} ${minio.MINIO_ROOT_USER} ${minio.MINIO_ROOT_PASSWORD}`);
    expect(script).toContain(`mc mb --ignore-existing facet/${env.FACET_S3_BUCKET}`);
    for (const [, s] of servers) {
      expect(s.depends_on).toEqual({ postgres: { condition: 'service_healthy' }, bucket: { condition: 'service_completed_successfully' } });
    }
  });

  it('routes every path, /graphql included, to both servers through the proxy, with the WebSocket upgrade graphql-ws needs', () => {
    const upstream = /upstream\s+(\w+)\s*\{([^}]*)\}/.exec(nginx)!;
    const members = [...upstream[2].matchAll(/server\s+([\w.-]+):(\d+);/g)].map((m) => `${m[1]}:${m[2]}`);
    expect(members.sort()).toEqual(servers.map(([name, s]) => `${name}:${s.environment!.PORT}`).sort());
    for (const [, s] of servers) expect(s.environment!.HOST).toBe('0.0.0.0');
    const location = /location\s+\/\s*\{([^}]*)\}/.exec(nginx)![1];
    expect(location).toContain(`proxy_pass http://${upstream[1]};`);
    expect(location).toContain('proxy_http_version 1.1;');
    expect(location).toContain('proxy_set_header Upgrade $http_upgrade;');
    expect(location).toContain('proxy_set_header Connection $connection_upgrade;');
    expect(nginx).toMatch(/map \$http_upgrade \$connection_upgrade \{\s*default\s+upgrade;/);
    // Large enough for a STOW-RS batch of FACET_MAX_STOW_BYTES (the default, which the servers keep).
    expect(/client_max_body_size\s+(\d+)g;/.exec(nginx)?.[1]).toBe(String(loadConfig({}).maxStowBytes / 1024 ** 3));
    expect(services.proxy.volumes).toContain('./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro');
    expect(services.proxy.ports).toEqual(['4000:80']);
  });
});
