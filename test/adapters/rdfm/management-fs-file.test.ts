import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { RdfmIds } from '../../../src/adapters/rdfm/ids.ts';
import { pullPartKey as partKey } from '../../../src/services/remote/file-pulls.ts';
import { PullLinks } from '../../../src/services/remote/pull-links.ts';
import { loadJwtSecret } from '../../../src/services/sessions.ts';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import type { RdfmSocket } from './simulator.ts';
import { admitRdfmDevice, connectRdfmDevice, eventually, otherOrganization, rdfmCall } from './remote-fixture.ts';

const MiB = 1024 * 1024;

/** A part's PUT as RDFM's client makes it: no credential but the URL's token, no content type. */
const putPart = async (url: string, content: Buffer) => {
  const response = await fetch(url, { method: 'PUT', body: content });
  return { status: response.status, etag: response.headers.get('etag'), body: await response.text() };
};

/** RDFM's file download (`POST /api/v2/devices/<id>/fs/file`) on fleetd's file pulls, against a simulated RDFM device. */
for (const backend of await backends()) {
  describe(`RDFM management: file download [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let socket: RdfmSocket;
    let path: string;
    const admin = (body: unknown, id = path) => rdfmCall(server, server.admin.token, 'POST', id, body);
    const pullOf = async (id: string) => (await request(server.url, 'GET', `/api/orgs/${server.admin.orgId}/file-pulls/${id}`, { token: server.admin.token })).body;
    /** The device's next frame of `method`, taken from what it received. */
    const next = async (method: string) => {
      const frame = await socket.frame(method);
      socket.frames.splice(socket.frames.indexOf(frame), 1);
      return frame;
    };
    const ids = () => new RdfmIds(server.services.store.db);

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off' });
    });
    after(async () => {
      socket?.close();
      await server?.close();
    });

    it('pulls a 12 MiB file in three parts and hands out a link to its exact bytes', async () => {
      ({ socket } = await connected(server, '02:00:00:00:0f:02', { filesystem: true }));
      path = `/api/v2/devices/${await ids().number('device', await deviceIdOf(server, '02:00:00:00:0f:02'))}/fs/file`;
      const content = randomBytes(12 * MiB);
      const answer = admin({ file: '/var/log/big.bin' });

      const probe = await next('fs_file_probe');
      assert.equal(probe.file, '/var/log/big.bin');
      socket.send({ method: 'fs_file_probe_reply', id: probe.id, status: 0, size: content.length });
      const download = await next('fs_file_download');
      assert.deepEqual([download.id, download.file, download.part_size, download.upload_urls.length], [probe.id, '/var/log/big.bin', 5 * MiB, 3]);
      const etags: string[] = [];
      for (const [i, url] of (download.upload_urls as string[]).entries()) {
        assert.match(url, new RegExp(`^${server.url}/local_storage_multipart/parts/${probe.id}\\.${i + 1}\\?token=`));
        const part = content.subarray(i * 5 * MiB, (i + 1) * 5 * MiB);
        const put = await putPart(url, part);
        assert.equal(put.status, 200, put.body);
        assert.equal(put.etag, `"${createHash('sha256').update(part).digest('hex')}"`);
        etags.push(put.etag!);
      }
      socket.send({ method: 'fs_file_download_reply', id: probe.id, status: 0, etags });

      const reply = await answer;
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.equal(reply.body.status, 0);
      assert.match(reply.body.url, new RegExp(`^${server.url}/api/file-pulls/download/`));
      const fetched = await fetch(reply.body.url);
      assert.equal(fetched.status, 200);
      assert.ok(Buffer.from(await fetched.arrayBuffer()).equals(content));
      const ranged = await fetch(reply.body.url, { headers: { range: 'bytes=10-19' } });
      assert.equal(ranged.status, 206);
      assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(content.subarray(10, 20)));

      const pull = await pullOf(probe.id);
      assert.deepEqual([pull.status, pull.size, pull.sha256], ['done', content.length, createHash('sha256').update(content).digest('hex')]);
      for (const n of [1, 2, 3]) assert.equal(await server.services.blobs.stat(partKey(server.admin.orgId, probe.id, n)), undefined);
      // The pull is done: its URLs take no part any more.
      assert.equal((await putPart(download.upload_urls[0], Buffer.from('late'))).status, 409);
      // A download link is no part's credential, nor the other way round.
      assert.equal((await fetch(`${server.url}/api/file-pulls/download/${new URL(download.upload_urls[0]).searchParams.get('token')}`)).status, 404);
      assert.equal((await fetch(`${server.url}/api/file-pulls/download/nonsense`)).status, 404);
    });

    it("answers a device's refusal with its status and no URL", async () => {
      const answer = admin({ file: '/nope' });
      const probe = await next('fs_file_probe');
      socket.send({ method: 'fs_file_probe_reply', id: probe.id, status: 2, size: 0 });
      const reply = await answer;
      assert.deepEqual([reply.status, reply.body], [200, { status: 2, url: '' }]);
      assert.equal((await pullOf(probe.id)).error, 'device status 2');

      const failing = admin({ file: '/flaky' });
      const second = await next('fs_file_probe');
      socket.send({ method: 'fs_file_probe_reply', id: second.id, status: 0, size: 10 });
      await next('fs_file_download');
      socket.send({ method: 'fs_file_download_reply', id: second.id, status: 5, etags: [] });
      assert.deepEqual((await failing).body, { status: 5, url: '' });
    });

    it('fails a file above maxFilePullSize, a download reply without its parts, and a part its ETag does not name', async () => {
      const large = admin({ file: '/huge' });
      const probe = await next('fs_file_probe');
      socket.send({ method: 'fs_file_probe_reply', id: probe.id, status: 0, size: 2 ** 40 });
      assert.deepEqual((await large).body, { status: -1, url: '' });
      assert.equal((await pullOf(probe.id)).error, 'the file is too large');

      const missing = admin({ file: '/missing' });
      const second = await next('fs_file_probe');
      socket.send({ method: 'fs_file_probe_reply', id: second.id, status: 0, size: 10 });
      await next('fs_file_download');
      socket.send({ method: 'fs_file_download_reply', id: second.id, status: 0, etags: ['"x"'] });
      assert.deepEqual((await missing).body, { status: -1, url: '' });
      assert.equal((await pullOf(second.id)).error, 'part 1 was not uploaded');

      // A part that is not the one the device's ETag names: nothing is stored, the parts go.
      const changed = admin({ file: '/changed' });
      const third = await next('fs_file_probe');
      socket.send({ method: 'fs_file_probe_reply', id: third.id, status: 0, size: 10 });
      const { upload_urls: urls } = await next('fs_file_download');
      const put = await putPart(urls[0], Buffer.from('0123456789'));
      assert.equal(put.status, 200);
      socket.send({ method: 'fs_file_download_reply', id: third.id, status: 0, etags: [`"${createHash('sha256').update('9876543210').digest('hex')}"`] });
      assert.deepEqual((await changed).body, { status: -1, url: '' });
      const failed = await pullOf(third.id);
      assert.deepEqual([failed.status, failed.error, failed.size], ['failed', 'part 1 is not the one its ETag names', null]);
      assert.equal(await server.services.blobs.stat(partKey(server.admin.orgId, third.id, 1)), undefined);
    });

    it('refuses hostile part uploads, and leaves the pull pending', async () => {
      const answer = admin({ file: '/var/log/syslog' });
      const probe = await next('fs_file_probe');
      socket.send({ method: 'fs_file_probe_reply', id: probe.id, status: 0, size: 12 * MiB });
      const { upload_urls: urls } = await next('fs_file_download');
      const tokenOf = (url: string) => new URL(url).searchParams.get('token')!;
      const base = `${server.url}/local_storage_multipart/parts`;
      const small = Buffer.from('part');

      assert.equal((await putPart(`${base}/${probe.id}.1`, small)).status, 404);
      assert.equal((await putPart(`${base}/${probe.id}.1?token=forged.${'A'.repeat(43)}`, small)).status, 404);
      const links = new PullLinks(await loadJwtSecret(server.services.store.db, ''));
      const expired = links.sign({ pullId: probe.id, orgId: server.admin.orgId, part: { number: 1, partSize: 5 * MiB }, expiresAt: Math.floor(Date.now() / 1000) - 1 });
      assert.equal((await putPart(`${base}/${probe.id}.1?token=${expired}`, small)).status, 404);
      // Another part's token, a part past the count, another pull's name.
      assert.equal((await putPart(`${base}/${probe.id}.2?token=${tokenOf(urls[0])}`, small)).status, 403);
      assert.equal((await putPart(`${base}/${probe.id}.4?token=${tokenOf(urls[2])}`, small)).status, 403);
      assert.equal((await putPart(`${base}/${probe.id}.0?token=${tokenOf(urls[0])}`, small)).status, 403);
      assert.equal((await putPart(`${base}/pull_other.1?token=${tokenOf(urls[0])}`, small)).status, 403);
      const oversize = await putPart(urls[0], Buffer.alloc(5 * MiB + 1));
      assert.equal(oversize.status, 413);
      assert.ok(JSON.parse(oversize.body).error);
      // Sent without a length (chunked), a part is cut off as it streams past its size.
      const chunks = Readable.toWeb(Readable.from([Buffer.alloc(3 * MiB), Buffer.alloc(3 * MiB)])) as ReadableStream;
      const chunked = await fetch(urls[0], { method: 'PUT', body: chunks, duplex: 'half' } as RequestInit);
      assert.equal(chunked.status, 413);
      assert.match(((await chunked.json()) as { error: string }).error, /at most 5242880 bytes/);
      assert.equal(await server.services.blobs.stat(partKey(server.admin.orgId, probe.id, 1)), undefined);
      assert.equal((await pullOf(probe.id)).status, 'pending');

      // Fewer parts reported than uploaded is no file; the parts go.
      assert.equal((await putPart(urls[0], Buffer.alloc(5 * MiB))).status, 200);
      assert.equal((await putPart(urls[1], Buffer.alloc(5 * MiB))).status, 200);
      socket.send({ method: 'fs_file_download_reply', id: probe.id, status: 0, etags: ['"a"'] });
      assert.deepEqual((await answer).body, { status: -1, url: '' });
      assert.equal((await pullOf(probe.id)).error, 'the device reported fewer parts than it uploaded');
      for (const n of [1, 2]) assert.equal(await server.services.blobs.stat(partKey(server.admin.orgId, probe.id, n)), undefined);
    });

    it('removes the parts of a pull whose device never says its upload is complete', async () => {
      const answer = admin({ file: '/var/log/messages' });
      const probe = await next('fs_file_probe');
      socket.send({ method: 'fs_file_probe_reply', id: probe.id, status: 0, size: 12 * MiB });
      const { upload_urls: urls } = await next('fs_file_download');
      for (const url of urls.slice(0, 2)) assert.equal((await putPart(url, Buffer.alloc(5 * MiB))).status, 200);
      // filePullTimeout's default.
      const timeout = 600;
      assert.equal(await server.services.filePulls.sweepTimeouts(Date.now() + (timeout + 1) * 1000), 1);
      assert.deepEqual((await answer).body, { status: -1, url: '' });
      assert.equal((await pullOf(probe.id)).error, `the device sent no file within ${timeout} s`);
      for (const n of [1, 2, 3]) assert.equal(await server.services.blobs.stat(partKey(server.admin.orgId, probe.id, n)), undefined);
    });

    it('removes a part that was still streaming when its pull timed out, and refuses it', async () => {
      const answer = admin({ file: '/var/log/syslog' });
      const probe = await next('fs_file_probe');
      socket.send({ method: 'fs_file_probe_reply', id: probe.id, status: 0, size: 12 * MiB });
      const { upload_urls: urls } = await next('fs_file_download');
      const body = new PassThrough();
      const upload = fetch(urls[0], { method: 'PUT', body: Readable.toWeb(body) as ReadableStream, duplex: 'half' } as RequestInit);
      body.write(Buffer.alloc(MiB));
      // Once the part streams into blob storage, past the checks made before.
      const streaming = join(server.data, 'blobs', '.tmp');
      await eventually(async () => (existsSync(streaming) ? readdirSync(streaming).filter((name) => name.endsWith('.tmp')).length : 0), (count) => count > 0, 'the part streaming');
      assert.equal(await server.services.filePulls.sweepTimeouts(Date.now() + 601 * 1000), 1);
      assert.deepEqual((await answer).body, { status: -1, url: '' });
      body.end(Buffer.alloc(MiB));
      const refused = await upload;
      assert.equal(refused.status, 409);
      assert.match(((await refused.json()) as { error: string }).error, /failed: it takes no upload/);
      assert.equal(await server.services.blobs.stat(partKey(server.admin.orgId, probe.id, 1)), undefined);
    });

    it('refuses a device without filesystem, an offline one, viewers, other organizations, no token and a bad body', async () => {
      const { socket: plain } = await connected(server, '02:00:00:00:0f:03', { shell: true });
      const plainPath = `/api/v2/devices/${await ids().number('device', await deviceIdOf(server, '02:00:00:00:0f:03'))}/fs/file`;
      const without = await admin({ file: '/etc/hostname' }, plainPath);
      assert.equal(without.status, 409);
      assert.ok(without.body.error);
      plain.close();

      const { socket: gone } = await connected(server, '02:00:00:00:0f:04', { filesystem: true });
      const goneId = await deviceIdOf(server, '02:00:00:00:0f:04');
      gone.close();
      await eventually(async () => (await server.services.store.db.selectFrom('devices').select('connected_node').where('id', '=', goneId).executeTakeFirst())?.connected_node, (node) => node === null, 'the device offline');
      const offline = await admin({ file: '/etc/hostname' }, `/api/v2/devices/${await ids().number('device', goneId)}/fs/file`);
      assert.equal(offline.status, 503);
      assert.ok(offline.body.error);

      const viewer = (await memberWithRole(server, server.admin.orgId, 'viewer@example.com', 'viewer')).token;
      const asViewer = await rdfmCall(server, viewer, 'POST', path, { file: '/etc/hostname' });
      assert.equal(asViewer.status, 403);
      assert.ok(asViewer.body.error);
      const other = await otherOrganization(server, 'other');
      assert.equal((await rdfmCall(server, other.key, 'POST', path, { file: '/etc/hostname' })).status, 404);
      const anonymous = await rdfmCall(server, undefined, 'POST', path, { file: '/etc/hostname' });
      assert.equal(anonymous.status, 401);
      assert.ok(anonymous.body.error);
      const bad = await admin({ path: '/etc/hostname' });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error, /^schema validation failed/);
      assert.equal((await admin({ file: '/etc/hostname' }, '/api/v2/devices/999999/fs/file')).status, 404);
      assert.equal(socket.frames.filter((f) => f.method === 'fs_file_probe').length, 0);
    });
  });
}

/** Admits the RDFM device `mac` and connects it with `capabilities`. */
async function connected(server: TestServer, mac: string, capabilities: Record<string, boolean>): Promise<{ socket: RdfmSocket }> {
  const { device } = await admitRdfmDevice(server, mac);
  const socket = await connectRdfmDevice(device, capabilities);
  // The report is stored once the hub has the device online.
  await eventually(
    async () => (await server.services.store.db.selectFrom('devices').select(['capabilities', 'connected_node']).where('external_id', '=', mac).executeTakeFirst()) ?? null,
    (row) => row !== null && row.connected_node !== null && JSON.stringify(row.capabilities).includes(Object.keys(capabilities)[0]!),
    'the capability report',
  );
  return { socket };
}

async function deviceIdOf(server: TestServer, mac: string): Promise<string> {
  return (await server.services.store.db.selectFrom('devices').select('id').where('external_id', '=', mac).executeTakeFirstOrThrow()).id;
}
