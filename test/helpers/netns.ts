import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A Linux network namespace joined to the host by one veth pair: the shape of a hospital network for the
 * federation tests. Inside it there is its own loopback and one /30 link to the host, and no route anywhere else,
 * so a process in it reaches only what listens on `hostAddress` (the proxy the test puts there). Nothing outside
 * can reach a server inside that listens on 127.0.0.1. PostgreSQL stays reachable through its Unix socket, which
 * lives in the file system, not in the network (`unixSocketUrl`).
 *
 * Needs root and iproute2 (CI runs as root); `netnsAvailable()` says whether this machine allows it.
 */
export interface NetworkNamespace {
  name: string;
  /** The host's end of the link: listen here to be reachable from inside. */
  hostAddress: string;
  /** The namespace's end of the link. */
  innerAddress: string;
  /** argv prefix that runs a command inside: `[...ns.exec, 'node', 'main.js']`. */
  exec: string[];
  destroy(): Promise<void>;
}

export async function netnsAvailable(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  try {
    await run('ip', ['netns', 'list']);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates namespace `facet-<tag>-<index>` with link 10.<second>.<index>.0/30 (`second` derived from the pid so that
 * parallel test files do not collide). Removes a leftover of the same name first (a killed earlier run).
 */
export async function createNetworkNamespace(tag: string, index: number): Promise<NetworkNamespace> {
  const second = 200 + (process.pid % 50);
  const name = `facet-${tag}-${index}`.slice(0, 15);
  const hostLink = `fh${process.pid % 10_000}${tag.slice(0, 3)}${index}`.slice(0, 15);
  const innerLink = `fn${process.pid % 10_000}${tag.slice(0, 3)}${index}`.slice(0, 15);
  const hostAddress = `10.${second}.${index}.1`;
  const innerAddress = `10.${second}.${index}.2`;
  await run('ip', ['netns', 'del', name]).catch(() => undefined);
  await run('ip', ['link', 'del', hostLink]).catch(() => undefined);
  const steps: string[][] = [
    ['netns', 'add', name],
    ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', innerLink],
    ['link', 'set', innerLink, 'netns', name],
    ['addr', 'add', `${hostAddress}/30`, 'dev', hostLink],
    ['link', 'set', hostLink, 'up'],
    ['-n', name, 'addr', 'add', `${innerAddress}/30`, 'dev', innerLink],
    ['-n', name, 'link', 'set', innerLink, 'up'],
    ['-n', name, 'link', 'set', 'lo', 'up'],
  ];
  for (const step of steps) await run('ip', step);
  return {
    name,
    hostAddress,
    innerAddress,
    exec: ['ip', 'netns', 'exec', name],
    destroy: async () => {
      await run('ip', ['link', 'del', hostLink]).catch(() => undefined);
      await run('ip', ['netns', 'del', name]).catch(() => undefined);
    },
  };
}

/** The same database reached through PostgreSQL's Unix socket (the only way from inside a namespace). */
export function unixSocketUrl(databaseUrl: string, socketDir = '/var/run/postgresql'): string {
  const url = new URL(databaseUrl);
  return `postgres://${url.username || 'postgres'}@/${url.pathname.slice(1)}?host=${encodeURIComponent(socketDir)}&port=${url.port || 5432}`;
}
