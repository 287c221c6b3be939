import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { relayChannels } from '../../../src/adapters/relay/channels.ts';
import type { RunningServer } from '../../../src/server.ts';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, request, startNode, startTestServer, type TestServer } from '../../helpers/server.ts';
import { busBackends, natsTestUrl } from '../../hub/buses.ts';
import { eventually } from '../../hub/websocket-harness.ts';
import { isOnline, presence, relayDevice, RelayClient, relayUrl } from './harness.ts';

/** The device on one node, its pages on another: frames, presence and replacement cross over NATS. */
const nats = (await busBackends()).find((b) => b.name === 'nats')!;
for (const backend of await backends()) {
  describe(`relay across nodes joined by NATS [${backend.name}]`, { skip: backend.skip ?? nats.skip }, () => {
    let first: TestServer;
    let second: RunningServer;
    let data: string;
    let org: string;
    let operator: string;
    const open: RelayClient[] = [];
    const client = async (node: { url: string }, channel: string, token: string) => {
      const c = await RelayClient.open(relayUrl(node.url, channel), token);
      open.push(c);
      return c;
    };
    const page = async (node: { url: string }, channel: string, expected: 'online' | 'offline') => {
      const c = await client(node, channel, operator);
      assert.deepEqual(JSON.parse((await c.frame(1)).data as string), presence(expected, channel));
      return c;
    };

    before(async () => {
      first = await startTestServer(backend, { bus: natsTestUrl });
      data = mkdtempSync(join(tmpdir(), 'fleetd-node-'));
      second = await startNode(first.databaseUrl, data, { bus: natsTestUrl });
      org = first.admin.orgId;
      operator = (await memberWithRole(first, org, 'cluster-operator@example.com', 'operator')).token;
    });
    after(async () => {
      for (const c of open) c.ws.terminate();
      await second?.close();
      await first?.close();
      if (data) rmSync(data, { recursive: true, force: true });
    });

    it('carries frames both ways and presence between a device on one node and pages on another', async () => {
      const device = await relayDevice(first, org, 'tracker01');
      const far = await page(second, 'tracker01', 'offline');
      const near = await page(first, 'tracker01', 'offline');
      const tracker = await client(first, 'tracker01', device.key);
      for (const p of [far, near]) await p.sees(presence('online', 'tracker01'));

      tracker.send('{"gps/location/lat": "-41.29"}');
      tracker.send(Buffer.from([9, 8, 7]));
      for (const p of [far, near]) {
        assert.deepEqual(await p.frame(3), { data: '{"gps/location/lat": "-41.29"}', binary: false });
        const binary = await p.frame(4);
        assert.equal(binary.binary, true);
        assert.deepEqual([...(binary.data as Buffer)], [9, 8, 7]);
      }
      assert.equal(far.received.length, 4, 'each frame once, not once per route');

      far.send('["CMD","start_gps",[]]');
      far.send(Buffer.from([1, 2]));
      await tracker.frame(2);
      assert.deepEqual(tracker.received[0], { data: '["CMD","start_gps",[]]', binary: false });
      assert.deepEqual([...(tracker.received[1]!.data as Buffer)], [1, 2]);

      const metrics = await request(second.url, 'GET', '/metrics');
      assert.match(metrics.body as string, /fleetd_relay_latency_seconds_count [1-9]/, 'the receiving node measured the latency');

      tracker.close();
      await tracker.closed;
      for (const p of [far, near]) await p.sees(presence('offline', 'tracker01'));
      far.send('["CMD","reset",[]]');
      await far.sees({ error: 'device offline' });
    });

    it('replaces a connection on one node by a newer one on another, which stays online', async () => {
      const device = await relayDevice(first, org, 'tracker02');
      const watcher = await page(first, 'tracker02', 'offline');
      const older = await client(first, 'tracker02', device.key);
      await watcher.sees(presence('online', 'tracker02'));
      const newer = await client(second, 'tracker02', device.key);
      assert.equal((await older.closed).code, 4000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await isOnline(first, org, device.id), true);
      watcher.send('["GET","wifi",[]]');
      await newer.sees('["GET","wifi",[]]');
      newer.send('{"wifi/ssid": "home"}');
      await watcher.sees('{"wifi/ssid": "home"}');
      assert.ok(!watcher.texts.slice(1).includes(JSON.stringify(presence('offline', 'tracker02'))), 'pages never saw it go offline');
      assert.deepEqual(older.texts, []);
    });

    it('keeps no channel on either node once everyone left', async () => {
      for (const c of open.splice(0)) {
        c.close();
        await c.closed;
      }
      await eventually(() => relayChannels(first.server.hub).size === 0 && relayChannels(second.hub).size === 0, 5000, 'no channel kept');
    });
  });
}
