import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HubEvent } from '../../../src/hub/events.ts';
import type { RunningServer } from '../../../src/server.ts';
import { backends } from '../../helpers/backends.ts';
import { startNode } from '../../helpers/server.ts';
import { busBackends, natsTestUrl } from '../../hub/buses.ts';
import { eventually } from '../../hub/websocket-harness.ts';
import { hubEvent, hydrated, pendingEntry, startShellyServer, type ShellyServer } from './harness.ts';
import { ShellySimulator } from './simulator.ts';

/** Two nodes on one database and one NATS server: a Shelly device on either is reachable from both. */
const nats = (await busBackends()).find((bus) => bus.name === 'nats')!;

for (const backend of await backends()) {
  describe(`Shelly devices in a cluster [${backend.name}, nats]`, { skip: backend.skip ?? nats.skip }, () => {
    let first: ShellyServer;
    let second: RunningServer;
    let data: string;
    const secondEvents: HubEvent[] = [];
    const overrides = { bus: natsTestUrl, messageLog: 'off' };

    before(async () => {
      first = await startShellyServer(backend, overrides);
      data = mkdtempSync(join(tmpdir(), 'fleetd-node-'));
      second = await startNode(first.test.databaseUrl, data, overrides);
      second.hub.events.listen((event) => secondEvents.push(event));
    });
    after(async () => {
      await second?.close();
      await first?.close();
      rmSync(data, { recursive: true, force: true });
    });

    it('a device accepted on one node goes on on the node it is connected to; calls and events cross nodes; a reconnect elsewhere replaces it', async () => {
      const simulator = await ShellySimulator.connect({ url: `${first.wsUrl}/shelly?org=default`, id: 'shellyplus1pm-c1c1c1c1c1c1' });
      const pending = await pendingEntry(first, simulator.id);
      // Decided on the other node: the waiting socket hears it over the bus.
      const device = await second.hub.services.admission.accept({ principal: first.orgAdmin }, pending.id, {});
      await hydrated(first, device.id);
      assert.ok(first.hub.links.isLocal(device.id));
      assert.equal(second.hub.links.isLocal(device.id), false);

      assert.deepEqual(await second.hub.links.call(device.id, 'Switch.Set', { id: 0, on: true }), { was_on: false });
      await eventually(() => secondEvents.some((e) => e.name === 'device.status' && e.deviceId === device.id && JSON.stringify(e.data.changed).includes('"output":true')), 5000, 'the status change heard on the other node');

      const since = first.events.length;
      const elsewhere = await ShellySimulator.connect({ url: `${second.url.replace(/^http/, 'ws')}/shelly`, id: simulator.id });
      assert.equal((await simulator.closed).code, 4000);
      await hubEvent(first, (e) => e.name === 'device.info' && e.deviceId === device.id, { since, what: 'hydration on the second node' });
      assert.ok(second.hub.links.isLocal(device.id));
      assert.deepEqual(await first.hub.links.call(device.id, 'Shelly.GetDeviceInfo'), elsewhere.deviceInfo());
      await elsewhere.close();
    });
  });
}
