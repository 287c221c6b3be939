import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { RdfmIds } from '../../../src/adapters/rdfm/ids.ts';
import { insertUser } from '../../../src/services/users.ts';
import { startS3Server } from '../../blob/stores.ts';
import { backends } from '../../helpers/backends.ts';
import { boundary, formBody, postStream, type Part, type PostReply } from '../../helpers/multipart.ts';
import { login, memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { RdfmDevice } from './simulator.ts';

const rfc822Shape = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** Every file under `dir` (none when it does not exist). */
function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name));
  } catch {
    return [];
  }
}

/**
 * RDFM's package routes as rdfm-mgmt calls them (`packages list|upload|delete`), with
 * `Authorization: Bearer token=<token>`, over real HTTP; then the package reaching a real RDFM device.
 */
for (const backend of await backends()) {
  describe(`RDFM management: packages [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let data: string;
    let admin: string;
    let viewer: string;
    let outsider: string;
    const blobs = () => filesUnder(join(data, 'blobs'));
    const spooled = () => filesUnder(join(data, 'uploads'));
    const rows = () => server.services.store.db.selectFrom('packages').select(['id', 'status']).execute();

    const rdfm = (method: string, path: string, token: string | undefined, body?: unknown) =>
      request(server.url, method, path, { body, headers: token === undefined ? {} : { authorization: `Bearer token=${token}` } });
    /** Uploads as the admin, or with `token` (null: with none). */
    const upload = async (parts: Part[], token: string | null = admin): Promise<PostReply> => {
      const reply = await postStream(`${server.url}/api/v1/packages`, formBody(parts), { headers: token === null ? {} : { authorization: `Bearer token=${token}` } });
      assert.notEqual(reply, 'aborted');
      return reply as PostReply;
    };
    const fields = (metadata: Record<string, string>): Part[] => Object.entries(metadata).map(([name, value]) => ({ name, value }));
    const file = (content: Buffer): Part => ({ name: 'file', filename: 'image.img', content });
    /** What `rdfm-mgmt packages upload` sends: requests_toolbelt writes the fields of a dict in order, the file first. */
    const asRdfmMgmt = (metadata: Record<string, string>, content: Buffer): Part[] => [file(content), ...fields(metadata)];

    before(async () => {
      data = mkdtempSync(join(tmpdir(), 'fleetd-rdfm-packages-'));
      server = await startTestServer(backend, { data, messageLog: 'off', maxPackageSize: String(1024 * 1024) });
      admin = server.admin.token;
      viewer = (await memberWithRole(server, server.admin.orgId, 'viewer@example.com', 'viewer')).token;
      // Another organization, with an owner of its own and an API key of it.
      const owner = await insertUser(server.services.store.db, { email: 'other@example.com', password: 'other-password-1' });
      const created = await request(server.url, 'POST', '/api/orgs', { token: admin, body: { slug: 'other', name: 'Other', ownerId: owner.id } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const ownerToken = (await login(server.url, 'other@example.com', 'other-password-1')).accessToken;
      const key = await request(server.url, 'POST', '/api/orgs/other/api-keys', { token: ownerToken, body: { name: 'rdfm-mgmt' } });
      assert.equal(key.status, 201, JSON.stringify(key.body));
      outsider = key.body.key;
    });
    after(async () => {
      await server?.close();
      rmSync(data, { recursive: true, force: true });
    });

    describe('what rdfm-mgmt does', () => {
      const contentV2 = Buffer.from('full image v2 '.repeat(5000));
      let v2: any;

      it('uploads as rdfm-mgmt does (the file, then the metadata): the RDFM Package', async () => {
        const reply = await upload(
          asRdfmMgmt({ 'rdfm.software.version': 'v2', 'rdfm.hardware.devtype': 'board-a', 'rdfm.software.supports_rsync': 'true', 'rdfm.storage.directory': 'board-a/v2' }, contentV2),
        );
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        v2 = reply.body;
        assert.deepEqual(Object.keys(v2).sort(), ['created', 'driver', 'id', 'metadata', 'sha256']);
        assert.ok(Number.isSafeInteger(v2.id) && v2.id > 0);
        assert.match(v2.created, rfc822Shape);
        assert.equal(v2.sha256, createHash('sha256').update(contentV2).digest('hex'));
        assert.equal(v2.driver, 'local');
        const [stored] = await rows();
        assert.deepEqual(v2.metadata, {
          'rdfm.software.version': 'v2',
          'rdfm.hardware.devtype': 'board-a',
          'rdfm.software.supports_rsync': 'true',
          'rdfm.storage.local.uuid': stored!.id,
          'rdfm.storage.local.length': contentV2.length,
        });
        assert.deepEqual(spooled(), [], 'the file waited on disk only during the upload');
        // fleetd sees the package as its own.
        const own = await request(server.url, 'GET', `/api/orgs/${server.admin.orgId}/packages/${stored!.id}`, { token: admin });
        assert.deepEqual([own.body.version, own.body.deviceType, own.body.metadata], ['v2', 'board-a', { 'rdfm.software.supports_rsync': 'true' }]);
      });

      it('uploads with the fields first too, with requires: conditions', async () => {
        const reply = await upload([...fields({ 'rdfm.software.version': 'v3', 'rdfm.hardware.devtype': 'board-a', 'requires:rdfm.software.version': 'v2' }), file(Buffer.from('delta v2 to v3'))]);
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        assert.equal(reply.body.metadata['requires:rdfm.software.version'], 'v2');
        assert.ok(reply.body.id > v2.id);
      });

      it('lists and gets packages: GET /api/v1/packages, /api/v1/packages/<id>', async () => {
        const list = await rdfm('GET', '/api/v1/packages', admin);
        assert.equal(list.status, 200);
        assert.deepEqual(list.body.map((p: any) => p.metadata['rdfm.software.version']), ['v2', 'v3']);
        assert.deepEqual(list.body[0], v2);
        const one = await rdfm('GET', `/api/v1/packages/${v2.id}`, admin);
        assert.deepEqual([one.status, one.body], [200, v2]);
        assert.deepEqual((await rdfm('GET', '/api/v1/packages', viewer)).body, list.body, 'viewers read');
      });

      it('hands out a download_url that downloads the exact bytes', async () => {
        const reply = await rdfm('GET', `/api/v1/packages/${v2.id}/download`, admin);
        assert.equal(reply.status, 200);
        assert.deepEqual(Object.keys(reply.body).sort(), ['download_url', 'id']);
        assert.equal(reply.body.id, v2.id);
        assert.ok(reply.body.download_url.startsWith(`${server.url}/api/packages/download/`), reply.body.download_url);
        const download = await fetch(reply.body.download_url);
        assert.equal(download.status, 200);
        assert.ok(Buffer.from(await download.arrayBuffer()).equals(contentV2));
      });

      it('offers the package to an RDFM device in an RDFM group targeting its version', async () => {
        const device = new RdfmDevice(server.url, '00:11:22:33:44:66');
        assert.equal((await device.auth()).status, 401);
        const pending = await request(server.url, 'GET', '/api/pending-devices', { token: admin });
        const entry = pending.body.items.find((p: any) => p.externalId === device.mac);
        const accepted = await request(server.url, 'POST', `/api/pending-devices/${entry.id}/accept`, { token: admin, body: { org: 'default' } });
        assert.equal(accepted.status, 201);
        assert.equal((await device.auth()).status, 200);
        const deviceNumber = await new RdfmIds(server.services.store.db).number('device', accepted.body.id);

        const group = await rdfm('POST', '/api/v2/groups', admin, { metadata: { 'rdfm.group.name': 'boards', 'rdfm.group.description': 'board-a units' } });
        assert.equal(group.status, 200, JSON.stringify(group.body));
        assert.deepEqual((await rdfm('PATCH', `/api/v2/groups/${group.body.id}/devices`, admin, { add: [deviceNumber], remove: [] })).status, 200);
        assert.deepEqual((await rdfm('POST', `/api/v2/groups/${group.body.id}/package`, admin, { packages: [v2.id] })).body, {});
        assert.deepEqual((await rdfm('POST', `/api/v2/groups/${group.body.id}/policy`, admin, { policy: 'exact_match,v2' })).body, {});

        const listed = (await rdfm('GET', '/api/v1/packages', admin)).body.find((p: any) => p.metadata['rdfm.software.version'] === 'v2');
        const offer = await device.updateCheck();
        assert.equal(offer.status, 200, JSON.stringify(offer.body));
        assert.equal(offer.body.id, listed.id, 'the device is offered the package by the id rdfm-mgmt lists');
        assert.equal(offer.body.sha256, v2.sha256);
        assert.equal(offer.body.created, v2.created);
        const download = await fetch(offer.body.uri);
        assert.ok(Buffer.from(await download.arrayBuffer()).equals(contentV2));

        // In use by the group: 409, as RDFM; and still once the group's set is cleared, as fleetd
        // keeps a package a device was offered and has not installed yet.
        for (const packages of [[v2.id], []]) {
          if (packages.length === 0) assert.equal((await rdfm('POST', `/api/v2/groups/${group.body.id}/package`, admin, { packages })).status, 200);
          const refused = await rdfm('DELETE', `/api/v1/packages/${v2.id}`, admin);
          assert.equal(refused.status, 409);
          assert.equal(typeof refused.body.error, 'string');
        }
      });

      it('deletes a package: 200 {}, then 404, and its blob is gone', async () => {
        const v3 = (await rdfm('GET', '/api/v1/packages', admin)).body.find((p: any) => p.metadata['rdfm.software.version'] === 'v3');
        const before = blobs().length;
        assert.deepEqual(await rdfm('DELETE', `/api/v1/packages/${v3.id}`, admin).then((r) => [r.status, r.body]), [200, {}]);
        assert.equal(blobs().length, before - 1);
        for (const path of [`/api/v1/packages/${v3.id}`, `/api/v1/packages/${v3.id}/download`]) {
          const gone = await rdfm('GET', path, admin);
          assert.equal(gone.status, 404, path);
          assert.equal(typeof gone.body.error, 'string');
        }
        assert.equal((await rdfm('DELETE', `/api/v1/packages/${v3.id}`, admin)).status, 404);
      });
    });

    describe('who may do what', () => {
      let id: number;
      before(async () => {
        const reply = await upload(asRdfmMgmt({ 'rdfm.software.version': 'v9', 'rdfm.hardware.devtype': 'board-b' }, Buffer.from('v9')));
        assert.equal(reply.status, 200);
        id = reply.body.id;
      });

      it('refuses viewers uploads and deletions (403) and stores nothing', async () => {
        const count = (await rows()).length;
        const refused = await upload(asRdfmMgmt({ 'rdfm.software.version': 'v10', 'rdfm.hardware.devtype': 'board-b' }, Buffer.from('v10')), viewer);
        assert.equal(refused.status, 403);
        assert.equal(typeof refused.body.error, 'string');
        const deletion = await rdfm('DELETE', `/api/v1/packages/${id}`, viewer);
        assert.equal(deletion.status, 403);
        assert.equal(typeof deletion.body.error, 'string');
        assert.equal((await rows()).length, count);
        assert.equal((await rdfm('GET', `/api/v1/packages/${id}`, viewer)).status, 200);
      });

      it("shows another organization's API key none of this organization's packages", async () => {
        assert.deepEqual(await rdfm('GET', '/api/v1/packages', outsider).then((r) => [r.status, r.body]), [200, []]);
        for (const [method, path] of [['GET', `/api/v1/packages/${id}`], ['GET', `/api/v1/packages/${id}/download`], ['DELETE', `/api/v1/packages/${id}`]] as const) {
          const reply = await rdfm(method, path, outsider);
          assert.equal(reply.status, 404, `${method} ${path}`);
          assert.equal(typeof reply.body.error, 'string');
        }
        assert.equal((await rdfm('GET', `/api/v1/packages/${id}`, admin)).status, 200, 'still there');
      });

      it('uploads into the API key organization, which the admin does not see', async () => {
        const reply = await upload(asRdfmMgmt({ 'rdfm.software.version': 'o1', 'rdfm.hardware.devtype': 'board-o' }, Buffer.from('other')), outsider);
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        assert.deepEqual((await rdfm('GET', '/api/v1/packages', outsider)).body.map((p: any) => p.id), [reply.body.id]);
        assert.equal((await rdfm('GET', `/api/v1/packages/${reply.body.id}`, admin)).status, 404);
        assert.ok(!(await rdfm('GET', '/api/v1/packages', admin)).body.some((p: any) => p.id === reply.body.id));
      });

      it('answers no token, or a wrong one, with 401 {"error"}', async () => {
        for (const [method, path] of [['GET', '/api/v1/packages'], ['GET', `/api/v1/packages/${id}`], ['GET', `/api/v1/packages/${id}/download`], ['DELETE', `/api/v1/packages/${id}`]] as const) {
          for (const token of [undefined, 'not-a-token']) {
            const reply = await rdfm(method, path, token);
            assert.equal(reply.status, 401, `${method} ${path}`);
            assert.equal(typeof reply.body.error, 'string', `${method} ${path}: ${JSON.stringify(reply.body)}`);
          }
        }
        const count = (await rows()).length;
        const upload401 = await upload(asRdfmMgmt({ 'rdfm.software.version': 'v11', 'rdfm.hardware.devtype': 'board-b' }, Buffer.from('v11')), null);
        assert.equal(upload401.status, 401);
        assert.equal(typeof upload401.body.error, 'string');
        assert.equal((await rows()).length, count);
      });
    });

    describe('hostile input', () => {
      const good = { 'rdfm.software.version': 'v5', 'rdfm.hardware.devtype': 'board-c' };
      /** Refused with `status` and RDFM's error body, leaving no row, no blob and no spooled file behind. */
      const assertRefused = async (parts: Part[] | PostReply, what: string, status = 400, message?: RegExp) => {
        const [rowsBefore, blobsBefore] = [(await rows()).length, blobs().length];
        const reply = Array.isArray(parts) ? await upload(parts) : parts;
        assert.equal(reply.status, status, `${what}: ${JSON.stringify(reply.body)}`);
        assert.equal(typeof reply.body?.error, 'string', `${what}: ${JSON.stringify(reply.body)}`);
        if (message) assert.match(reply.body.error, message, what);
        assert.equal((await rows()).length, rowsBefore, `${what}: no row`);
        assert.equal(blobs().length, blobsBefore, `${what}: no blob`);
        assert.deepEqual(spooled(), [], `${what}: no spooled file`);
      };
      const content = Buffer.from('hostile');

      it('refuses missing version or device type', async () => {
        await assertRefused(asRdfmMgmt({ 'rdfm.hardware.devtype': 'board-c' }, content), 'no version', 400, /^rdfm\.software\.version required$/);
        await assertRefused(asRdfmMgmt({ 'rdfm.software.version': 'v5' }, content), 'no device type', 400, /^rdfm\.hardware\.devtype required$/);
        await assertRefused(asRdfmMgmt({ ...good, 'rdfm.software.version': '' }, content), 'an empty version');
        await assertRefused(asRdfmMgmt({ ...good, 'rdfm.software.version': 'v\u0001' }, content), 'a control character');
      });

      it('refuses reserved storage keys and directories leaving the package folder', async () => {
        for (const key of ['rdfm.storage.local.uuid', 'rdfm.storage.local.length', 'rdfm.storage.s3.uuid', 'rdfm.storage.']) {
          await assertRefused(asRdfmMgmt({ ...good, [key]: 'x' }, content), key, 400, /^provided metadata contains reserved key$/);
        }
        for (const directory of ['../escape', 'a/../../b', '/etc', '..', 'a\\..\\b', 'a\u0000b']) {
          await assertRefused(asRdfmMgmt({ ...good, 'rdfm.storage.directory': directory }, content), `directory ${JSON.stringify(directory)}`);
        }
      });

      it('refuses forms without a file part, with two, with oversized or JSON fields, or broken', async () => {
        await assertRefused(fields(good), 'no file part');
        await assertRefused([...fields(good), { name: 'file', value: 'text, not a file' }], 'a text field named file');
        await assertRefused([file(content), file(content), ...fields(good)], 'two files');
        await assertRefused([...fields(good), file(content), file(content)], 'two files after the fields');
        await assertRefused(asRdfmMgmt({ ...good, note: 'x'.repeat(300 * 1024) }, content), 'a 300 KiB field');
        await assertRefused(asRdfmMgmt({ ...good, note: 'x'.repeat(2000) }, content), 'a metadata value over 1000 characters');
        await assertRefused(asRdfmMgmt({ ...good, ['n'.repeat(2000)]: 'x' }, content), 'a 2000-byte field name');
        await assertRefused(asRdfmMgmt({ ...good, ...Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`k${i}`, 'v'])) }, content), 'too many fields', 413);
        await assertRefused([file(content), ...fields(good), { name: 'metadata', value: '{"a":1}', contentType: 'application/json' }], 'a JSON field');
        await assertRefused([file(content), ...fields({ ...good, 'rdfm.software.version': 'v5' }), { name: 'rdfm.software.version', value: 'v6' }], 'a field twice');
        async function* broken(): AsyncGenerator<Buffer> {
          yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n`);
          yield Buffer.alloc(50_000, 1);
        }
        const cut = await postStream(`${server.url}/api/v1/packages`, broken(), { headers: { authorization: `Bearer token=${admin}` } });
        await assertRefused(cut as PostReply, 'a form ending in the middle of the file');
        async function* jsonBody(): AsyncGenerator<Buffer> {
          yield Buffer.from(JSON.stringify(good));
        }
        const json = await postStream(`${server.url}/api/v1/packages`, jsonBody(), { contentType: 'application/json', headers: { authorization: `Bearer token=${admin}` } });
        await assertRefused(json as PostReply, 'JSON instead of a form', 415);
      });

      it('refuses a package over maxPackageSize with 413, whichever part comes first', async () => {
        const big = Buffer.alloc(1024 * 1024 + 1, 7);
        await assertRefused(asRdfmMgmt(good, big), 'too large, file first', 413);
        await assertRefused([...fields(good), file(big)], 'too large, fields first', 413);
      });

      it('leaves nothing behind when the client goes away in the middle of the file', async () => {
        const [rowsBefore, blobsBefore] = [(await rows()).length, blobs().length];
        const reply = await postStream(`${server.url}/api/v1/packages`, formBody(asRdfmMgmt(good, Buffer.alloc(800_000, 3))), { headers: { authorization: `Bearer token=${admin}` }, abortAfter: 300_000 });
        assert.equal(reply, 'aborted');
        for (let i = 0; i < 100 && spooled().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(spooled(), []);
        assert.equal((await rows()).length, rowsBefore);
        assert.equal(blobs().length, blobsBefore);
        assert.equal((await upload(asRdfmMgmt(good, content))).status, 200, 'the server still takes uploads');
      });

      it('answers ids that are not RDFM package ids with 404', async () => {
        for (const id of ['abc', '1.5', '-1', '0', '99999999999999999999', '4294967296', '1e3', '0x1']) {
          for (const path of [`/api/v1/packages/${id}`, `/api/v1/packages/${id}/download`]) {
            const reply = await rdfm('GET', path, admin);
            assert.equal(reply.status, 404, path);
            assert.equal(typeof reply.body.error, 'string', path);
          }
          assert.equal((await rdfm('DELETE', `/api/v1/packages/${id}`, admin)).status, 404);
        }
      });
    });
  });

  describe(`RDFM management: packages on S3 [${backend.name}]`, { skip: backend.skip }, () => {
    let s3: Awaited<ReturnType<typeof startS3Server>>;
    let server: TestServer;
    let client: S3Client;
    const objects = async () => (await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'fleet/packages/' }))).Contents?.map((o) => o.Key) ?? [];

    before(async () => {
      s3 = await startS3Server();
      server = await startTestServer(backend, { blobStorage: `s3://${s3.bucket}/fleet`, s3Endpoint: s3.endpoint, s3AccessKeyId: 'S3RVER', s3SecretAccessKey: 'S3RVER', s3ForcePathStyle: 'true', messageLog: 'off' });
      client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    });
    after(async () => {
      client?.destroy();
      await server?.close();
      await s3?.close();
    });

    it("names the S3 driver and its storage keys, and hands out S3's presigned link", async () => {
      const content = Buffer.from('image on s3 '.repeat(1000));
      const reply = await postStream(`${server.url}/api/v1/packages`, formBody([{ name: 'file', filename: 'i.img', content }, { name: 'rdfm.software.version', value: 'v1' }, { name: 'rdfm.hardware.devtype', value: 'board' }]), {
        headers: { authorization: `Bearer token=${server.admin.token}` },
      });
      assert.notEqual(reply, 'aborted');
      const created = (reply as PostReply).body;
      assert.equal((reply as PostReply).status, 200, JSON.stringify(created));
      assert.equal(created.driver, 's3');
      const [row] = await server.services.store.db.selectFrom('packages').select('id').execute();
      assert.deepEqual(created.metadata, { 'rdfm.software.version': 'v1', 'rdfm.hardware.devtype': 'board', 'rdfm.storage.s3.uuid': row!.id, 'rdfm.storage.s3.size': content.length });
      assert.deepEqual(await objects(), [`fleet/packages/${server.admin.orgId}/${row!.id}`]);
      const headers = { authorization: `Bearer token=${server.admin.token}` };
      const link = await request(server.url, 'GET', `/api/v1/packages/${created.id}/download`, { headers });
      assert.ok(link.body.download_url.startsWith(`${s3.endpoint}/${s3.bucket}/fleet/packages/`), link.body.download_url);
      assert.ok(Buffer.from(await (await fetch(link.body.download_url)).arrayBuffer()).equals(content));
      assert.equal((await request(server.url, 'DELETE', `/api/v1/packages/${created.id}`, { headers })).status, 200);
      assert.deepEqual(await objects(), []);
    });
  });
}
