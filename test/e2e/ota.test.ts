import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backends, type TestDatabase } from '../helpers/backends.ts';
import { freePort, killChildren, spawnFleetd, waitFor, type Spawned } from '../helpers/process.ts';
import { login, request } from '../helpers/server.ts';

/**
 * Updates from outside: `fleetd serve` in child processes, an admin uploading packages over HTTP, a
 * device checking for updates, downloading in two ranges as a device resuming would, and reporting.
 * On PostgreSQL the upload goes to one node and the device talks to another (NATS between them),
 * as in a cluster sharing its blob storage.
 */

const email = 'admin@example.com';
const password = 'e2e-password-1';
const deviceType = 'e2e-board';

after(() => killChildren());

async function startServe(cwd: string, settings: string[]): Promise<{ serve: Spawned; base: string }> {
  const port = await freePort();
  const serve = spawnFleetd(['serve', '--host', '127.0.0.1', '--port', String(port), '--rrduino', 'false', ...settings], { cwd });
  await waitFor(
    () => serve.stderr().includes('fleetd is serving on'),
    () => `exit ${serve.child.exitCode}: ${serve.stderr()}${serve.stdout().slice(-3000)}`,
  );
  return { serve, base: `http://127.0.0.1:${port}` };
}

async function upload(base: string, token: string, version: string, content: Buffer, metadata: Record<string, string> = {}) {
  const form = new FormData();
  form.set('version', version);
  form.set('deviceType', deviceType);
  for (const [key, value] of Object.entries(metadata)) form.set(key, value);
  form.set('file', new Blob([content]), `${version}.bin`);
  const response = await fetch(`${base}/api/orgs/default/packages`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  const body = await response.json();
  assert.equal(response.status, 201, JSON.stringify(body));
  return body as { id: string; sha256: string; size: number };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

for (const backend of await backends()) {
  describe(`OTA updates end to end [${backend.name}]`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let cwd: string;
    const servers: Spawned[] = [];
    let admin: string;
    let deviceBase: string;
    let adminBase: string;

    before(async () => {
      database = await backend.create();
      cwd = mkdtempSync(join(tmpdir(), 'fleetd-e2e-ota-'));
      const settings = ['--data', join(cwd, 'data'), '--database', database.url];
      const created = spawnFleetd(['admin', 'create', email, '--org', 'default', '--password-stdin', ...settings], { cwd, input: `${password}\n` });
      assert.equal((await created.exited).code, 0, created.stderr());
      const first = await startServe(cwd, backend.name === 'postgres' ? [...settings, '--bus', 'nats://127.0.0.1:4222'] : settings);
      servers.push(first.serve);
      adminBase = first.base;
      deviceBase = first.base;
      if (backend.name === 'postgres') {
        const second = await startServe(cwd, [...settings, '--bus', 'nats://127.0.0.1:4222']);
        servers.push(second.serve);
        deviceBase = second.base;
      }
      admin = (await login(adminBase, email, password)).accessToken;
    });

    after(async () => {
      for (const serve of servers) {
        serve.child.kill('SIGTERM');
        await serve.exited;
      }
      await database?.drop();
      if (cwd) rmSync(cwd, { recursive: true, force: true });
    });

    it('takes a device from v1 through a full package and a delta, each downloaded in two ranges', async () => {
      const full = randomBytes(3 * 1024 * 1024 + 17);
      const delta = randomBytes(64 * 1024);
      const v2 = await upload(adminBase, admin, 'v2', full);
      const v3 = await upload(adminBase, admin, 'v3', delta, { 'requires:version': 'v2' });
      assert.equal(v2.sha256, sha256(full));
      assert.equal(v2.size, full.length);

      const device = (await request(adminBase, 'POST', '/api/orgs/default/devices', { token: admin, body: { name: 'e2e-device' } })).body;
      const deviceKey = (await request(adminBase, 'POST', '/api/orgs/default/api-keys', { token: admin, body: { name: 'e2e-device', deviceId: device.id } })).body.key as string;
      const group = (await request(adminBase, 'POST', '/api/orgs/default/groups', { token: admin, body: { name: 'e2e-group' } })).body;
      assert.equal((await request(adminBase, 'POST', `/api/orgs/default/groups/${group.id}/members`, { token: admin, body: { deviceIds: [device.id] } })).status, 200);
      const policy = await request(adminBase, 'PUT', `/api/orgs/default/groups/${group.id}/update-policy`, { token: admin, body: { policy: 'exact_match', targetVersion: 'v3' } });
      assert.equal(policy.status, 200, JSON.stringify(policy.body));

      const check = (version: string) => request(deviceBase, 'POST', '/api/devices/self/update-check', { token: deviceKey, body: { version, deviceType } });
      const report = async (body: Record<string, unknown>) => {
        const reply = await request(deviceBase, 'POST', '/api/devices/self/update-status', { token: deviceKey, body });
        assert.equal(reply.status, 204, JSON.stringify(reply.body));
      };
      const fetchInTwoRanges = async (url: string, size: number) => {
        const cut = Math.floor(size / 3);
        const head = await fetch(url, { headers: { range: `bytes=0-${cut - 1}` } });
        assert.equal(head.status, 206);
        assert.equal(head.headers.get('content-range'), `bytes 0-${cut - 1}/${size}`);
        const tail = await fetch(url, { headers: { range: `bytes=${cut}-` } });
        assert.equal(tail.status, 206);
        return Buffer.concat([Buffer.from(await head.arrayBuffer()), Buffer.from(await tail.arrayBuffer())]);
      };

      // On v1 the delta cannot apply: the first hop is the full package.
      const first = await check('v1');
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.body.packageId, v2.id);
      assert.equal(first.body.sha256, v2.sha256);
      await report({ status: 'downloading', progress: 0 });
      assert.equal(sha256(await fetchInTwoRanges(first.body.url, full.length)), v2.sha256);
      await report({ status: 'installing', progress: 100 });
      await report({ status: 'success', version: 'v2' });

      const second = await check('v2');
      assert.equal(second.status, 200, JSON.stringify(second.body));
      assert.equal(second.body.packageId, v3.id);
      assert.equal(sha256(await fetchInTwoRanges(second.body.url, delta.length)), v3.sha256);
      await report({ status: 'success', version: 'v3' });

      assert.equal((await check('v3')).status, 204);
      const { body: seen } = await request(adminBase, 'GET', `/api/orgs/default/devices/${device.id}`, { token: admin });
      assert.equal(seen.firmware, 'v3');
    });

    it('keeps a package a group lists, and another organization out of it', async () => {
      const only = await upload(adminBase, admin, 'v9', randomBytes(1024));
      const group = (await request(adminBase, 'POST', '/api/orgs/default/groups', { token: admin, body: { name: 'pinned' } })).body;
      assert.equal((await request(adminBase, 'PUT', `/api/orgs/default/groups/${group.id}/packages`, { token: admin, body: { packageIds: [only.id] } })).status, 200);
      assert.equal((await request(deviceBase, 'DELETE', `/api/orgs/default/packages/${only.id}`, { token: admin })).status, 409);

      const other = (await request(adminBase, 'POST', '/api/orgs', { token: admin, body: { slug: 'other', name: 'Other' } })).body;
      const stranger = (await request(adminBase, 'POST', `/api/orgs/${other.id}/devices`, { token: admin, body: { name: 'stranger' } })).body;
      const strangerKey = (await request(adminBase, 'POST', `/api/orgs/${other.id}/api-keys`, { token: admin, body: { name: 'stranger', deviceId: stranger.id } })).body.key as string;
      assert.equal((await request(deviceBase, 'GET', `/api/orgs/default/packages/${only.id}`, { token: strangerKey })).status, 404);
      assert.equal((await request(deviceBase, 'GET', `/api/orgs/default/packages/${only.id}/content`, { token: strangerKey })).status, 404);

      assert.equal((await request(adminBase, 'PUT', `/api/orgs/default/groups/${group.id}/packages`, { token: admin, body: { packageIds: [] } })).status, 200);
      assert.equal((await request(deviceBase, 'DELETE', `/api/orgs/default/packages/${only.id}`, { token: admin })).status, 204);
    });
  });
}
