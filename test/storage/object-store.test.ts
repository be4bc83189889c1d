import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { FileObjectStore } from '../../server/storage/file-object-store';
import { CorruptObjectError, sha256Of, type ListedObject, type ObjectStore } from '../../server/storage/object-store';
import { S3ObjectStore } from '../../server/storage/s3-object-store';
import { S3_CREDENTIALS, startS3Server, type S3Server } from '../helpers/s3-server';

/** A seeded generator of object bodies: empty, one byte, odd sizes, a few hundred KB (a DICOM slice), and one over a hash slice's 16 MB. */
function bodies(seed: number): Buffer[] {
  let state = seed;
  const next = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31);
  const sizes = [0, 1, 17, 4096, 65_537, 300_000 + (next() % 200_000), 16 * 1024 * 1024 + 3];
  for (let i = 0; i < 6; i++) sizes.push(next() % 100_000);
  return sizes.map((size) => randomBytes(size));
}

const hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface Backend {
  name: string;
  /** A fresh, empty store, plus a way to overwrite an object's bytes behind the store's back. */
  open(listPage?: number): Promise<{ store: ObjectStore; tamper(sha256: string, bytes: Buffer): Promise<void> }>;
}

let s3: S3Server;
const dirs: string[] = [];
let buckets = 0;

const BACKENDS: Backend[] = [
  {
    name: 'FileObjectStore',
    open: async (listPage) => {
      const root = await mkdtemp(path.join(os.tmpdir(), 'facet-objects-'));
      dirs.push(root);
      const store = new FileObjectStore(root, listPage);
      return { store, tamper: (sha256, bytes) => writeFile(store.pathOf(sha256), bytes) };
    },
  },
  {
    name: 'S3ObjectStore (s3rver)',
    open: async (listPage) => {
      const bucket = `facet-contract-${++buckets}`;
      await s3.createBucket(bucket);
      const store = new S3ObjectStore(
        { bucket, prefix: 'objects/', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true },
        { credentials: S3_CREDENTIALS },
        listPage,
      );
      return {
        store,
        tamper: async (sha256, bytes) => {
          await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: store.keyOf(sha256), Body: bytes }));
        },
      };
    },
  },
];

beforeAll(async () => {
  s3 = await startS3Server();
});

