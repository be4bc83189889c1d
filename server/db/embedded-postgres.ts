import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { chmod, chown, cp, lstat, mkdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';

export interface EmbeddedDatabase {
  url: string;
  /** Where the cluster's files are (`<dataDir>/pg`, or the relocated directory it links to). */
  clusterDir: string;
  stop(): Promise<void>;
}

const DATABASE = 'facet';
/** PostgreSQL refuses to run as root; as root the cluster runs as this system user (created when missing). */
const SERVICE_USER = 'postgres';
/** Where a root-run node keeps what the service user must reach when the checkout or data directory is private. */
export const SHARED_ROOT = '/var/lib/facet/embedded-postgres';

/** The password of the embedded cluster: random at first start, kept beside it (0600). */
async function clusterPassword(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'pg-password');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const password = randomBytes(18).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

export interface Binaries {
  initdb: string;
  postgres: string;
}

/**
 * The PostgreSQL binaries that `embedded-postgres` installs for this platform (its optional
 * `@embedded-postgres/<os>-<arch>` package): `native/bin` beside the package's entry point, as that entry point
 * itself computes them. Resolved, not imported: the package is an ES module and this file is CommonJS.
 */
export async function packagedBinaries(): Promise<Binaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const specifier = `@embedded-postgres/${platform}-${process.arch}`;
  let entry: string;
  try {
    entry = require.resolve(specifier);
  } catch (error) {
    throw new Error(`No embedded PostgreSQL for ${platform}-${process.arch} (${specifier} is not installed); set DATABASE_URL instead`, { cause: error });
  }
  const bin = path.resolve(path.dirname(entry), '..', 'native', 'bin');
  return { initdb: path.join(bin, 'initdb'), postgres: path.join(bin, 'postgres') };
}

interface ServiceUser {
  uid: number;
  gid: number;
}

