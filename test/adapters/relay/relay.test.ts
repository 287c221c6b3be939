import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { relayChannels } from '../../../src/adapters/relay/channels.ts';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { eventually, refusal } from '../../hub/websocket-harness.ts';
import { isOnline, presence, relayDevice, RelayClient, relayUrl, userKey } from './harness.ts';

for (const backend of await backends()) {
  describe(`relay between a device and its pages [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let logDir: string;
    let operator: string;
    const url = (channel: string) => relayUrl(server.url, channel);
    const open: RelayClient[] = [];
    const client = async (channel: string, token?: string, how?: 'header' | 'query' | 'protocol') => {
      const c = await RelayClient.open(url(channel), token, how);
      open.push(c);
      return c;
    };
    /** A page that has heard the channel's presence, so that it hears what follows. */
    const page = async (channel: string, token: string, expected: 'online' | 'offline', how?: 'header' | 'query' | 'protocol') => {
      const c = await client(channel, token, how);
      assert.deepEqual(JSON.parse((await c.frame(1)).data as string), presence(expected, channel), 'the first frame is the presence');
      return c;
    };

    before(async () => {
      logDir = mkdtempSync(join(tmpdir(), 'fleetd-relay-log-'));
      server = await startTestServer(backend, { messageLog: join(logDir, 'messages.log') });
      org = server.admin.orgId;
      operator = (await memberWithRole(server, org, 'relay-operator@example.com', 'operator')).token;
    });
    after(async () => {
      for (const c of open) c.ws.terminate();
      await server?.close();
      if (logDir) rmSync(logDir, { recursive: true, force: true });
    });

    it('fans each device frame out to every page, text as text and binary as binary', async () => {
      const device = await relayDevice(server, org, 'buoy01');
      const pages = await Promise.all([page('buoy01', operator, 'offline'), page('buoy01', server.admin.token, 'offline', 'query'), page('buoy01', operator, 'offline', 'protocol')]);
      const buoy = await client('buoy01', device.key);
      for (const p of pages) await p.sees(presence('online', 'buoy01'));
      const metrics = (await (await fetch(`${server.url}/metrics`)).text()).split('\n');
      assert.ok(metrics.includes('fleetd_connected_devices{endpoint="relay"} 1'), 'the device side counts as a device');
      assert.ok(metrics.includes('fleetd_connected_clients{endpoint="relay"} 3'), 'pages count as clients');
      const state = '{"iam": "buoy01", "dev": "buoy", "batt/main_v": 0, "rb/enabled": false}';
      buoy.send(state);
      buoy.send(Buffer.from([0, 1, 2, 0xff]));
      for (const p of pages) {
        const text = await p.frame(3);
        assert.deepEqual(text, { data: state, binary: false });
        const binary = await p.frame(4);
        assert.equal(binary.binary, true);
        assert.deepEqual([...(binary.data as Buffer)], [0, 1, 2, 0xff]);
      }
    });

    it('hands page frames to the device byte for byte', async () => {
      const device = await relayDevice(server, org, 'buoy02');
      const buoy = await client('buoy02', device.key);
      const watcher = await page('buoy02', operator, 'online');
      const frames = ['["GET","wifi",[]]', '[ "CMD" , "hal" ,[] ]', 'not json at all', '{"wifi/stored/ok", "True"}', '"é ✓ 😀"', ''];
      for (const frame of frames) watcher.send(frame);
      watcher.send(Buffer.from('binary\u0000bytes'));
      await buoy.frame(frames.length + 1);
      assert.deepEqual(buoy.texts, frames);
      assert.equal(buoy.received.at(-1)!.binary, true);
      assert.equal((buoy.received.at(-1)!.data as Buffer).toString(), 'binary\u0000bytes');
      assert.equal(watcher.received.length, 1, 'the page hears nothing back but the presence');
    });

    it('tells a page when the device is not connected, instead of dropping its frame', async () => {
      await relayDevice(server, org, 'buoy03');
      const watcher = await page('buoy03', operator, 'offline');
      watcher.send('["CMD","reset",[]]');
      await watcher.sees({ error: 'device offline' });
    });

    it('tells pages when the device comes and goes; a page that joins hears the current presence first', async () => {
      const device = await relayDevice(server, org, 'buoy04');
      const early = await page('buoy04', operator, 'offline');
      const buoy = await client('buoy04', device.key);
      await early.sees(presence('online', 'buoy04'));
      const late = await page('buoy04', operator, 'online');
      buoy.close();
      await buoy.closed;
      for (const p of [early, late]) await p.sees(presence('offline', 'buoy04'));
      await eventually(async () => !(await isOnline(server, org, device.id)), 5000, 'the registry to say offline');
    });

    it('replaces an older connection of the device without losing the newer one (Paikea eviction race)', async () => {
      const device = await relayDevice(server, org, 'buoy05');
      const watcher = await page('buoy05', operator, 'offline');
      const first = await client('buoy05', device.key);
      await watcher.sees(presence('online', 'buoy05'));
      const second = await client('buoy05', device.key);
      assert.equal((await first.closed).code, 4000);
      // The first connection's close handling has run on the server by now: the device is still here.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(await isOnline(server, org, device.id), true);
      watcher.send('["GET","wifi",[]]');
      await second.sees('["GET","wifi",[]]');
      assert.deepEqual(first.texts, []);
      second.send('{"info": "Done"}');
      await watcher.sees('{"info": "Done"}');
      const said = (state: 'online' | 'offline') => JSON.stringify(presence(state, 'buoy05'));
      assert.deepEqual(watcher.texts, [said('offline'), said('online'), '{"info": "Done"}'], 'pages never saw it go offline');
    });

    it('lets viewers watch but not send', async () => {
      const device = await relayDevice(server, org, 'buoy06');
      const buoy = await client('buoy06', device.key);
      const viewer = await memberWithRole(server, org, 'relay-viewer@example.com', 'viewer');
      const viewerKey = await userKey(server, org, 'viewer');
      for (const token of [viewer.token, viewerKey.key]) {
        const watcher = await page('buoy06', token, 'online');
        buoy.send('{"batt/main_v": 3.91}');
        await watcher.sees('{"batt/main_v": 3.91}');
        watcher.send('["CMD","reset",[]]');
        await watcher.sees({ error: 'not allowed to send to this device' });
      }
      const operatorKey = await userKey(server, org, 'operator');
      const controller = await page('buoy06', operatorKey.key, 'online');
      controller.send('["CMD","start_gps",[]]');
      await buoy.sees('["CMD","start_gps",[]]');
      assert.deepEqual(buoy.texts, ['["CMD","start_gps",[]]'], 'the viewers reached nothing');
    });

    it('refuses credentials that do not fit the channel', async () => {
      const device = await relayDevice(server, org, 'buoy07');
      const other = await relayDevice(server, org, 'buoy08');
      const elsewhere = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug: 'relay-elsewhere', name: 'Elsewhere' } });
      const foreign = await relayDevice(server, elsewhere.body.id, 'far01');
      const outsider = await memberWithRole(server, elsewhere.body.id, 'relay-outsider@example.com', 'owner');
      const withToken = (token?: string) => (token ? { headers: { authorization: `Bearer ${token}` } } : {});

      assert.equal((await refusal(url('buoy07'))).status, 401, 'no credentials');
      assert.equal((await refusal(url('buoy07'), [], withToken('fk_nope_nope'))).status, 401, 'no such key');
      assert.equal((await refusal(url('buoy07'), [], withToken(other.key))).status, 403, "another device's channel");
      assert.equal((await refusal(url('far01'), [], withToken(device.key))).status, 403, "another organization's device's channel");
      assert.equal((await refusal(url('far01'), [], withToken(operator))).status, 404, "another organization's channel");
      assert.equal((await refusal(url('buoy07'), [], withToken(outsider.token))).status, 404, 'a member of another organization');
      assert.equal((await refusal(url('nobody'), [], withToken(operator))).status, 404, 'a channel of no device');
      await client('far01', foreign.key);

      assert.equal((await request(server.url, 'DELETE', `/api/orgs/${org}/api-keys/${device.keyId}`, { token: server.admin.token })).status, 200);
      assert.equal((await refusal(url('buoy07'), [], withToken(device.key))).status, 401, 'a revoked key');
    });

    it('lets a device without an external id claim a free channel name, once', async () => {
      const unnamed = await relayDevice(server, org, undefined, 'unnamed');
      await relayDevice(server, org, 'buoy09');
      assert.equal((await refusal(url('buoy09'), [], { headers: { authorization: `Bearer ${unnamed.key}` } })).status, 403, 'a name another device has');
      const claimed = await client('fresh01', unnamed.key);
      const device = await request(server.url, 'GET', `/api/orgs/${org}/devices/${unnamed.id}`, { token: server.admin.token });
      assert.equal(device.body.externalId, 'fresh01');
      claimed.close();
      await claimed.closed;
      assert.equal((await refusal(url('fresh02'), [], { headers: { authorization: `Bearer ${unnamed.key}` } })).status, 403, 'one name per device');
    });

    it('writes every routed frame to the message log, without secrets', async () => {
      const device = await relayDevice(server, org, 'buoy10');
      const buoy = await client('buoy10', device.key);
      const watcher = await page('buoy10', operator, 'online');
      watcher.send('["CMD","store_new_sta",["home","hunter2"]]');
      await buoy.frame(1);
      buoy.send('{"wifi/stored/ok", "True"}');
      await watcher.sees('{"wifi/stored/ok", "True"}');
      const path = join(logDir, 'messages.log');
      const lines = () => readFileSync(path, 'utf8').split('\n').filter((l) => l.includes(' buoy10/ '));
      await eventually(() => lines().length >= 2, 5000, 'the log lines');
      assert.match(lines()[0]!, /^\d{4}-\d\d-\d\dT\S+Z relay < buoy10\/ \["CMD","store_new_sta",\["\[redacted\]"\]\]$/);
      assert.match(lines()[1]!, /^\S+ relay > buoy10\/ \{"wifi\/stored\/ok", "True"\}$/);
      assert.ok(!readFileSync(path, 'utf8').includes('hunter2'));
    });

    it('forgets a channel when its last page and its device leave', async () => {
      for (const c of open.splice(0)) {
        c.close();
        await c.closed;
      }
      await eventually(() => relayChannels(server.server.hub).size === 0, 5000, 'no channel kept');
    });
  });
}
