import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { backends, type TestDatabase } from '../helpers/backends.ts';
import { freePort, killChildren, spawnFleetd, waitFor, type Spawned } from '../helpers/process.ts';
import { login, request } from '../helpers/server.ts';
import { RpcClient } from '../adapters/client/harness.ts';
import { ShellySimulator } from '../adapters/shelly/simulator.ts';

/**
 * The device hub from outside: `fleetd serve` in a child process, a simulated Shelly device on its
 * outbound WebSocket, a JSON-RPC client on /api/ws, and a relay device with its pages. Nothing here
 * reaches into the server; everything goes over the wire.
 */

const email = 'admin@example.com';
const password = 'e2e-password-1';

after(() => killChildren());

/** A WebSocket that keeps every text frame it receives. */
async function openSocket(url: string, protocols: string[] = []): Promise<{ ws: WebSocket; frames: string[]; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url, protocols);
  const frames: string[] = [];
  ws.on('message', (data) => frames.push(data.toString()));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, frames, closed };
}

for (const backend of await backends()) {
  describe(`the device hub end to end [${backend.name}]`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let cwd: string;
    let serve: Spawned;
    let base: string;
    let wsBase: string;
    let token: string;
    let client: RpcClient;
    let shelly: ShellySimulator;
    let deviceId: string;

    before(async () => {
      database = await backend.create();
      cwd = mkdtempSync(join(tmpdir(), 'fleetd-e2e-'));
      const settings = ['--data', join(cwd, 'data'), '--database', database.url];
      const created = spawnFleetd(['admin', 'create', email, '--org', 'default', '--password-stdin', ...settings], { cwd, input: `${password}\n` });
      assert.equal((await created.exited).code, 0, created.stderr());
      const port = await freePort();
      serve = spawnFleetd(['serve', '--host', '127.0.0.1', '--port', String(port), '--admission', 'manual', '--device-call-timeout', '2', '--rrduino-port', '0', ...settings], { cwd });
      await waitFor(() => serve.stderr().includes('fleetd is serving on'), () => serve.stderr() + serve.stdout());
      base = `http://127.0.0.1:${port}`;
      wsBase = `ws://127.0.0.1:${port}`;
      token = (await login(base, email, password)).accessToken;
      client = await RpcClient.open(`${wsBase}/api/ws`, token);
      await client.result('Subscribe', { org: 'default' });
    });

    after(async () => {
      client?.ws.close();
      shelly?.ws.close();
      if (serve && serve.child.exitCode === null) serve.child.kill('SIGKILL');
      await serve?.exited;
      await database?.drop();
      if (cwd) rmSync(cwd, { recursive: true, force: true });
    });

    it('parks an unknown Shelly device in the waiting room and tells the admins', async () => {
      shelly = await ShellySimulator.connect({ url: `${wsBase}/shelly?org=default` });
      await client.until(() => client.events.some((e) => e.event.name === 'admission.pending'), 'admission.pending');
      const pending = await request(base, 'GET', '/api/orgs/default/pending-devices', { token });
      assert.equal(pending.status, 200);
      assert.equal(pending.body.items.length, 1);
      assert.equal(pending.body.items[0].externalId, shelly.id);
      assert.equal(shelly.requests('Shelly.GetStatus').length, 0, 'nothing is asked of a device before it is admitted');
    });

    it('hydrates the device on the same socket once an admin accepts it', async () => {
      const pending = await request(base, 'GET', '/api/orgs/default/pending-devices', { token });
      const accepted = await request(base, 'POST', `/api/orgs/default/pending-devices/${pending.body.items[0].id}/accept`, { token, body: { tags: ['garden'] } });
      assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
      deviceId = accepted.body.id;
      await shelly.request('Shelly.GetDeviceInfo');
      await shelly.request('Shelly.GetComponents');
      await client.until(() => client.events.some((e) => e.event.name === 'device.info' && e.event.deviceId === deviceId), 'device.info');
      const { device, state } = await client.result('Device.Get', { device: shelly.id });
      assert.equal(device.id, deviceId);
      assert.equal(device.online, true);
      assert.equal(device.model, shelly.model);
      assert.deepEqual(state.reported['switch:0'], shelly.status['switch:0']);
      assert.deepEqual(state.reported['boolean:200'], { value: false }, 'dynamic components come from the GetComponents pages');
    });

    it('merges NotifyStatus and tells subscribers only what changed', async () => {
      const before = client.events.length;
      shelly.notifyStatus({ 'switch:0': { id: 0, apower: 42.5 } });
      const isStatus = (e: (typeof client.events)[number]) => e.event.name === 'device.status' && e.event.deviceId === deviceId;
      await client.until(() => client.events.slice(before).some(isStatus), 'device.status');
      assert.deepEqual(client.events.slice(before).find(isStatus)!.event.data, { changed: { 'switch:0': { apower: 42.5 } } });
      const { state } = await client.result('Device.Get', { device: deviceId });
      assert.equal(state.reported['switch:0'].apower, 42.5);
      assert.equal(state.reported['switch:0'].voltage, 230.1, 'fields the update did not name stay');
    });

    it('turns NotifyEvent entries into device notifications', async () => {
      shelly.notifyEvent([{ component: 'input:0', id: 0, event: 'single_push' }]);
      await client.until(() => client.events.some((e) => e.event.name === 'device.notification' && e.event.data.event === 'single_push'), 'single_push');
    });

    it('relays a call to the device: its result, its error, and a timeout', async () => {
      assert.deepEqual(await client.result('Device.Call', { device: deviceId, method: 'Switch.Set', params: { id: 0, on: true } }), { was_on: false });
      const failed = await client.error('Device.Call', { device: deviceId, method: 'Switch.Set', params: { id: 7, on: true } });
      assert.equal(failed.code, -32052);
      assert.equal(failed.data.code, -105);
      shelly.on('Switch.Toggle', () => 'silent');
      const late = await client.error('Device.Call', { device: deviceId, method: 'Switch.Toggle', params: { id: 0 }, timeoutMs: 300 });
      assert.equal(late.code, -32054);
    });

    it('keeps another organization out', async () => {
      const org = await request(base, 'POST', '/api/orgs', { token, body: { slug: 'other', name: 'Other' } });
      assert.equal(org.status, 201, JSON.stringify(org.body));
      const key = await request(base, 'POST', '/api/orgs/other/api-keys', { token, body: { name: 'other', role: 'admin' } });
      assert.equal(key.status, 201, JSON.stringify(key.body));
      const stranger = await RpcClient.open(`${wsBase}/api/ws`, key.body.key);
      try {
        assert.equal((await stranger.error('Device.Get', { device: deviceId })).code, -32004);
        assert.equal((await stranger.error('Device.Call', { device: shelly.id, method: 'Switch.Set', params: { id: 0, on: false } })).code, -32004);
        assert.equal((await stranger.error('Device.Get', { org: 'default', device: deviceId })).code, -32004);
        assert.deepEqual((await stranger.result('Device.List', {})).items, []);
      } finally {
        stranger.ws.close();
      }
    });

    it('relays a device channel to its pages, both sides authenticated', async () => {
      const device = await request(base, 'POST', '/api/orgs/default/devices', { token, body: { name: 'Buoy', externalId: 'buoy01' } });
      assert.equal(device.status, 201, JSON.stringify(device.body));
      const key = await request(base, 'POST', '/api/orgs/default/api-keys', { token, body: { name: 'buoy', deviceId: device.body.id } });
      assert.equal(key.status, 201, JSON.stringify(key.body));
      const buoy = await openSocket(`${wsBase}/api/relay/buoy01?token=${key.body.key}`);
      const pages = await Promise.all([1, 2].map(() => openSocket(`${wsBase}/api/relay/buoy01`, [`bearer.${token}`, 'paikea'])));
      await waitFor(() => pages.every((page) => page.frames.some((f) => f.includes('"presence":"online"'))), () => JSON.stringify(pages.map((p) => p.frames)));
      buoy.ws.send('{"batt/main_v": 3.91}');
      await waitFor(() => pages.every((page) => page.frames.includes('{"batt/main_v": 3.91}')), () => JSON.stringify(pages.map((p) => p.frames)));
      pages[0]!.ws.send('["GET","wifi",[]]');
      await waitFor(() => buoy.frames.includes('["GET","wifi",[]]'), () => JSON.stringify(buoy.frames));
      for (const socket of [buoy, ...pages]) socket.ws.close();
    });

    it('stops on SIGTERM, closing device connections as going away', async () => {
      serve.child.kill('SIGTERM');
      const closed = await shelly.closed;
      assert.equal(closed.code, 1001);
      assert.equal((await serve.exited).code, 0, serve.stderr());
    });
  });
}