function serviceUser(): ServiceUser {
  const id = (flag: string) => Number(execFileSync('id', [flag, SERVICE_USER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('groupadd', ['--system', SERVICE_USER], { stdio: 'ignore' });
    execFileSync('useradd', ['--system', '--gid', SERVICE_USER, '--no-create-home', '--shell', '/usr/sbin/nologin', SERVICE_USER], { stdio: 'ignore' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** Whether `user` may search every directory on the way to `target` (it needs that to open or run anything there). */
export function reachable(target: string, user: ServiceUser): boolean {
  let dir = path.resolve(target);
  for (;;) {
    const parent = path.dirname(dir);
    if (parent === dir) return true;
    dir = parent;
    const stat = statSync(dir);
    const bit = stat.uid === user.uid ? 0o100 : stat.gid === user.gid ? 0o010 : 0o001;
    if ((stat.mode & bit) === 0) return false;
  }
}

/**
 * As root, the binaries run as the service user. A checkout in a private directory (a fresh clone under /root or a
 * `mktemp -d` folder, mode 0700) is out of that user's reach, so the binaries are copied once per version to
 * SHARED_ROOT, whose ancestors anyone may search.
 */
async function reachableBinaries(binaries: Binaries, user: ServiceUser): Promise<Binaries> {
  if (reachable(binaries.postgres, user) && reachable(binaries.initdb, user)) return binaries;
  const nativeDir = path.dirname(path.dirname(binaries.postgres));
  const version = createHash('sha256')
    .update(nativeDir)
    .update(String(statSync(binaries.postgres).size))
    .digest('hex')
    .slice(0, 16);
  const staged = path.join(SHARED_ROOT, 'bin', version);
  if (!existsSync(path.join(staged, 'bin', 'postgres'))) {
    await mkdir(path.dirname(staged), { recursive: true, mode: 0o755 });
    const partial = `${staged}.${process.pid}.partial`;
    await cp(nativeDir, partial, { recursive: true, verbatimSymlinks: true });
    await rename(partial, staged).catch(async (error: NodeJS.ErrnoException) => {
      // Another node staged the same version first: theirs is as good as ours.
      await rm(partial, { recursive: true, force: true });
      if (!existsSync(path.join(staged, 'bin', 'postgres'))) throw error;
    });
  }
  return { initdb: path.join(staged, 'bin', path.basename(binaries.initdb)), postgres: path.join(staged, 'bin', path.basename(binaries.postgres)) };
}

/**
 * The cluster's directory: `<dataDir>/pg`. As root, when the service user cannot reach it (a private parent), the
 * cluster lives under SHARED_ROOT (by a hash of the data directory's path, so the same node finds it again) and
 * `<dataDir>/pg` is a symbolic link to it, so the data stay discoverable from the data directory.
 */
async function clusterDirectory(dataDir: string, user: ServiceUser | null): Promise<string> {
  const linkOrDir = path.join(dataDir, 'pg');
  const existing = await lstat(linkOrDir).catch(() => null);
  if (existing?.isSymbolicLink()) return readlink(linkOrDir);
  if (existing || !user || reachable(linkOrDir, user)) return linkOrDir;
  const relocated = path.join(SHARED_ROOT, 'clusters', createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16));
  await mkdir(path.dirname(relocated), { recursive: true, mode: 0o755 });
  await symlink(relocated, linkOrDir);
  return relocated;
}

/** Runs a binary as the service user (as root) and collects its output; rejects with that output when it fails. */
function run(binary: string, args: string[], user: ServiceUser | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { ...(user ?? {}), env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(binary)} failed (exit ${code}):\n${output}`))));
  });
}

async function initialise(binaries: Binaries, clusterDir: string, password: string, user: ServiceUser | null): Promise<void> {
  await mkdir(clusterDir, { recursive: true, mode: 0o700 });
  if (user) await chown(clusterDir, user.uid, user.gid);
  // initdb reads the superuser's password from a file the service user can read (beside the cluster: initdb wants
  // an empty directory); it is removed at once.
  const passwordFile = `${clusterDir}.pwfile`;
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  if (user) await chown(passwordFile, user.uid, user.gid);
  try {
    await run(
      binaries.initdb,
      [`--pgdata=${clusterDir}`, '--auth=scram-sha-256', `--username=${SERVICE_USER}`, `--pwfile=${passwordFile}`, '--encoding=UTF8', '--locale=C'],
      user,
    );
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** Starts `postgres` and resolves once it accepts connections; rejects with its last lines when it exits first. */
function startServer(binaries: Binaries, clusterDir: string, port: number, user: ServiceUser | null, onLog: (line: string) => void): Promise<ChildProcess> {
  const args = ['-D', clusterDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];
  // Its own process group: a Ctrl-C in the terminal reaches only the node, which closes HTTP, then the pool, then this
  // server. Should the node exit without closing it, the exit hook still stops it (a fast shutdown, data safe).
  const child = spawn(binaries.postgres, args, { ...(user ?? {}), detached: true, env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const stopOnExit = () => child.kill('SIGINT');
  process.once('exit', stopOnExit);
  child.once('exit', () => process.off('exit', stopOnExit));
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`exit ${code}. Its last lines:\n${lines.join('\n')}`));
    child.once('error', reject);
    child.once('exit', onExit);
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        lines.push(line);
        if (lines.length > 50) lines.shift();
        onLog(line);
        if (line.includes('database system is ready to accept connections')) {
          child.off('exit', onExit);
          resolve(child);
        }
      }
    });
  });
}

/** Fast shutdown (SIGINT: open sessions are ended, data are safe), waiting until the server has exited. */
function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGINT');
  });
}

/**
 * Starts PostgreSQL from the binaries of the `embedded-postgres` package under `<dataDir>/pg`: initialised on first
 * start, reused afterwards, listening on 127.0.0.1 only. As root, the server runs as the `postgres` system user
 * (PostgreSQL refuses root), and what that user cannot reach is moved where it can (see reachableBinaries and
 * clusterDirectory), so `npm start` works in any checkout.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  port: number,
  onLog: (line: string) => void = () => undefined,
  /** Other binaries than the packaged ones (tests: a copy in a private directory). */
  binariesOverride?: Binaries,
): Promise<EmbeddedDatabase> {
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  await chmod(dataDir, 0o755);
  const password = await clusterPassword(dataDir);
  const user = process.getuid?.() === 0 ? serviceUser() : null;
  const found = binariesOverride ?? (await packagedBinaries());
  const binaries = user ? await reachableBinaries(found, user) : found;
  const clusterDir = await clusterDirectory(dataDir, user);
  if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) await initialise(binaries, clusterDir, password, user);
  let server: ChildProcess;
  try {
    server = await startServer(binaries, clusterDir, port, user, onLog);
  } catch (error) {
    throw new Error(`The embedded PostgreSQL did not start (port ${port} in use? set FACET_EMBEDDED_PG_PORT): ${(error as Error).message}`, { cause: error });
  }
  try {
    const admin = new Client({ host: '127.0.0.1', port, user: SERVICE_USER, password, database: 'postgres' });
    await admin.connect();
    try {
      const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
      if (!rowCount) await admin.query(`CREATE DATABASE ${DATABASE}`);
    } finally {
      await admin.end();
    }
  } catch (error) {
    await stopServer(server);
    throw error;
  }
  return {
    url: `postgres://${SERVICE_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`,
    clusterDir,
    stop: () => stopServer(server),
  };
}
