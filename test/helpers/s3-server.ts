import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { S3ObjectStore, type S3Settings } from '../../server/storage/s3-object-store';

/** s3rver's command line (a devDependency: an S3-protocol server in Node, so CI needs nothing from outside npm). */
const S3RVER = path.join(path.dirname(require.resolve('s3rver/package.json')), 'bin/s3rver.js');

/** s3rver's fixed credentials: it checks every request's SigV4 signature against them. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** The same credentials as the AWS SDK's default chain reads them from a process's environment. */
export const S3_CREDENTIAL_ENV = { AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey };

/** A running S3 server process: its URL, a client signed with its credentials, and a way to stop it. */
export interface S3Server {
  endpoint: string;
  port: number;
  client: S3Client;
  /** Creates a bucket (a test file's own). */
  createBucket(name: string): Promise<void>;
  /** An object store over `bucket`, signed with the server's credentials. */
  store(bucket: string, prefix?: string): S3ObjectStore;
  /** The FACET_* settings (and AWS_* credentials) a `serve` or `worker` process needs for `bucket`, reached at `endpoint`. */
  env(bucket: string, endpoint?: string): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/**
 * Starts s3rver as a child process on `address` (any free port) over a temporary directory. Node 20's OpenSSL 3
 * keeps DES, which s3rver 3.7 uses for ListObjectsV2 continuation tokens, in its legacy provider: the process is
 * started with `--openssl-legacy-provider`, or a listing of more than one page fails.
 */
export async function startS3Server(address = '127.0.0.1', exec: string[] = []): Promise<S3Server> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'facet-s3-'));
  const [command, ...prefix] = [...exec, process.execPath];
  const child: ChildProcess = spawn(command, [...prefix, '--openssl-legacy-provider', S3RVER, '-d', directory, '-a', address, '-p', '0', '--silent'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 30_000;
  let port = 0;
  while (!port) {
    port = Number(/listening on [^\s:]+:(\d+)/.exec(output)?.[1] ?? 0);
    if (port) break;
    if (child.exitCode !== null) throw new Error(`s3rver exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`s3rver did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const host = address === '0.0.0.0' ? '127.0.0.1' : address;
  const endpoint = `http://${host}:${port}`;
  const settings = (bucket: string, prefix = 'objects/'): S3Settings => ({ bucket, prefix, endpoint, region: 'us-east-1', forcePathStyle: true });
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDENTIALS });
  return {
    endpoint,
    port,
    client,
    createBucket: async (name) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    store: (bucket, prefix) => new S3ObjectStore(settings(bucket, prefix), { credentials: S3_CREDENTIALS }),
    env: (bucket, at = endpoint) => ({
      ...S3_CREDENTIAL_ENV,
      FACET_OBJECT_STORE: 's3',
      FACET_S3_BUCKET: bucket,
      FACET_S3_ENDPOINT: at,
      FACET_S3_REGION: 'us-east-1',
      FACET_S3_FORCE_PATH_STYLE: 'true',
    }),
    stop: async () => {
      client.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
