import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import type { BlobStore } from '../../src/blob/blob-store.ts';
import { openBlobStore, type BlobStoreConfig } from '../../src/blob/open.ts';

// The SDK warns once per process that its releases from 2027 need Node 22: noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface TestBlobStore {
  store: BlobStore;
  config: BlobStoreConfig;
  /** The temporary folder holding everything the store writes (the local root, or s3rver's files). */
  dir: string;
  /** Closes the store (and s3rver) and removes the folder. */
  close(): Promise<void>;
}

const baseConfig = { blobStorage: '', s3Endpoint: '', s3Region: 'us-east-1', s3AccessKeyId: '', s3SecretAccessKey: '', s3ForcePathStyle: true };

export async function openLocalTestStore(): Promise<TestBlobStore> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetd-blob-'));
  const config = { ...baseConfig, data: dir };
  const store = openBlobStore(config);
  return {
    store,
    config,
    dir,
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** s3rver (a fake S3 on the local disk: S3 itself cannot run here) with bucket `fleetd`, on a free port. */
export async function startS3Server(): Promise<{ dir: string; endpoint: string; bucket: string; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetd-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: 'fleetd' }] });
  const { port } = await server.run();
  return {
    dir,
    endpoint: `http://127.0.0.1:${port}`,
    bucket: 'fleetd',
    close: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function openS3TestStore(prefix = 'blobs'): Promise<TestBlobStore> {
  const server = await startS3Server();
  // s3rver checks signatures against its fixed S3RVER/S3RVER credentials.
  const config = {
    ...baseConfig,
    data: server.dir,
    blobStorage: `s3://${server.bucket}/${prefix}`,
    s3Endpoint: server.endpoint,
    s3AccessKeyId: 'S3RVER',
    s3SecretAccessKey: 'S3RVER',
  };
  const store = openBlobStore(config);
  return {
    store,
    config,
    dir: server.dir,
    close: async () => {
      await store.close();
      await server.close();
    },
  };
}

export const testStoreKinds = [
  { kind: 'local', open: openLocalTestStore },
  { kind: 's3', open: () => openS3TestStore() },
] as const;
