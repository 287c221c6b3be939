import type { Readable } from 'node:stream';

/** What was stored under a key. */
export interface StoredBlob {
  size: number;
  /** Hex SHA-256 of the content, computed while it was written. */
  sha256: string;
}

/**
 * Storage for large content: file revisions and image values over the blob threshold, and OTA
 * packages. One interface, two implementations chosen by the `blobStorage` key: a local folder
 * (the default) and S3-compatible object storage, which several nodes share.
 *
 * Keys are relative paths of `[A-Za-z0-9._-]` segments separated by `/`; anything else is refused.
 * A write is durable when its promise resolves, and atomic: a reader sees the old content or the
 * new, never part of it.
 */
export interface BlobStore {
  readonly kind: 'local' | 's3';
  put(key: string, content: Buffer): Promise<StoredBlob>;
  /** Streams content of any size to the key without holding it in memory. */
  putStream(key: string, content: Readable): Promise<StoredBlob>;
  /** The whole content, or undefined when there is nothing under the key. */
  get(key: string): Promise<Buffer | undefined>;
  /** A stream of the content from byte `start` to byte `end` (inclusive) when given; undefined when missing. */
  getStream(key: string, range?: { start: number; end?: number }): Promise<{ stream: Readable; size: number } | undefined>;
  /** Size of the content, or undefined when missing. */
  stat(key: string): Promise<{ size: number } | undefined>;
  /**
   * A URL that reads the content without credentials for `ttlSeconds`, for stores that serve
   * downloads themselves (S3 presigned GET); stores without one leave it undefined.
   */
  presignedGetUrl?(key: string, ttlSeconds: number): Promise<string>;
  /** Removes the key; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Throws when the storage cannot be reached (for readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
