import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/keys.ts';
import { badRequest } from '../core/errors.ts';
import type { BlobStore, StoredBlob } from './blob-store.ts';
import { blobKeySegments, checkRange, rangeNotSatisfiable, storageFailure } from './checks.ts';

export type S3BlobConfig = Pick<Config, 'blobStorage' | 's3Endpoint' | 's3Region' | 's3AccessKeyId' | 's3SecretAccessKey' | 's3ForcePathStyle'>;

type Sdk = typeof import('@aws-sdk/client-s3') & typeof import('@aws-sdk/lib-storage');

/** Splits `s3://bucket[/prefix]` into the bucket and the prefix put before every key (`''` or ending with `/`). */
export function parseS3Location(location: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(location);
  if (!match) throw badRequest(`Not an S3 location: ${location}`);
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { bucket: match[1]!, prefix: prefix === '' ? '' : `${prefix}/` };
}

/**
 * Blobs as objects of an S3-compatible bucket. S3 itself makes each write atomic (an object appears
 * whole when its PUT or multipart upload completes), so nothing here is needed for that.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  readonly bucket: string;
  readonly prefix: string;
  private readonly config: S3BlobConfig;
  private connection?: Promise<{ sdk: Sdk; client: S3Client }>;

  constructor(config: S3BlobConfig) {
    this.config = config;
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Location(config.blobStorage));
  }

  async put(key: string, content: Buffer): Promise<StoredBlob> {
    const Key = this.nameOf(key);
    const { sdk, client } = await this.connect();
    try {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key, Body: content }));
    } catch (error) {
      throw storageFailure('write', key, error);
    }
    return { size: content.length, sha256: createHash('sha256').update(content).digest('hex') };
  }

  /** A multipart upload (a single PUT below one part), hashing and counting the bytes on their way. */
  async putStream(key: string, content: Readable): Promise<StoredBlob> {
    const Key = this.nameOf(key);
    const { sdk, client } = await this.connect();
    const hash = createHash('sha256');
    let size = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    // An error of the source destroys `counted`, which fails the upload: no callback work to do.
    pipeline(content, counted, () => {});
    try {
      await new sdk.Upload({ client, params: { Bucket: this.bucket, Key, Body: counted } }).done();
    } catch (error) {
      counted.destroy(); // stops the caller's stream too, so that it does not wait for a reader forever
      throw storageFailure('write', key, error);
    }
    return { size, sha256: hash.digest('hex') };
  }

  async get(key: string): Promise<Buffer | undefined> {
    const Key = this.nameOf(key);
    const { sdk, client } = await this.connect();
    try {
      const object = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key }));
      return Buffer.from(await object.Body!.transformToByteArray());
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw storageFailure('read', key, error);
    }
  }

  async getStream(key: string, range?: { start: number; end?: number }): Promise<{ stream: Readable; size: number } | undefined> {
    const Key = this.nameOf(key);
    if (range) checkRange(range);
    const { sdk, client } = await this.connect();
    try {
      const Range = range && `bytes=${range.start}-${range.end ?? ''}`;
      const object = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key, Range }));
      // With a range, ContentLength is the range's; the whole size is after the slash of Content-Range.
      const size = range ? Number(/\/(\d+)$/.exec(object.ContentRange ?? '')?.[1]) : object.ContentLength;
      if (size === undefined || !Number.isSafeInteger(size)) throw new Error(`no object size in the answer (Content-Range ${object.ContentRange})`);
      return { stream: object.Body as Readable, size };
    } catch (error) {
      if (isMissing(error)) return undefined;
      if (errorName(error) === 'InvalidRange') throw rangeNotSatisfiable();
      throw storageFailure('read', key, error);
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const Key = this.nameOf(key);
    const { sdk, client } = await this.connect();
    try {
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { size: head.ContentLength ?? 0 };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw storageFailure('stat', key, error);
    }
  }

  /** A presigned GET of the object, signed locally: no request to S3 is made. */
  async presignedGetUrl(key: string, ttlSeconds: number): Promise<string> {
    const Key = this.nameOf(key);
    const [{ sdk, client }, { getSignedUrl }] = await Promise.all([this.connect(), import('@aws-sdk/s3-request-presigner')]);
    return getSignedUrl(client, new sdk.GetObjectCommand({ Bucket: this.bucket, Key }), { expiresIn: ttlSeconds });
  }

  /** S3 answers a delete of a missing object with success already. */
  async delete(key: string): Promise<void> {
    const Key = this.nameOf(key);
    const { sdk, client } = await this.connect();
    try {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (error) {
      throw storageFailure('delete', key, error);
    }
  }

  async ping(): Promise<void> {
    const { sdk, client } = await this.connect();
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      throw storageFailure('reach bucket', this.bucket, error);
    }
  }

  async close(): Promise<void> {
    if (this.connection) (await this.connection).client.destroy();
    this.connection = undefined;
  }

  private nameOf(key: string): string {
    blobKeySegments(key);
    return this.prefix + key;
  }

  /** The AWS SDK takes about 170 ms to load: only servers that use S3 pay for it, on first use. */
  private connect(): Promise<{ sdk: Sdk; client: S3Client }> {
    this.connection ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([s3, storage]) => {
      const sdk = { ...s3, ...storage };
      const { s3Endpoint, s3Region, s3AccessKeyId, s3SecretAccessKey, s3ForcePathStyle } = this.config;
      const client = new sdk.S3Client({
        region: s3Region,
        endpoint: s3Endpoint || undefined,
        forcePathStyle: s3ForcePathStyle,
        // Empty keys leave the SDK its default chain (environment, profile, instance role).
        credentials: s3AccessKeyId ? { accessKeyId: s3AccessKeyId, secretAccessKey: s3SecretAccessKey } : undefined,
        // The SDK's default CRC checksums on every request are refused by several S3-compatible
        // services; content integrity is covered by TLS and the SHA-256 fleetd records itself.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      return { sdk, client };
    });
    return this.connection;
  }
}

const errorName = (error: unknown) => (error as { name?: string } | undefined)?.name;

/**
 * A missing object: GET names it NoSuchKey (and a missing bucket NoSuchBucket, an outage instead);
 * HEAD answers have no body, so only their 404 tells.
 */
function isMissing(error: unknown): boolean {
  const name = errorName(error);
  if (name === 'NoSuchKey' || name === 'NotFound') return true;
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return status === 404 && name !== 'NoSuchBucket';
}
