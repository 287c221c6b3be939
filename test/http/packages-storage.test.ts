import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { startS3Server } from '../blob/stores.ts';
import { backends } from '../helpers/backends.ts';
import { formBody, patternBytes, patternContent, postStream, type PostReply } from '../helpers/multipart.ts';
import { readUntil } from '../helpers/waiting.ts';
import { request, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Packages on each kind of blob storage: a large package streamed through the server without its
 * memory growing by the package's size (local folder), and the S3 store with multipart uploads,
 * ranged downloads, presigned links, and nothing left of an interrupted upload.
 */

const mib = 1024 * 1024;
const largeSize = 64 * mib;
/** How much the process may grow while a 64 MiB package passes through: buffers, not the package. */
const memoryBound = 40 * mib;

/** The SHA-256 of patternContent(size), computed chunk by chunk as the content is made. */
async function patternSha256(size: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of patternContent(size)()) hash.update(chunk);
  return hash.digest('hex');
}

/** Samples the process's resident memory until stopped; returns the highest value seen. */
function sampleRss(): () => number {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  return () => {
    clearInterval(timer);
    return Math.max(peak, process.memoryUsage().rss);
  };
}

const upload = async (server: TestServer, size: number, options: { abortAfter?: number } = {}) =>
  postStream(
    `${server.url}/api/orgs/${server.admin.orgId}/packages`,
    formBody([{ name: 'version', value: 'v1' }, { name: 'deviceType', value: 'big' }, { name: 'file', filename: 'image.bin', content: patternContent(size) }]),
    { token: server.admin.token, ...options },
  );

for (const backend of await backends()) {
  describe(`packages on a local folder, large [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend);
    });
    after(async () => {
      await server?.close();
    });

    it('streams a 64 MiB package in and out without holding it in memory', async () => {
      const expected = await patternSha256(largeSize);
      const baseline = process.memoryUsage().rss;
      const stopUpload = sampleRss();
      const created = (await upload(server, largeSize)) as PostReply;
      const uploadPeak = stopUpload();
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.size, largeSize);
      assert.equal(created.body.sha256, expected);

      const stopDownload = sampleRss();
      const response = await fetch(`${server.url}/api/orgs/${server.admin.orgId}/packages/${created.body.id}/content`, { headers: { authorization: `Bearer ${server.admin.token}` } });
      assert.equal(response.headers.get('content-length'), String(largeSize));
      const hash = createHash('sha256');
      let received = 0;
      for await (const chunk of response.body!) {
        hash.update(chunk);
        received += chunk.length;
      }
      const downloadPeak = stopDownload();
      assert.equal(received, largeSize);
      assert.equal(hash.digest('hex'), expected);
      for (const [what, peak] of [['upload', uploadPeak], ['download', downloadPeak]] as const) {
        assert.ok(peak - baseline < memoryBound, `${what}: the process grew by ${((peak - baseline) / mib).toFixed(1)} MiB for a ${largeSize / mib} MiB package`);
      }
    });
  });

  describe(`packages on S3 [${backend.name}]`, { skip: backend.skip }, () => {
    let s3: Awaited<ReturnType<typeof startS3Server>>;
    let server: TestServer;
    let client: S3Client;
    const objects = async () => (await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'fleet/packages/' }))).Contents?.map((o) => o.Key) ?? [];

    before(async () => {
      s3 = await startS3Server();
      server = await startTestServer(backend, {
        blobStorage: `s3://${s3.bucket}/fleet`,
        s3Endpoint: s3.endpoint,
        s3AccessKeyId: 'S3RVER',
        s3SecretAccessKey: 'S3RVER',
        s3ForcePathStyle: 'true',
        maxPackageSize: String(8 * mib),
      });
      client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    });
    after(async () => {
      client?.destroy();
      await server?.close();
      await s3?.close();
    });

    it('stores a package in several parts, serves ranges, and hands out presigned links', async () => {
      const size = 6 * mib + 123;
      const content = patternBytes(0, size);
      const created = (await upload(server, size)) as PostReply;
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.sha256, createHash('sha256').update(content).digest('hex'));
      assert.deepEqual(await objects(), [`fleet/packages/${server.admin.orgId}/${created.body.id}`]);

      const path = `/api/orgs/${server.admin.orgId}/packages/${created.body.id}`;
      const part = await fetch(`${server.url}${path}/content`, { headers: { authorization: `Bearer ${server.admin.token}`, range: 'bytes=5242870-5242889' } });
      assert.equal(part.status, 206);
      assert.ok(Buffer.from(await part.arrayBuffer()).equals(content.subarray(5_242_870, 5_242_890)));

      const link = await request(server.url, 'POST', `${path}/link`, { token: server.admin.token });
      assert.equal(link.status, 200);
      assert.ok(link.body.url.startsWith(`${s3.endpoint}/${s3.bucket}/fleet/packages/`), link.body.url);
      assert.match(link.body.url, /X-Amz-Expires=3600/);
      const whole = await fetch(link.body.url);
      assert.equal(whole.status, 200);
      assert.ok(Buffer.from(await whole.arrayBuffer()).equals(content));
      // (s3rver reads a suffix range `bytes=-n` as `bytes=0-n`, unlike S3: a plain range here.)
      const middle = await fetch(link.body.url, { headers: { range: 'bytes=100-199' } });
      assert.equal(middle.status, 206);
      assert.ok(Buffer.from(await middle.arrayBuffer()).equals(content.subarray(100, 200)));

      assert.equal((await request(server.url, 'DELETE', path, { token: server.admin.token })).status, 204);
      assert.deepEqual(await objects(), []);
    });

    it('leaves no object and no row of an upload cut off or too large', async () => {
      assert.equal(await upload(server, 7 * mib, { abortAfter: 5 * mib + 500_000 }), 'aborted');
      const tooLarge = (await upload(server, 8 * mib + 1)) as PostReply;
      assert.equal(tooLarge.status, 413);
      await readUntil(() => server.services.store.db.selectFrom('packages').select('id').execute(), (rows) => rows.length === 0);
      assert.deepEqual(await objects(), []);
    });
  });
}
