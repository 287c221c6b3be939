import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { startRelayCompat, type RelayCompat } from '../../../src/adapters/relay/compat.ts';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { eventually, refusal } from '../../hub/websocket-harness.ts';
import { presence, relayDevice, RelayClient, relayUrl } from './harness.ts';

/**
 * A Paikea device as its firmware behaves: it dials ws://<server>:7777/<IAM> without credentials,
 * sends its state first, answers commands with a few frames, and sends its state after every frame.
 */
class PaikeaDevice {
  readonly received: string[] = [];
  readonly state: Record<string, unknown>;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket, iam: string) {
    this.state = { iam, dev: 'buoy', 'batt/main_v': 0, 'rb/enabled': false, 'gps/enabled': false, 'lora/enabled': false };
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data) => this.handle(data.toString()));
  }

  static connect(port: number, iam: string): Promise<PaikeaDevice> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/${iam}`, { headers: { origin: 'http://localhost' } });
      const device = new PaikeaDevice(ws, iam);
      ws.once('open', () => {
        device.send(device.state);
        resolve(device);
      });
      ws.once('error', reject);
    });
  }

  private send(frame: unknown): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private handle(text: string): void {
    this.received.push(text);
    let command: unknown;
    try {
      command = JSON.parse(text);
    } catch (error) {
      for (const frame of [{ error: 'Malformed Request' }, { error: text }, { error: String(error) }]) this.send(frame);
    }
    if (Array.isArray(command) && command[0] === 'GET' && command[1] === 'wifi') {
      for (const frame of [{ info: 'Scanning' }, { 'wifi/ssid': 'home' }, { info: 'Done' }]) this.send(frame);
    }
    this.send(this.state);
  }
}

for (const backend of await backends()) {
  describe(`Paikea-compatible relay listener [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let compat: RelayCompat;
    let org: string;
    let operator: string;
    let logDir: string;
    const open: Array<{ ws: WebSocket }> = [];
    const pageUrl = (channel: string) => `ws://127.0.0.1:${compat.pagePort}/${channel}`;
    const devicePage = async (channel: string, expected: 'online' | 'offline') => {
      const page = await RelayClient.open(pageUrl(channel), operator, 'query');
      open.push(page);
      assert.deepEqual(JSON.parse((await page.frame(1)).data as string), presence(expected, channel));
      return page;
    };
    const paikea = async (iam: string) => {
      const device = await PaikeaDevice.connect(compat.devicePort, iam);
      open.push(device);
      return device;
    };
    const pending = async (externalId: string) => {
      let id: string | undefined;
      await eventually(async () => {
        const list = await request(server.url, 'GET', `/api/orgs/${org}/pending-devices`, { token: server.admin.token });
        id = list.body.items.find((p: { externalId: string }) => p.externalId === externalId)?.id;
        return id !== undefined;
      }, 5000, `${externalId} waiting`);
      return id!;
    };

    before(async () => {
      logDir = mkdtempSync(join(tmpdir(), 'fleetd-relay-compat-'));
      // relayCompat stays off: the test starts the listener itself to learn its ports.
      server = await startTestServer(backend, { relayCompatDevicePort: '0', relayCompatPagePort: '0', messageLog: join(logDir, 'messages.log') });
      compat = await startRelayCompat(server.server.hub);
      org = server.admin.orgId;
      operator = (await memberWithRole(server, org, 'compat-operator@example.com', 'operator')).token;
    });
    after(async () => {
      for (const c of open) c.ws.terminate();
      await compat?.close();
      await server?.close();
      if (logDir) rmSync(logDir, { recursive: true, force: true });
    });

    it('relays between an unchanged Paikea device and a page, the channel being the path', async () => {
      await relayDevice(server, org, 'buoy01');
      const page = await devicePage('buoy01', 'offline');
      const apiPage = await RelayClient.open(relayUrl(server.url, 'buoy01'), operator);
      open.push(apiPage);
      await apiPage.frame(1);
      const device = await paikea('buoy01');
      const state = JSON.stringify(device.state);
      for (const p of [page, apiPage]) {
        await p.sees(presence('online', 'buoy01'));
        await p.sees(state);
      }
      page.send('["GET","wifi",[]]');
      await page.sees('{"wifi/ssid":"home"}');
      await apiPage.sees('{"wifi/ssid":"home"}');
      await eventually(() => page.texts.filter((t) => t === state).length === 2, 5000, 'the state echoed after the command');
      assert.deepEqual(device.received, ['["GET","wifi",[]]']);
    });

    it('keeps an unknown device waiting and relays nothing of it until an admin accepts it', async () => {
      const device = await paikea('newbuoy');
      const pendingId = await pending('newbuoy');
      assert.equal((await refusal(pageUrl('newbuoy'), [], { headers: { authorization: `Bearer ${operator}` } })).status, 404, 'no channel before it is a device');
      const logged = () => (existsSync(join(logDir, 'messages.log')) ? readFileSync(join(logDir, 'messages.log'), 'utf8') : '');
      assert.ok(!logged().includes(' newbuoy/ '), 'its state went nowhere');

      const accepted = await request(server.url, 'POST', `/api/orgs/${org}/pending-devices/${pendingId}/accept`, { token: server.admin.token, body: { name: 'New buoy' } });
      assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
      assert.equal(accepted.body.externalId, 'newbuoy');
      // The decision reaches the waiting connection over the bus.
      await eventually(async () => (await request(server.url, 'GET', `/api/orgs/${org}/devices/${accepted.body.id}`, { token: server.admin.token })).body.online, 5000, 'online');
      const page = await devicePage('newbuoy', 'online');
      page.send('["CMD","start_gps",[]]');
      await page.sees(JSON.stringify(device.state));
      assert.deepEqual(device.received, ['["CMD","start_gps",[]]']);
    });

    it('closes a denied device with 4010, and at once when it comes back', async () => {
      const device = await paikea('badbuoy');
      const pendingId = await pending('badbuoy');
      assert.equal((await request(server.url, 'POST', `/api/orgs/${org}/pending-devices/${pendingId}/deny`, { token: server.admin.token })).status, 200);
      assert.equal((await device.closed).code, 4010);
      const again = await paikea('badbuoy');
      assert.equal((await again.closed).code, 4010);
    });

    it('takes a device key instead of admission, for its own channel of the relay organization only', async () => {
      const keyed = await relayDevice(server, org, 'keyed01');
      const elsewhere = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug: 'compat-elsewhere', name: 'Elsewhere' } });
      const foreign = await relayDevice(server, elsewhere.body.id, 'foreign01');
      const deviceUrl = (channel: string) => `ws://127.0.0.1:${compat.devicePort}/${channel}`;
      const withKey = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
      assert.equal((await refusal(deviceUrl('foreign01'), [], withKey(foreign.key))).status, 403, 'a device of another organization');
      assert.equal((await refusal(deviceUrl('keyed02'), [], withKey(keyed.key))).status, 403, 'another channel');
      assert.equal((await refusal(deviceUrl('keyed01'), [], withKey(operator))).status, 403, 'a user on the device port');
      const page = await devicePage('keyed01', 'offline');
      const device = await RelayClient.open(deviceUrl('keyed01'), keyed.key);
      open.push(device);
      await page.sees(presence('online', 'keyed01'));
      assert.equal((await refusal(pageUrl('foreign01'), [], withKey(operator))).status, 404, "another organization's channel");
    });

    it('asks pages for credentials, as the main endpoint does', async () => {
      await relayDevice(server, org, 'buoy02');
      assert.equal((await refusal(pageUrl('buoy02'))).status, 401);
      const viewer = await memberWithRole(server, org, 'compat-viewer@example.com', 'viewer');
      const watcher = await RelayClient.open(pageUrl('buoy02'), viewer.token, 'query');
      open.push(watcher);
      await watcher.frame(1);
      watcher.send('["CMD","reset",[]]');
      await watcher.sees({ error: 'not allowed to send to this device' });
    });

    it('answers plain HTTP requests with 426', async () => {
      for (const port of [compat.devicePort, compat.pagePort]) {
        const reply = await fetch(`http://127.0.0.1:${port}/buoy01`);
        assert.equal(reply.status, 426);
        assert.equal(((await reply.json()) as { error: { code: string } }).error.code, 'bad_request');
      }
    });
  });
}
