import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FleetError } from '../../../src/core/errors.ts';
import type { Device } from '../../../src/services/devices.ts';
import { backends } from '../../helpers/backends.ts';
import { eventually } from '../../hub/websocket-harness.ts';
import { hubEvent, hydrated, pendingEntry, registryDevice, startShellyServer, upgradeStatus, type ShellyServer } from './harness.ts';
import { ShellySimulator } from './simulator.ts';

const rejection = async (promise: Promise<unknown>): Promise<FleetError> => {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof FleetError, String(error));
    return error;
  }
  assert.fail('expected a rejection');
};

for (const backend of await backends()) {
  describe(`Shelly devices on /shelly [${backend.name}]`, { skip: backend.skip }, () => {
    let server: ShellyServer;
    let simulator: ShellySimulator;
    let device: Device;

    before(async () => {
      server = await startShellyServer(backend);
    });
    after(async () => {
      await simulator?.close();
      await server?.close();
    });

    it('waits in the waiting room without being called, then is accepted and hydrated on the same socket', async () => {
      simulator = await ShellySimulator.connect({ url: `${server.wsUrl}/shelly?org=default` });
      const pending = await pendingEntry(server, simulator.id);
      assert.equal(pending.state, 'pending');
      // While it waits it may report; nothing is routed and nothing is asked of it.
      simulator.notifyStatus({ sys: { uptime: 9 } });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(simulator.received, [], 'no RPC reaches a device waiting for admission');
      assert.equal(server.events.some((event) => event.name === 'device.status'), false);

      device = await server.hub.services.admission.accept({ principal: server.orgAdmin }, pending.id, {});
      await hydrated(server, device.id);

      for (const method of ['Shelly.GetDeviceInfo', 'Shelly.GetStatus', 'Shelly.GetConfig', 'Shelly.ListMethods']) {
        const [call] = simulator.requests(method);
        assert.ok(call, `${method} was called`);
        assert.equal(call.src, 'fleetd');
        assert.equal(call.jsonrpc, '2.0');
        assert.equal(call.params, undefined, 'params are left out when empty');
      }
      const pages = simulator.requests('Shelly.GetComponents');
      assert.deepEqual(
        pages.map((page) => page.params),
        [
          { offset: 0, dynamic_only: true },
          { offset: 2, dynamic_only: true },
        ],
        'three dynamic components in pages of two',
      );

      const { body, state } = await registryDevice(server, device.id);
      assert.deepEqual(state.reported, simulator.fullStatus(), 'hello, then GetStatus, then each dynamic component');
      assert.equal(body.online, true);
      assert.equal(body.externalId, simulator.id);
      assert.equal(body.model, 'SNSW-001P16EU');
      assert.equal(body.firmware, '1.4.4');
      assert.equal(body.name, 'Garden pump', 'the default name (its id) gives way to the name the device has');
      assert.deepEqual(body.metadata.shelly.info, simulator.deviceInfo());
      assert.deepEqual(body.metadata.shelly.config, simulator.fullConfig());
      const online = await hubEvent(server, (event) => event.name === 'device.online' && event.deviceId === device.id);
      assert.equal(online.orgId, server.orgId);
      const info = await hydrated(server, device.id);
      assert.deepEqual(info.data.info, simulator.deviceInfo());
    });

    it('merges NotifyStatus into the reported state and tells watchers only what changed', async () => {
      const since = server.events.length;
      // The same full status again changes nothing, so the next status event is the change after it.
      simulator.notify('NotifyFullStatus', { ts: 1, ...simulator.status });
      simulator.notifyStatus({ 'switch:0': { apower: 12.5, aenergy: { total: 12.7 } } });
      const event = await hubEvent(server, (e) => e.name === 'device.status' && e.deviceId === device.id, { since });
      assert.deepEqual(event.data.changed, { 'switch:0': { apower: 12.5, aenergy: { total: 12.7 } } });
      assert.equal(event.orgId, server.orgId);
      const { state } = await registryDevice(server, device.id);
      assert.deepEqual(state.reported, simulator.fullStatus(), 'the other fields of switch:0 stay');
      assert.equal(state.reported['switch:0'].voltage, 230.1);
      assert.deepEqual(state.reported['switch:0'].aenergy.by_minute, [0, 0, 0]);
    });

    it('passes each NotifyEvent entry on as one device notification', async () => {
      const since = server.events.length;
      simulator.notifyEvent([
        { component: 'input:0', id: 0, event: 'single_push' },
        { component: 'bthomedevice:200', id: 200, event: 'device_discovered', device: { addr: 'aa:bb', local_name: 'SBBT-002C' } },
      ]);
      const push = await hubEvent(server, (e) => e.name === 'device.notification' && e.data.event === 'single_push', { since });
      assert.equal(push.deviceId, device.id);
      assert.equal(push.data.method, 'NotifyEvent');
      assert.equal(push.data.component, 'input:0');
      assert.equal(push.data.id, 0);
      assert.equal(typeof push.data.ts, 'number');
      const unknown = await hubEvent(server, (e) => e.name === 'device.notification' && e.data.event === 'device_discovered', { since });
      assert.deepEqual(unknown.data.device, { addr: 'aa:bb', local_name: 'SBBT-002C' }, 'unknown events pass through');

      simulator.notify('NotifyCustom', { ts: 2, anything: [1, 2] });
      const other = await hubEvent(server, (e) => e.name === 'device.notification' && e.data.method === 'NotifyCustom', { since });
      assert.deepEqual(other.data, { method: 'NotifyCustom', params: { ts: 2, anything: [1, 2] } });
    });

    it('reads a changed configuration again, and the device info when sys changed', async () => {
      const mark = simulator.received.length;
      simulator.changeConfig('switch:0', { name: 'Pool pump' });
      const refetch = await simulator.request('switch.getconfig', { after: mark });
      assert.deepEqual(refetch.params, { id: 0 });
      await eventually(async () => (await registryDevice(server, device.id)).body.metadata.shelly.config['switch:0'].name === 'Pool pump', 5000, 'the new switch config stored');

      const since = server.events.length;
      simulator.name = 'Pool house';
      simulator.changeConfig('sys', { device: { name: 'Pool house', mac: 'A8032ABB995C', fw_id: 'x', discoverable: true } });
      const sysConfig = await simulator.request('sys.getconfig', { after: mark });
      assert.equal(sysConfig.params, undefined, 'a singleton takes no id');
      const info = await hubEvent(server, (e) => e.name === 'device.info' && e.deviceId === device.id, { since });
      assert.equal((info.data.info as { name: string }).name, 'Pool house');
      const { body } = await registryDevice(server, device.id);
      assert.equal(body.metadata.shelly.config.sys.device.name, 'Pool house');
      assert.equal(body.metadata.shelly.info.name, 'Pool house');
      assert.equal(body.name, 'Garden pump', 'a name somebody (or the first hydration) gave is not overwritten');
    });

    it('reads an added component and forgets a removed one', async () => {
      const mark = simulator.received.length;
      simulator.addComponent({ key: 'boolean:203', status: { value: true }, config: { id: 203, name: 'Frost guard' } });
      const [status, config] = await Promise.all([simulator.request('boolean.getstatus', { after: mark }), simulator.request('boolean.getconfig', { after: mark })]);
      assert.deepEqual(status.params, { id: 203 });
      assert.deepEqual(config.params, { id: 203 });
      await eventually(async () => (await registryDevice(server, device.id)).body.metadata.shelly.config['boolean:203']?.name === 'Frost guard', 5000, 'the added config stored');
      assert.deepEqual((await registryDevice(server, device.id)).state.reported['boolean:203'], { value: true });

      const since = server.events.length;
      simulator.removeComponent('boolean:203');
      const removed = await hubEvent(server, (e) => e.name === 'device.status' && e.deviceId === device.id && (e.data.changed as Record<string, unknown>)['boolean:203'] === null, { since });
      assert.ok(removed);
      await eventually(async () => !('boolean:203' in (await registryDevice(server, device.id)).body.metadata.shelly.config), 5000, 'the removed config dropped');
      assert.deepEqual((await registryDevice(server, device.id)).state.reported, simulator.fullStatus());
    });

    it('relays calls: the result, the device error with its code, a timeout', async () => {
      assert.deepEqual(await server.hub.links.call(device.id, 'Switch.Set', { id: 0, on: true }), { was_on: false });
      const notFound = await rejection(server.hub.links.call(device.id, 'Switch.Set', { id: 7, on: true }));
      assert.equal(notFound.code, 'device_error');
      assert.deepEqual(notFound.details, { code: -105, message: 'Bad id=7' });
      simulator.on('Shelly.CheckForUpdate', () => 'silent');
      const timeout = await rejection(server.hub.links.call(device.id, 'Shelly.CheckForUpdate', undefined, { timeoutMs: 200 }));
      assert.equal(timeout.code, 'device_timeout');
      // The device's own NotifyStatus after Switch.Set lands in the reported state.
      await eventually(async () => (await registryDevice(server, device.id)).state.reported['switch:0'].output === true, 5000, 'the switch reported on');
    });

    it('lets an accepted device back in as known without waiting, and a second connection replaces the first', async () => {
      const since = server.events.length;
      await simulator.close();
      await hubEvent(server, (e) => e.name === 'device.offline' && e.deviceId === device.id, { since });
      simulator = await ShellySimulator.connect({ url: `${server.wsUrl}/shelly` });
      await hydrated(server, device.id, since);
      const pending = await server.hub.services.admission.listPending(server.orgAdmin, server.orgId, {}, {});
      assert.equal(pending.items.some((item) => item.externalId === simulator.id), false);
      assert.equal((await registryDevice(server, device.id)).body.online, true);

      const mark = server.events.length;
      const replacement = await ShellySimulator.connect({ url: `${server.wsUrl}/shelly` });
      assert.equal((await simulator.closed).code, 4000);
      await hydrated(server, device.id, mark);
      simulator = replacement;
      assert.deepEqual(await server.hub.links.call(device.id, 'Shelly.GetStatus'), replacement.status);
    });

    it('denies a device with the classic pair: forget this server, reboot, close 1008', async () => {
      const denied = await ShellySimulator.connect({ url: `${server.wsUrl}/shelly?org=default`, id: 'shellyplus2pm-c0ffee000001' });
      const pending = await pendingEntry(server, denied.id);
      await server.hub.services.admission.deny({ principal: server.orgAdmin }, pending.id);
      const closed = await denied.closed;
      assert.deepEqual(closed, { code: 1008, reason: 'denied' });
      assert.deepEqual(denied.received, [
        { id: 998, src: 'fleetd', method: 'WS.SetConfig', params: { config: { server: '#', enable: false } } },
        { id: 999, src: 'fleetd', method: 'Shelly.Reboot' },
      ]);
      // Denied stays denied: the next attempt gets the same at once.
      const again = await ShellySimulator.connect({ url: `${server.wsUrl}/shelly?org=default`, id: denied.id });
      assert.deepEqual(await again.closed, { code: 1008, reason: 'denied' });
      assert.equal(again.received.length, 2);
    });

    it('lets a device with a status too large to keep whole wait with a summary of its hello', async () => {
      const status = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`em:${i}`, { id: i, a_current: 1.25, a_voltage: 230.4, a_act_power: 288.1, a_aprt_power: 290, a_pf: 0.99, b_current: 1, c_current: 1, n_current: null, total_current: 3.2 }]));
      const big = await ShellySimulator.connect({ url: `${server.wsUrl}/shelly?org=default`, id: 'shellypro3em-b16b16b16b16', status: { ...status, sys: { mac: 'B16B16B16B16', uptime: 5 } } });
      await pendingEntry(server, big.id);
      const page = await server.hub.services.admission.listPending(server.orgAdmin, server.orgId, { state: 'pending' }, {});
      const entry = page.items.find((item) => item.externalId === big.id)!;
      const hello = entry.info.hello as { components: string[]; sys: unknown };
      assert.equal(hello.components.length, 81);
      assert.deepEqual(hello.sys, { mac: 'B16B16B16B16', uptime: 5 });
      await big.close();
    });

    it("refuses what is not a device: a person's credentials (403), bad credentials (401), other paths (404)", async () => {
      assert.equal(await upgradeStatus(`${server.wsUrl}/shelly`, { authorization: `Bearer ${server.test.admin.token}` }), 403);
      assert.equal(await upgradeStatus(`${server.wsUrl}/shelly`, { authorization: 'Bearer fk_nope_nope' }), 401);
      assert.equal(await upgradeStatus(`${server.wsUrl}/shelly/extra`), 404);
    });
  });

  describe(`Shelly hydration that fails in parts, and the message log [${backend.name}]`, { skip: backend.skip }, () => {
    let server: ShellyServer;
    const logDir = mkdtempSync(join(tmpdir(), 'fleetd-shelly-log-'));
    const logFile = join(logDir, 'messages.log');

    before(async () => {
      server = await startShellyServer(backend, { hydrationTimeout: '1', messageLogDevices: 'true', messageLog: logFile });
    });
    after(async () => {
      await server?.close();
      rmSync(logDir, { recursive: true, force: true });
    });

    it('keeps a device whose GetConfig times out connected with what it got, and pages nothing without ListMethods', async () => {
      const simulator = await ShellySimulator.connect({ url: `${server.wsUrl}/shelly?org=default`, id: 'shellyplus1-0badc0ffee01', name: null });
      simulator.on('Shelly.GetConfig', () => 'silent');
      simulator.on('Shelly.ListMethods', () => ({ error: { code: 404, message: 'No handler for Shelly.ListMethods' } }));
      const pending = await pendingEntry(server, simulator.id);
      const device = await server.hub.services.admission.accept({ principal: server.orgAdmin }, pending.id, {});
      await hydrated(server, device.id);
      assert.equal(simulator.requests('Shelly.GetComponents').length, 0);
      const { body, state } = await registryDevice(server, device.id);
      assert.deepEqual(state.reported, simulator.status, 'hello and GetStatus, no dynamic components');
      assert.equal(body.metadata.shelly.config, undefined);
      assert.equal(body.model, 'SNSW-001P16EU');
      assert.equal(body.name, simulator.id, 'a device without a name keeps its id');
      assert.equal(simulator.ws.readyState, simulator.ws.OPEN);
      assert.deepEqual(await server.hub.links.call(device.id, 'Switch.Set', { id: 0, on: true }), { was_on: false });
      await simulator.close();

      // A configuration too large for the metadata is left out; the info is stored all the same.
      const large = await ShellySimulator.connect({ url: `${server.wsUrl}/shelly?org=default`, id: 'shellypro4pm-1a1a1a1a1a1a', config: { 'script:1': { id: 1, name: 'x'.repeat(70 * 1024) } } });
      const largeDevice = await server.hub.services.admission.accept({ principal: server.orgAdmin }, (await pendingEntry(server, large.id)).id, {});
      await hydrated(server, largeDevice.id);
      const stored = (await registryDevice(server, largeDevice.id)).body;
      assert.equal(stored.metadata.shelly.config, undefined);
      assert.deepEqual(stored.metadata.shelly.info, large.deviceInfo());
      assert.equal(stored.firmware, '1.4.4');
      await large.close();

      // Both directions of the device's frames, as the relay logs its own (`>` from the device, `<` to it).
      await eventually(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('"was_on":false'), 5000, 'the message log written');
      const lines = readFileSync(logFile, 'utf8').split('\n');
      assert.ok(lines.some((line) => line.includes(` shelly > ${simulator.id}/ {"src":"${simulator.id}","dst":"ws","method":"NotifyFullStatus"`)));
      assert.ok(lines.some((line) => line.includes(` shelly < ${simulator.id}/ {"jsonrpc":"2.0","method":"Shelly.GetDeviceInfo","id":1,"src":"fleetd"}`)));
    });
  });
}
