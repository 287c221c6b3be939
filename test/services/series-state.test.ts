import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/server.ts';
import { systemActor } from '../../src/services/actor.ts';
import { backends } from '../helpers/backends.ts';
import { startNode, startTestServer, type TestServer } from '../helpers/server.ts';
import { readUntil } from '../helpers/waiting.ts';
import { busBackends, natsTestUrl } from '../hub/buses.ts';

/** Device reported state recorded into sequences of the device's folder, from the events this node publishes. */

for (const backend of await backends()) {
  describe(`series state recorder [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let deviceId: string;
    let folder: string;

    const status = (changed: Record<string, unknown>) =>
      server.server.hub.events.publish({ orgId: server.admin.orgId, deviceId, name: 'device.status', data: { changed: changed as never } });
    const values = async (name: string) => {
      const resource = await server.services.resources.resolve(systemActor.principal, `${folder}/${name}`).catch(() => undefined);
      return resource ? (await server.services.series.raw(systemActor.principal, resource.path)).values.map((v) => v.value) : [];
    };

    before(async () => {
      server = await startTestServer(backend, { rrduinoPort: '0', stateSequences: JSON.stringify({ 'sys.uptime': 'uptime' }) });
      deviceId = (await server.services.devices.create(systemActor, server.admin.orgId, { name: 'plug' })).id;
      folder = (await server.services.resources.deviceFolder(deviceId)).path;
    });
    after(() => server?.close());

    it('records a Shelly apower change once, in a numeric sequence made on its first value', async () => {
      await status({ 'switch:0': { apower: 12.5, output: true } });
      assert.deepEqual(await readUntil(() => values('switch_0_apower'), (v) => v.length > 0), [12.5]);
      const sequence = await server.services.resources.resolve(systemActor.principal, `${folder}/switch_0_apower`);
      assert.equal(sequence.type, 'sequence');
      assert.equal((await server.services.series.last(systemActor.principal, sequence.path)).units, 'W');
      await status({ 'switch:0': { apower: 30 } });
      assert.deepEqual(await readUntil(() => values('switch_0_apower'), (v) => v.length > 1), [12.5, 30]);
      // Nothing else is recorded: each change once.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(await values('switch_0_apower'), [12.5, 30]);
    });

    it('records nested fields and configured ones, and ignores what is not a number or not mapped', async () => {
      await status({ 'switch:1': { aenergy: { total: 1234.5 }, output: false }, 'sys': { uptime: 99, ram_free: 1000 } });
      assert.deepEqual(await readUntil(() => values('switch_1_energy'), (v) => v.length > 0), [1234.5]);
      assert.deepEqual(await readUntil(() => values('uptime'), (v) => v.length > 0), [99]);
      const names = (await server.services.resources.list(systemActor.principal, folder)).items.map((r) => r.name).sort();
      assert.ok(!names.includes('switch_1_output') && !names.some((n) => n.includes('ram')), names.join());
    });

    it('records each notification as a text value of the notifications sequence', async () => {
      const notify = (data: Record<string, string>) => server.server.hub.events.publish({ orgId: server.admin.orgId, deviceId, name: 'device.notification', data });
      await notify({ event: 'single_push', component: 'input:0' });
      await notify({ event: 'long_push', component: 'input:0' });
      const recorded = await readUntil(() => values('notifications'), (v) => v.length > 1);
      assert.deepEqual(recorded.map((v) => JSON.parse(String(v))), [
        { event: 'single_push', component: 'input:0' },
        { event: 'long_push', component: 'input:0' },
      ]);
      const sequence = await server.services.resources.resolve(systemActor.principal, `${folder}/notifications`);
      assert.equal((await server.services.series.last(systemActor.principal, sequence.path)).dataType, 'text');
    });
  });
}

const nats = (await busBackends()).find((b) => b.name === 'nats')!;
for (const backend of await backends()) {
  describe(`series state recorder in a cluster [${backend.name}]`, { skip: backend.skip ?? nats.skip }, () => {
    let first: TestServer;
    let second: RunningServer;
    let data: string;

    before(async () => {
      first = await startTestServer(backend, { rrduinoPort: '0', bus: natsTestUrl });
      data = mkdtempSync(join(tmpdir(), 'fleetd-node-'));
      second = await startNode(first.databaseUrl, data, { rrduinoPort: '0', bus: natsTestUrl });
    });
    after(async () => {
      await second?.close();
      await first?.close();
      if (data) rmSync(data, { recursive: true, force: true });
    });

    it('records a change once although every node hears its event', async () => {
      const deviceId = (await first.services.devices.create(systemActor, first.admin.orgId, { name: 'meter' })).id;
      const folder = (await first.services.resources.deviceFolder(deviceId)).path;
      let heard = 0;
      const stop = second.hub.events.listen((event) => void (event.deviceId === deviceId && heard++));
      // Both nodes writing the same value at the same time would leave one row: count the writes.
      let written = 0;
      for (const node of [first.services, second.services]) node.series.onCommitted((values) => (written += values.filter((v) => v.path.startsWith(folder)).length));
      await first.server.hub.events.publish({ orgId: first.admin.orgId, deviceId, name: 'device.status', data: { changed: { 'pm1:0': { apower: 7 } } } });
      const read = () =>
        first.services.series.raw(systemActor.principal, `${folder}/pm1_0_apower`).then((r) => r.values.map((v) => v.value), () => []);
      assert.deepEqual(await readUntil(read, (v) => v.length > 0), [7]);
      await readUntil(() => heard, (n) => n > 0);
      stop();
      await first.services.series.close();
      await second.services.series.close();
      assert.equal(written, 1);
    });
  });
}