afterAll(async () => {
  await s3?.stop();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe.each(BACKENDS)('$name keeps the object store promises', (backend) => {
  it('stores each body under its sha256 and reads back exactly those bytes; a re-upload is a no-op', async () => {
    const { store } = await backend.open();
    for (const bytes of bodies(7)) {
      const first = await store.put(bytes);
      expect(first).toEqual({ sha256: hex(bytes), size: bytes.length, created: true });
      expect(await store.has(first.sha256)).toBe(true);
      expect((await store.read(first.sha256)).equals(bytes)).toBe(true);
      // Again, with and without the caller's hash: nothing new, the same bytes.
      expect(await store.put(bytes)).toEqual({ ...first, created: false });
      expect(await store.put(bytes, first.sha256)).toEqual({ ...first, created: false });
      expect((await store.read(first.sha256)).equals(bytes)).toBe(true);
    }
    await store.close();
  });

  it('stores one new object once when many uploads of it race, and every one of them reads it whole', async () => {
    const { store } = await backend.open();
    const bytes = randomBytes(200_000);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.put(bytes)));
    expect(new Set(results.map((r) => r.sha256))).toEqual(new Set([hex(bytes)]));
    expect(results.some((r) => r.created)).toBe(true);
    expect((await store.read(hex(bytes))).equals(bytes)).toBe(true);
    const listed: ListedObject[] = [];
    for await (const page of store.list()) listed.push(...page);
    expect(listed.map((o) => o.sha256)).toEqual([hex(bytes)]);
    await store.close();
  });

  it('refuses to read a missing object and removes a missing one without complaint', async () => {
    const { store } = await backend.open();
    const missing = hex(Buffer.from('never stored'));
    expect(await store.has(missing)).toBe(false);
    await expect(store.read(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    await store.remove(missing);
    const { sha256 } = await store.put(Buffer.from('stored, then removed'));
    await store.remove(sha256);
    await store.remove(sha256);
    expect(await store.has(sha256)).toBe(false);
    await store.close();
  });

  it('refuses bytes that no longer hash to their key (altered underneath)', async () => {
    const { store, tamper } = await backend.open();
    for (const bytes of bodies(11).slice(1, 6)) {
      const { sha256 } = await store.put(bytes);
      const altered = Buffer.from(bytes);
      altered[altered.length - 1] ^= 0x01;
      await tamper(sha256, altered);
      await expect(store.read(sha256)).rejects.toBeInstanceOf(CorruptObjectError);
    }
    await store.close();
  });

  it('refuses a key that is not a sha256 (a path or key made of anything else could leave the store)', async () => {
    const { store } = await backend.open();
    for (const key of ['', '../../etc/passwd', 'A'.repeat(64), `${'a'.repeat(63)}/`, 'a'.repeat(65), `${'0'.repeat(63)}g`]) {
      await expect(store.read(key)).rejects.toThrow('Not a sha256');
      await expect(store.has(key)).rejects.toThrow('Not a sha256');
      await expect(store.put(Buffer.from('x'), key)).rejects.toThrow('Not a sha256');
    }
    await store.close();
  });

  it('lists every object once, in pages, with when it was written', async () => {
    const { store } = await backend.open(3);
    const before = Date.now() - 2000;
    const stored = new Set<string>();
    for (let i = 0; i < 10; i++) stored.add((await store.put(randomBytes(100 + i))).sha256);
    const pages: ListedObject[][] = [];
    for await (const page of store.list()) pages.push(page);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 3, 1]);
    const listed = pages.flat();
    expect(new Set(listed.map((o) => o.sha256))).toEqual(stored);
    expect(listed).toHaveLength(10);
    for (const o of listed) expect(o.modifiedAt.getTime()).toBeGreaterThanOrEqual(before);
    await store.close();
  });
});

describe(S3ObjectStore.name, () => {
  it('keeps objects under its prefix and lists nothing else of the bucket', async () => {
    await s3.createBucket('facet-prefix');
    const store = s3.store('facet-prefix', 'site-a/objects/');
    const other = s3.store('facet-prefix', 'site-b/objects/');
    const bytes = randomBytes(1000);
    const { sha256 } = await store.put(bytes);
    await other.put(randomBytes(10));
    // Something that is not an object of ours, under our prefix: never listed, so never swept.
    await s3.client.send(new PutObjectCommand({ Bucket: 'facet-prefix', Key: 'site-a/objects/README', Body: 'notes' }));
    const listed: string[] = [];
    for await (const page of store.list()) listed.push(...page.map((o) => o.sha256));
    expect(listed).toEqual([sha256]);
    const keys = (await s3.client.send(new ListObjectsV2Command({ Bucket: 'facet-prefix' }))).Contents?.map((o) => o.Key).sort();
    expect(keys).toHaveLength(3);
    expect(keys).toEqual(
      expect.arrayContaining([`site-a/objects/${sha256}`, 'site-a/objects/README', expect.stringMatching(/^site-b\/objects\/[0-9a-f]{64}$/)]),
    );
    expect(await sha256Of(bytes)).toBe(sha256);
    await store.close();
    await other.close();
  });

  it('fails loudly when the bucket does not exist, for every operation', async () => {
    const missing = s3.store('facet-no-such-bucket');
    await expect(missing.put(Buffer.from('x'))).rejects.toMatchObject({ name: 'NoSuchBucket' });
    await expect(missing.read(hex(Buffer.from('x')))).rejects.toMatchObject({ name: 'NoSuchBucket' });
    await expect(missing.list()[Symbol.asyncIterator]().next()).rejects.toMatchObject({ name: 'NoSuchBucket' });
    await missing.close();
  });
});
