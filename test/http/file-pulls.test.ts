import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connectDevice, registerDevice, waitOnline, type DeviceBehaviour, type RegisteredDevice } from '../adapters/shell/harness.ts';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../hub/websocket-harness.ts';

/** Files pulled from a device into blob storage: the device is told, uploads with its own key, an admin downloads. */

const maxFilePullSize = 256 * 1024;

/** What a device sends for a pull: the bytes, or why it cannot. */
/** What the simulated device sends: bytes (`chunked`: without a length, as a stream), or why it cannot. */
type Upload = { bytes: Buffer; chunked?: boolean } | { failure: string };

for (const backend of await backends()) {
  describe(`file pulls [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    const admin = () => ({ token: server.admin.token });
    /** Uploads the device made, by pull id: the status of its PUT or failure report. */
    const answered = new Map<string, number>();
    /** A device that answers Fleetd.UploadFile at once, then sends what `upload` says for the path. */
    const uploader = (device: RegisteredDevice, upload: (path: string) => Upload): DeviceBehaviour => ({
      onUploadFile(params) {
        const what = upload(String(params.path));
        const url = String(params.url);
        setTimeout(() => {
          const sent =
            'bytes' in what
              ? fetch(url, {
                  method: 'PUT',
                  headers: { authorization: `Bearer ${device.key}`, 'content-type': 'application/octet-stream' },
                  body: what.chunked ? (Readable.toWeb(Readable.from([what.bytes])) as ReadableStream) : what.bytes,
                  duplex: 'half',
                } as RequestInit)
              : fetch(`${url}/failure`, { method: 'POST', headers: { authorization: `Bearer ${device.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ error: what.failure }) });
          void sent.then(
            (response) => answered.set(String(params.pullId), response.status),
            () => answered.set(String(params.pullId), -1),
          );
        }, 10);
        return { result: {} };
      },
    });
    const pull = (deviceId: string, path: string, token = server.admin.token) => request(server.url, 'POST', `/api/orgs/${org}/devices/${deviceId}/file-pulls`, { token, body: { path } });
    const pullOf = async (id: string) => (await request(server.url, 'GET', `/api/orgs/${org}/file-pulls/${id}`, admin())).body;
    const finished = async (id: string) => {
      await eventually(async () => ['done', 'failed'].includes((await pullOf(id)).status), 5000, `pull ${id} finished`);
      return pullOf(id);
    };
    const download = (id: string, headers: Record<string, string> = {}, token = server.admin.token) =>
      fetch(`${server.url}/api/orgs/${org}/file-pulls/${id}/content`, { headers: { authorization: `Bearer ${token}`, ...headers } });

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off', maxFilePullSize: String(maxFilePullSize) });
      org = server.admin.orgId;
    });
    after(async () => {
      await server?.close();
    });

    it('pulls a file into blob storage, with its size and SHA-256, and serves it whole or by range', async () => {
      const content = randomBytes(100_000);
      const device = await registerDevice(server, org, 'pull-1');
      const { simulator } = await connectDevice(server, server, org, device, uploader(device, () => ({ bytes: content })));
      const asked = await pull(device.id, '/var/log/messages');
      assert.equal(asked.status, 202, JSON.stringify(asked.body));
      assert.equal(asked.body.status, 'pending');
      const call = await simulator.request('Fleetd.UploadFile');
      assert.deepEqual(call.params, { pullId: asked.body.id, path: '/var/log/messages', url: `${server.url}/api/devices/file-pulls/${asked.body.id}/content` });
      const done = await finished(asked.body.id);
      assert.equal(done.status, 'done');
      assert.equal(done.size, content.length);
      assert.equal(done.sha256, createHash('sha256').update(content).digest('hex'));

      const whole = await download(done.id);
      assert.equal(whole.status, 200);
      assert.ok(Buffer.from(await whole.arrayBuffer()).equals(content));
      assert.equal(whole.headers.get('etag'), `"${done.sha256}"`);
      assert.match(whole.headers.get('content-disposition') ?? '', /filename="messages"/);
      const part = await download(done.id, { range: 'bytes=1000-1999' });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${content.length}`);
      assert.ok(Buffer.from(await part.arrayBuffer()).equals(content.subarray(1000, 2000)));
      const tail = await download(done.id, { range: 'bytes=-10' });
      assert.ok(Buffer.from(await tail.arrayBuffer()).equals(content.subarray(-10)));
      assert.equal((await download(done.id, { range: `bytes=${content.length}-` })).status, 416);

      const again = await fetch(`${server.url}/api/devices/file-pulls/${done.id}/content`, { method: 'PUT', headers: { authorization: `Bearer ${device.key}` }, body: 'more' });
      assert.equal(again.status, 409, 'a pull takes one upload');
      const audit = await request(server.url, 'GET', `/api/orgs/${org}/audit?action=device.file_pull`, admin());
      assert.equal(audit.body.items.at(-1).details.pullId, done.id);
      await simulator.close();
    });

    it('refuses a file above maxFilePullSize (413) and keeps nothing of it; stores what the device says when it cannot send', async () => {
      const device = await registerDevice(server, org, 'pull-2');
      const big = randomBytes(maxFilePullSize + 1);
      const uploads: Record<string, Upload> = { '/big': { bytes: big }, '/big-chunked': { bytes: big, chunked: true } };
      const { simulator } = await connectDevice(server, server, org, device, uploader(device, (path) => uploads[path] ?? { failure: 'no such file' }));
      // With a Content-Length above the limit, and sent without one: cut off as it streams past the limit, still answered.
      for (const path of Object.keys(uploads)) {
        const tooBig = await pull(device.id, path);
        const failed = await finished(tooBig.body.id);
        assert.equal(failed.status, 'failed');
        assert.equal(failed.error, 'the file is too large');
        await eventually(() => answered.get(tooBig.body.id) === 413, 5000, `the 413 for ${path}`);
        assert.equal((await download(tooBig.body.id)).status, 409, 'no file to download');
        assert.equal(await server.services.blobs.stat(`pulls/${org}/${tooBig.body.id}`), undefined, 'nothing stored for the refused upload');
      }

      const missing = await pull(device.id, '/nope');
      const reported = await finished(missing.body.id);
      assert.equal(reported.status, 'failed');
      assert.equal(reported.error, 'no such file');
      assert.equal(answered.get(missing.body.id), 200);
      await simulator.close();
    });

    it('fails a pull whose device never starts its upload, filePullTimeout after the request; the device may not upload it then', async () => {
      const device = await registerDevice(server, org, 'pull-silent');
      const { simulator } = await connectDevice(server, server, org, device, { onUploadFile: () => ({ result: {} }) });
      const asked = await pull(device.id, '/etc/hostname');
      assert.equal(asked.status, 202, JSON.stringify(asked.body));
      const filePullTimeoutMs = 600_000;
      assert.equal(await server.services.filePulls.sweepTimeouts(Date.now()), 0, 'not before its time');
      assert.equal(await server.services.filePulls.sweepTimeouts(Date.now() + filePullTimeoutMs + 1000), 1);
      const failed = await pullOf(asked.body.id);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error, 'the device sent no file within 600 s');
      const late = await fetch(`${server.url}/api/devices/file-pulls/${asked.body.id}/content`, { method: 'PUT', headers: { authorization: `Bearer ${device.key}` }, body: 'late' });
      assert.equal(late.status, 409);
      await simulator.close();
    });

    it('refuses pulls by role, organization, capability and presence; only the device uploads its own pull', async () => {
      const device = await registerDevice(server, org, 'pull-3');
      const { simulator } = await connectDevice(server, server, org, device, { onUploadFile: () => ({ result: {} }) });
      for (const role of ['viewer', 'operator'] as const) {
        const member = await memberWithRole(server, org, `pull-${role}@example.com`, role);
        assert.equal((await pull(device.id, '/etc/passwd', member.token)).status, 403, role);
      }
      const elsewhere = await request(server.url, 'POST', '/api/orgs', { ...admin(), body: { slug: 'pulls-elsewhere', name: 'Elsewhere' } });
      const outsider = await memberWithRole(server, elsewhere.body.id, 'pull-outsider@example.com', 'admin');
      assert.equal((await pull(device.id, '/etc/passwd', outsider.token)).status, 404);
      const revoked = await request(server.url, 'POST', `/api/orgs/${org}/api-keys`, { ...admin(), body: { name: 'pull admin key', role: 'admin' } });
      await request(server.url, 'DELETE', `/api/orgs/${org}/api-keys/${revoked.body.id}`, admin());
      assert.equal((await pull(device.id, '/etc/passwd', revoked.body.key)).status, 401);
      assert.equal((await pull(device.id, '/etc/passwd', device.key)).status, 404, 'a device pulls nothing, not even from itself');
      for (const body of [{}, { path: '' }, { path: 7 }, { path: '/x', extra: 1 }]) {
        const refused = await request(server.url, 'POST', `/api/orgs/${org}/devices/${device.id}/file-pulls`, { ...admin(), body });
        assert.equal(refused.status, 400, JSON.stringify(body));
      }

      const asked = await pull(device.id, '/etc/hostname');
      assert.equal(asked.status, 202);
      const url = `${server.url}/api/devices/file-pulls/${asked.body.id}/content`;
      const other = await registerDevice(server, org, 'pull-4');
      assert.equal((await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${other.key}` }, body: 'x' })).status, 403, "another device's pull");
      assert.equal((await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${server.admin.token}` }, body: 'x' })).status, 403, 'people upload nothing');
      assert.equal((await fetch(url, { method: 'PUT', body: 'x' })).status, 401);
      assert.equal((await fetch(`${server.url}/api/devices/file-pulls/pull_unknown/content`, { method: 'PUT', headers: { authorization: `Bearer ${device.key}` }, body: 'x' })).status, 404);
      const failure = (body: unknown, key = device.key) => request(server.url, 'POST', `/api/devices/file-pulls/${asked.body.id}/content/failure`, { token: key, body });
      assert.equal((await failure({ error: '' })).status, 400);
      assert.equal((await failure({ error: 'x' }, other.key)).status, 403);
      assert.equal((await pullOf(asked.body.id)).status, 'pending', 'nothing changed');
      const uploaded = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${device.key}`, 'content-type': 'application/json' }, body: '{"not":"parsed"}' });
      assert.equal(uploaded.status, 200, 'any content type is taken as bytes');
      assert.equal((await download(asked.body.id)).status, 200);
      assert.equal(await (await download(asked.body.id)).text(), '{"not":"parsed"}');
      assert.equal((await download(asked.body.id, {}, outsider.token)).status, 404, "another organization cannot read the pull");
      assert.equal((await request(server.url, 'GET', `/api/orgs/${elsewhere.body.id}/file-pulls/${asked.body.id}`, { token: outsider.token })).status, 404);

      const noFiles = await registerDevice(server, org, 'pull-5', { shell: true });
      assert.equal((await pull(noFiles.id, '/etc/hostname')).status, 409);
      await simulator.close();
      await waitOnline(server, org, device.id, false);
      const offline = await pull(device.id, '/etc/hostname');
      assert.equal(offline.status, 503);
    });
  });
}
