import { join } from 'node:path';
import type { Config } from '../config/keys.ts';
import type { BlobStore } from './blob-store.ts';
import { LocalBlobStore } from './local.ts';
import { S3BlobStore } from './s3.ts';

export type BlobStoreConfig = Pick<Config, 'blobStorage' | 'data' | 's3Endpoint' | 's3Region' | 's3AccessKeyId' | 's3SecretAccessKey' | 's3ForcePathStyle'>;

/** The blob store the `blobStorage` key names: empty for the folder `<data>/blobs`, `s3://bucket[/prefix]` for S3. */
export function openBlobStore(config: BlobStoreConfig): BlobStore {
  if (config.blobStorage === '') return new LocalBlobStore(join(config.data, 'blobs'));
  return new S3BlobStore(config);
}
