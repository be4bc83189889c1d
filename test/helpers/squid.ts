import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port';

/**
 * A real forward proxy for tests: Debian's squid (`apt-get install -y squid`; .ci/run installs it), started on a free
 * port in a private folder, allowing CONNECT to any port from localhost (and from the sources and to the one destination
 * the options name) and refusing every request that asks for a protocol upgrade (WebSocket): the kind of hospital
 * proxy the federation's long-poll must get through.
 */
export interface Squid {
  url: string;
  port: number;
  /** The access log's lines (squid writes a CONNECT line when its tunnel closes). */
  accessLog(): Promise<string[]>;
  stop(): Promise<void>;
}

export const SQUID_BINARY = ['/usr/sbin/squid', '/usr/local/sbin/squid'].find((p) => spawnSync(p, ['-v']).status === 0) ?? null;

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface SquidOptions {
  /** More addresses to listen on (the host's end of a network namespace's link), on the same port as 127.0.0.1. */
  listen?: string[];
  /** More source addresses (CIDR) allowed to use it (the namespaces' inner addresses). */
  allowSources?: string[];
  /** Only tunnels to this host and port (the hub's, as a hospital proxy names it); anything else is refused. */
  onlyTo?: { host: string; port: number };
}

export async function startSquid(options: SquidOptions = {}): Promise<Squid> {
  if (!SQUID_BINARY) throw new Error('squid is not installed: apt-get install -y squid (the federation proxy tests need a real CONNECT proxy)');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facet-squid-'));
  // Started as root, squid drops to its own user: that user writes the logs and the pid file here.
  await fs.chmod(dir, 0o777);
  const port = await freePort();
  const config = [
    ...['127.0.0.1', ...(options.listen ?? [])].map((address) => `http_port ${address}:${port}`),
    `pid_filename ${dir}/squid.pid`,
    `access_log stdio:${dir}/access.log`,
    `cache_log ${dir}/cache.log`,
    `coredump_dir ${dir}`,
    'cache deny all',
    'cache_mem 8 MB',
    'pinger_enable off',
    'shutdown_lifetime 0 seconds',
    'acl localhost_src src 127.0.0.1/32',
    'acl upgrade req_header Upgrade .',
    'http_access deny upgrade',
    ...(options.onlyTo
      ? [
          `acl only_host dst ${options.onlyTo.host}/32`,
          `acl only_port port ${options.onlyTo.port}`,
          'http_access deny !only_host',
          'http_access deny !only_port',
        ]
      : []),
    'http_access allow localhost_src',
    ...(options.allowSources?.length ? [`acl namespace_src src ${options.allowSources.join(' ')}`, 'http_access allow namespace_src'] : []),
    'http_access deny all',
  ].join('\n');
  await fs.writeFile(path.join(dir, 'squid.conf'), `${config}\n`);
  const child: ChildProcess = spawn(SQUID_BINARY, ['-N', '-f', path.join(dir, 'squid.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 150 && !(await accepts(port)); i++) {
    if (child.exitCode !== null) throw new Error(`squid exited at start: ${output}${await fs.readFile(path.join(dir, 'cache.log'), 'utf8').catch(() => '')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!(await accepts(port))) throw new Error(`squid did not listen on ${port} within 15 s: ${output}`);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    accessLog: async () => (await fs.readFile(path.join(dir, 'access.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
