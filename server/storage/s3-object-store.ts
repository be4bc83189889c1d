import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  paginateListObjectsV2,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { assertSha256, isSha256, sha256Of, verified, type ListedObject, type ObjectStore, type StoredObject } from './object-store';

/** Where the objects live in S3-compatible storage (Config's objectStore when FACET_OBJECT_STORE=s3). */
export interface S3Settings {
  bucket: string;
  /** Key prefix, `objects/` by default: the key of an object is `<prefix><sha256>`. */
  prefix: string;
  /** The service's URL for MinIO and other S3-compatible stores; null: AWS S3 itself. */
  endpoint: string | null;
  /** null: the AWS SDK's own lookup (AWS_REGION, the shared config file). */
  region: string | null;
  /** `http://host/bucket/key` instead of `http://bucket.host/key`: MinIO and most on-premises stores need it. */
  forcePathStyle: boolean;
}

/**
 * A missing key, in the shapes S3-compatible services answer it: NoSuchKey for a GET; a bare 404 for a HEAD, which has
 * no body to say why (a missing bucket looks the same there, and the put that follows then names it).
 */
function isNotFound(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.name === 'NoSuchKey' || (error.name === 'NotFound' && error.$metadata.httpStatusCode === 404));
}

/** A conditional put (`If-None-Match: *`) that lost to an object already stored under the key. */
function isAlreadyThere(error: unknown): boolean {
  const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
  return status === 412 || status === 409;
}

/**
 * Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW…) through the AWS SDK v3, for nodes whose servers
 * and workers run on several machines. The same promises as the file system:
 * - no half-written object: a PutObject becomes visible whole or not at all, and carries `ChecksumSHA256` (the key
 *   itself, as base64), so a store that checks checksums refuses bytes damaged on the way;
 * - idempotent re-upload: a HEAD first (most uploads of a re-sent batch end there), then a put with
 *   `If-None-Match: *`, so two servers storing the same new object race harmlessly (the loser's 412 is "already
 *   there"); a store that ignores the condition overwrites the key with the same bytes, which is just as harmless;
 * - `read` hashes what came back and refuses bytes that are not the key's;
 * - `list` pages through `ListObjectsV2` under the prefix for the orphan sweep, with each object's LastModified.
 * Credentials come from the SDK's default provider chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile,
 * a container or instance role), never from Facet's own configuration.
 */
export class S3ObjectStore implements ObjectStore {
  readonly client: S3Client;

  constructor(
    readonly settings: S3Settings,
    clientConfig: S3ClientConfig = {},
    /** Keys per ListObjectsV2 page (S3's maximum is 1000). */
    private readonly listPage = 1000,
  ) {
    this.client = new S3Client({
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(settings.region ? { region: settings.region } : {}),
      forcePathStyle: settings.forcePathStyle,
      // The SHA-256 is sent by us (it is the key); the SDK's default CRC32 of every body would be a second hash.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...clientConfig,
    });
  }

  get location(): string {
    return `s3://${this.settings.bucket}/${this.settings.prefix}`;
  }

  keyOf(sha256: string): string {
    assertSha256(sha256);
    return `${this.settings.prefix}${sha256}`;
  }

  async put(bytes: Buffer, sha256?: string): Promise<StoredObject> {
    sha256 ??= await sha256Of(bytes);
    const Key = this.keyOf(sha256);
    if (await this.has(sha256)) return { sha256, size: bytes.length, created: false };
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.settings.bucket,
          Key,
          Body: bytes,
          ContentLength: bytes.length,
          ContentType: 'application/octet-stream',
          ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
          IfNoneMatch: '*',
        }),
      );
    } catch (error) {
      if (isAlreadyThere(error)) return { sha256, size: bytes.length, created: false };
      throw error;
    }
    return { sha256, size: bytes.length, created: true };
  }

  async read(sha256: string): Promise<Buffer> {
    let answer;
    try {
      answer = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(sha256) }));
    } catch (error) {
      if (isNotFound(error)) throw Object.assign(new Error(`Object ${sha256} is not stored in ${this.location}`), { code: 'ENOENT' });
      throw error;
    }
    const body = await answer.Body!.transformToByteArray();
    return verified(sha256, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  }

  async has(sha256: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(sha256) }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async remove(sha256: string): Promise<void> {
    // DeleteObject of a missing key succeeds (204), as removing a missing file does here.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(sha256) }));
  }

  async *list(): AsyncIterable<ListedObject[]> {
    const pages = paginateListObjectsV2({ client: this.client, pageSize: this.listPage }, { Bucket: this.settings.bucket, Prefix: this.settings.prefix });
    for await (const page of pages) {
      const objects: ListedObject[] = [];
      for (const object of page.Contents ?? []) {
        const name = object.Key?.slice(this.settings.prefix.length) ?? '';
        // Anything else under the prefix is not ours to judge (and could never be referenced by a row).
        if (isSha256(name) && object.LastModified) objects.push({ sha256: name, modifiedAt: object.LastModified });
      }
      if (objects.length) yield objects;
    }
  }

  /** A PutObject is one request, visible whole or not at all: an interrupted one leaves nothing to sweep. */
  async sweepTemp(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
