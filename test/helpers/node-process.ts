import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** The built entry point; `npm test` builds it first (`npm run build` before running one such file). */
export const MAIN = path.resolve(__dirname, '../../dist/server/main.js');

/** A `dist/server/main.js` process: its output so far (stdout and stderr together) and a way to stop it. */
export interface NodeProcess {
  child: ChildProcess;
  /** The server's URL (serve only). */
  url: string;
  output(): string;
  /** Whether it is still running. */
  alive(): boolean;
  /** SIGTERM, then the exit code (null if killed by a signal). */
  stop(): Promise<number | null>;
}

/**
 * Starts `main.js <args>` with `env` over the test's environment and waits until it is ready: the banner for
 * `serve`, "worker ready" for `worker`. Rejects with its output if it exits first or takes longer than `ms`. `exec` is
 * an argv prefix to run it under (`ip netns exec <name>`: inside a network namespace).
 */
export async function startNodeProcess(args: string[], env: NodeJS.ProcessEnv, ms = 300_000, exec: string[] = [], cwd?: string): Promise<NodeProcess> {
  if (!existsSync(MAIN)) throw new Error('Build first: `npm run build` (npm test does).');
  const [command, ...prefix] = [...exec, process.execPath];
  // A variable set to undefined in `env` is left out (a process that must not see one of the test's own).
  const merged = Object.fromEntries(Object.entries({ ...process.env, HOST: '127.0.0.1', PORT: '0', ...env }).filter(([, v]) => v !== undefined));
  const child = spawn(command, [...prefix, MAIN, ...args], { env: merged, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = args[0] === 'serve' ? /Press Ctrl-C to stop/ : /"worker ready"/;
  const deadline = Date.now() + ms;
  while (!ready.test(out)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode ?? child.signalCode}:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${args.join(' ')} did not start in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /GraphQL:\s+(http:\/\/\S+)\/graphql/.exec(out)?.[1] ?? '';
  return {
    child,
    url,
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
