import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { assertSha256, isSha256, sha256Of, verified, type ListedObject, type ObjectStore, type StoredObject } from './object-store';

/** Objects per page of `list`: the sweep asks the database about this many sha256s at once. */
export const LIST_PAGE = 1000;

/**
 * Objects on a local file system: `ab/cd/abcd…` under one directory (the embedded default,
 * `$FACET_DATA_DIR/objects`). A write goes to `tmp/`, is fsynced, then renamed into place (atomic on one file
 * system), so a reader never sees half a file and a crash leaves at most a temp file, which `sweepTemp` removes.
 */
export class FileObjectStore implements ObjectStore {
  private readonly tmp: string;

  constructor(
    readonly root: string,
    private readonly listPage = LIST_PAGE,
  ) {
    this.tmp = path.join(root, 'tmp');
  }

  get location(): string {
    return this.root;
  }

  pathOf(sha256: string): string {
    assertSha256(sha256);
    return path.join(this.root, sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  }

  async put(bytes: Buffer, sha256?: string): Promise<StoredObject> {
    sha256 ??= await sha256Of(bytes);
    const final = this.pathOf(sha256);
    if (await exists(final)) {
      // Touched, so the orphan sweep (which spares young files) is less likely to take it before this batch commits.
      const now = new Date();
      await utimes(final, now, now).catch(() => undefined);
      return { sha256, size: bytes.length, created: false };
    }
    await mkdir(this.tmp, { recursive: true });
    await mkdir(path.dirname(final), { recursive: true });
    const temp = path.join(this.tmp, `${randomUUID()}.part`);
    const handle = await open(temp, 'wx', 0o640);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, final);
    await syncDirectory(path.dirname(final));
    return { sha256, size: bytes.length, created: true };
  }

  async read(sha256: string): Promise<Buffer> {
    return verified(sha256, await readFile(this.pathOf(sha256)));
  }

  async has(sha256: string): Promise<boolean> {
    return exists(this.pathOf(sha256));
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }

  async *list(): AsyncIterable<ListedObject[]> {
    let page: ListedObject[] = [];
    for (const a of await readdir(this.root).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{2}$/.test(a)) continue;
      for (const b of await readdir(path.join(this.root, a)).catch(() => [] as string[])) {
        for (const name of await readdir(path.join(this.root, a, b)).catch(() => [] as string[])) {
          if (!isSha256(name)) continue;
          const info = await stat(path.join(this.root, a, b, name)).catch(() => null);
          if (!info) continue;
          page.push({ sha256: name, modifiedAt: info.mtime });
          if (page.length === this.listPage) {
            yield page;
            page = [];
          }
        }
      }
    }
    if (page.length) yield page;
  }

  async sweepTemp(minAgeMs: number): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.tmp).catch(() => [] as string[])) {
      const file = path.join(this.tmp, name);
      const info = await stat(file).catch(() => null);
      if (info && Date.now() - info.mtimeMs >= minAgeMs) {
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async close(): Promise<void> {}
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/** fsync of the directory makes the rename itself durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
