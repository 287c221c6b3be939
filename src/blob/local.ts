import { createHash, randomBytes } from 'node:crypto';
import { close, createReadStream, fstat, open as openCallback } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { conflict } from '../core/errors.ts';
import type { BlobStore, StoredBlob } from './blob-store.ts';
import { blobKeySegments, checkRange, rangeNotSatisfiable, storageFailure } from './checks.ts';

/** Error codes meaning "nothing under this key" (a missing file, or a key that names a folder of other keys). */
const missingCodes = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);
/** Error codes of a write whose key is both content and a folder of other keys, which a file system cannot hold. */
const clashCodes = new Set(['ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY']);
/** Temporary files older than this are leftovers of writes a crash interrupted. */
const staleTempAge = 24 * 3600 * 1000;

const openDescriptor = promisify(openCallback);
const statDescriptor = promisify(fstat);
const closeDescriptor = promisify(close);

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException | undefined)?.code ?? '';

/**
 * Blobs as files under one folder (`<data>/blobs`), a key's segments being its path. Writes go to a
 * temporary file under `.tmp` in the same folder tree (so on the same file system), are synced and
 * then renamed over the target, which is atomic: readers see the old content or the new one.
 */
export class LocalBlobStore implements BlobStore {
  readonly kind = 'local';
  readonly root: string;
  private readonly tempDir: string;
  private prepared?: Promise<void>;

  constructor(root: string) {
    this.root = resolve(root);
    // Keys cannot have a segment starting with a dot, so this folder never clashes with one.
    this.tempDir = join(this.root, '.tmp');
  }

  put(key: string, content: Buffer): Promise<StoredBlob> {
    return this.write(key, [content]);
  }

  putStream(key: string, content: Readable): Promise<StoredBlob> {
    return this.write(key, content);
  }

  async get(key: string): Promise<Buffer | undefined> {
    const path = this.pathOf(key);
    try {
      return await readFile(path);
    } catch (error) {
      if (missingCodes.has(codeOf(error))) return undefined;
      throw storageFailure('read', key, error);
    }
  }

  async getStream(key: string, range?: { start: number; end?: number }): Promise<{ stream: Readable; size: number } | undefined> {
    const path = this.pathOf(key);
    if (range) checkRange(range);
    // A plain descriptor, not a FileHandle: its read stream reads through callbacks, which serves a
    // package to many devices at once noticeably faster than FileHandle's promise-based reads.
    let fd: number;
    try {
      fd = await openDescriptor(path, 'r');
    } catch (error) {
      if (missingCodes.has(codeOf(error))) return undefined;
      throw storageFailure('read', key, error);
    }
    try {
      const info = await statDescriptor(fd);
      // Opening a folder for reading succeeds on Linux: a key naming a folder holds nothing.
      if (!info.isFile()) {
        await closeDescriptor(fd);
        return undefined;
      }
      if (!range) return { stream: createReadStream('', { fd }), size: info.size };
      if (range.start >= info.size) throw rangeNotSatisfiable();
      const end = Math.min(range.end ?? info.size - 1, info.size - 1);
      return { stream: createReadStream('', { fd, start: range.start, end }), size: info.size };
    } catch (error) {
      await closeDescriptor(fd);
      throw storageFailure('read', key, error);
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const path = this.pathOf(key);
    try {
      const info = await stat(path);
      return info.isFile() ? { size: info.size } : undefined;
    } catch (error) {
      if (missingCodes.has(codeOf(error))) return undefined;
      throw storageFailure('stat', key, error);
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (error) {
      if (!missingCodes.has(codeOf(error))) throw storageFailure('delete', key, error);
    }
  }

  /** Creates and removes a file, which fails on a read-only, full or vanished folder. */
  async ping(): Promise<void> {
    const probe = join(this.tempDir, `ping-${randomBytes(8).toString('hex')}`);
    try {
      await this.prepare();
      await writeFile(probe, 'ping');
      await unlink(probe);
    } catch (error) {
      throw storageFailure('write to', this.root, error);
    }
  }

  async close(): Promise<void> {}

  private pathOf(key: string): string {
    return join(this.root, ...blobKeySegments(key));
  }

  private async write(key: string, chunks: AsyncIterable<unknown> | Iterable<Buffer>): Promise<StoredBlob> {
    const target = this.pathOf(key);
    const temp = join(this.tempDir, `${randomBytes(12).toString('hex')}.tmp`);
    const hash = createHash('sha256');
    let size = 0;
    try {
      await this.prepare();
      const file = await open(temp, 'wx');
      try {
        for await (const chunk of chunks) {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
          hash.update(bytes);
          size += bytes.length;
          for (let offset = 0; offset < bytes.length; ) offset += (await file.write(bytes, offset)).bytesWritten;
        }
        await file.sync();
      } finally {
        await file.close();
      }
      await place(temp, target, key);
    } catch (error) {
      // A failing removal (the folder itself may be gone) must not hide why the write failed.
      await rm(temp, { force: true }).catch(() => {});
      throw storageFailure('write', key, error);
    }
    return { size, sha256: hash.digest('hex') };
  }

  /** Creates the folders once, and removes temporary files that crashes left behind. */
  private prepare(): Promise<void> {
    this.prepared ??= (async () => {
      await mkdir(this.tempDir, { recursive: true });
      const now = Date.now();
      for (const name of await readdir(this.tempDir)) {
        const path = join(this.tempDir, name);
        const info = await stat(path).catch(() => undefined);
        if (info && now - info.mtimeMs > staleTempAge) await rm(path, { force: true });
      }
    })().catch((error: unknown) => {
      this.prepared = undefined; // a later call tries again (the folder may become writable)
      throw error;
    });
    return this.prepared;
  }
}

/** Renames the written temporary file over the target, creating the folders the key needs. */
async function place(temp: string, target: string, key: string): Promise<void> {
  let created: string | undefined;
  try {
    created = await mkdir(dirname(target), { recursive: true });
    await rename(temp, target);
  } catch (error) {
    if (clashCodes.has(codeOf(error))) throw conflict('A blob key cannot name both content and a folder of other keys', { key });
    throw error;
  }
  await syncFolders(target, created);
}

/**
 * A rename survives a crash only once the folder holding the new entry is synced; folders that
 * mkdir just created need the same from their own parents.
 */
async function syncFolders(target: string, firstCreated: string | undefined): Promise<void> {
  const folders = [dirname(target)];
  if (firstCreated) {
    for (let folder = dirname(target); folder !== dirname(firstCreated); ) {
      folder = dirname(folder);
      folders.push(folder);
    }
  }
  for (const folder of folders) {
    const handle = await open(folder, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
