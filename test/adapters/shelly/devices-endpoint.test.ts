import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../../helpers/backends.ts';
import { request } from '../../helpers/server.ts';
import { hubEvent, hydrated, pendingEntry, registryDevice, startShellyServer, upgradeStatus, type ShellyServer } from './harness.ts';
import { ShellySimulator, type ReceivedFrame } from './simulator.ts';

/** fleetd's own devices: the Shelly protocol on /api/devices/ws, with a device key or an enrollment token. */

const isDesired = (frame: ReceivedFrame) => frame.method === 'Device.Desired';

for (const backend of await backends()) {
  describe(`fleetd devices on /api/devices/ws [${backend.name}]`, { skip: backend.skip }, () => {
    let server: ShellyServer;
    const admin = () => ({ token: server.test.admin.token });
    const url = () => `${server.wsUrl}/api/devices/ws`;

    /** A registered device and a key of its own. */
    const newDevice = async (name: string, externalId?: string) => {
      const created = await request(server.test.url, 'POST', `/api/orgs/${server.orgId}/devices`, { ...admin(), body: { name, ...(externalId && { externalId }) } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const key = await request(server.test.url, 'POST', `/api/orgs/${server.orgId}/api-keys`, { ...admin(), body: { name: `${name} key`, deviceId: created.body.id } });
      assert.equal(key.status, 201, JSON.stringify(key.body));
      return { id: created.body.id as string, key: key.body.key as string, keyId: key.body.id as string };
    };
    /** Through the REST API, as an operator would: the device hears it on its socket. */
    const setDesired = async (deviceId: string, patch: Record<string, unknown>) => {
      const changed = await request(server.test.url, 'PATCH', `/api/orgs/${server.orgId}/devices/${deviceId}/state/desired`, { ...admin(), body: patch });
      assert.equal(changed.status, 200, JSON.stringify(changed.body));
      return changed.body;
    };

    before(async () => {
      server = await startShellyServer(backend);
    });
    after(async () => {
      await server?.close();
    });

    it('admits a device by its own key, hydrates it, and tells it its desired state on connect and on change', async () => {
      const sensor = await newDevice('sensor one', 'sensor-1');
      await setDesired(sensor.id, { led: 'on', interval: 60 });
      const simulator = await ShellySimulator.connect({ url: url(), id: 'sensor-1', headers: { authorization: `Bearer ${sensor.key}` } });
      const first = await simulator.next(isDesired);
      assert.deepEqual(first, { jsonrpc: '2.0', method: 'Device.Desired', params: { desired: { led: 'on', interval: 60 }, version: 1, delta: { led: 'on', interval: 60 } } });
      await hydrated(server, sensor.id);
      const { body, state } = await registryDevice(server, sensor.id);
      assert.deepEqual(state.reported, simulator.fullStatus());
      assert.equal(body.name, 'sensor one', 'a name given at registration stays');
      assert.equal(body.online, true);

      const mark = simulator.received.length;
      await setDesired(sensor.id, { led: 'off' });
      const changed = await simulator.next((frame) => isDesired(frame) && simulator.received.indexOf(frame) >= mark);
      assert.deepEqual(changed.params, { desired: { led: 'off', interval: 60 }, version: 2, delta: { led: 'off', interval: 60 } });
      await simulator.close();
    });

    it("binds a key's device to the id it names on its first connection", async () => {
      const fresh = await newDevice('fresh');
      const simulator = await ShellySimulator.connect({ url: url(), id: 'sensor-2', headers: { authorization: `Bearer ${fresh.key}` } });
      await hydrated(server, fresh.id);
      assert.equal((await registryDevice(server, fresh.id)).body.externalId, 'sensor-2');
      await simulator.close();
    });

    it("refuses a key posing as another device, which is left untouched", async () => {
      const victim = await newDevice('victim', 'sensor-3');
      const victimOnline = await ShellySimulator.connect({ url: url(), id: 'sensor-3', headers: { authorization: `Bearer ${victim.key}` } });
      await hydrated(server, victim.id);
      const before = await registryDevice(server, victim.id);
      const intruder = await newDevice('intruder', 'sensor-4');
      const posing = await ShellySimulator.connect({ url: url(), id: 'sensor-3', headers: { authorization: `Bearer ${intruder.key}` }, status: { evil: { value: 1 } } });
      assert.deepEqual(await posing.closed, { code: 4010, reason: 'admission denied' });
      assert.deepEqual(posing.received, [], 'a denial on this endpoint is a close code only');
      // Nor does a device of another organization get in as this one.
      const other = await request(server.test.url, 'POST', '/api/orgs', { ...admin(), body: { slug: 'elsewhere', name: 'Elsewhere' } });
      const foreign = await request(server.test.url, 'POST', `/api/orgs/${other.body.id}/devices`, { ...admin(), body: { name: 'foreign' } });
      const foreignKey = await request(server.test.url, 'POST', `/api/orgs/${other.body.id}/api-keys`, { ...admin(), body: { name: 'foreign key', deviceId: foreign.body.id } });
      const crossing = await ShellySimulator.connect({ url: `${url()}?org=default`, id: 'sensor-3', headers: { authorization: `Bearer ${foreignKey.body.key}` } });
      assert.deepEqual(await crossing.closed, { code: 4010, reason: 'admission denied' });
      assert.equal(victimOnline.ws.readyState, victimOnline.ws.OPEN, 'the real device was not replaced');
      const afterwards = await registryDevice(server, victim.id);
      assert.deepEqual(afterwards.state.reported, before.state.reported);
      assert.deepEqual((await registryDevice(server, intruder.id)).state.reported, {});
      await victimOnline.close();
    });

    it('refuses a revoked key (401) and the credentials of a person (403)', async () => {
      const revoked = await newDevice('revoked', 'sensor-5');
      assert.equal((await request(server.test.url, 'DELETE', `/api/orgs/${server.orgId}/api-keys/${revoked.keyId}`, admin())).status, 200);
      assert.equal(await upgradeStatus(url(), { authorization: `Bearer ${revoked.key}` }), 401);
      assert.equal(await upgradeStatus(`${url()}?token=${revoked.key}`), 401);
      assert.equal(await upgradeStatus(url(), { authorization: `Bearer ${server.test.admin.token}` }), 403);
      const userKey = await request(server.test.url, 'POST', `/api/orgs/${server.orgId}/api-keys`, { ...admin(), body: { name: 'a person key' } });
      assert.equal(await upgradeStatus(url(), { authorization: `Bearer ${userKey.body.key}` }), 403);
    });

    it('admits a device with an enrollment token in its URL', async () => {
      const token = await server.hub.services.admission.createToken({ principal: server.orgAdmin }, server.orgId, { name: 'bench', tags: ['bench'] });
      const since = server.events.length;
      const simulator = await ShellySimulator.connect({ url: `${url()}?token=${token.token}`, id: 'sensor-6' });
      const online = await hubEvent(server, (event) => event.name === 'device.online', { since });
      await hydrated(server, online.deviceId!, since);
      const { body } = await registryDevice(server, online.deviceId!);
      assert.equal(body.externalId, 'sensor-6');
      assert.deepEqual(body.tags, ['bench']);
      await simulator.close();
    });

    it('lets a device without credentials wait under the manual policy; a denial closes 4010 only', async () => {
      const simulator = await ShellySimulator.connect({ url: `${url()}?org=default`, id: 'sensor-7' });
      const pending = await pendingEntry(server, 'sensor-7');
      await server.hub.services.admission.deny({ principal: server.orgAdmin }, pending.id);
      assert.deepEqual(await simulator.closed, { code: 4010, reason: 'admission denied' });
      assert.deepEqual(simulator.received, []);
    });
  });

  describe(`fleetd devices under the token policy [${backend.name}]`, { skip: backend.skip }, () => {
    let server: ShellyServer;

    before(async () => {
      server = await startShellyServer(backend, { admission: 'token' });
    });
    after(async () => {
      await server?.close();
    });

    it('refuses an upgrade without a device key or enrollment token (401)', async () => {
      assert.equal(await upgradeStatus(`${server.wsUrl}/api/devices/ws`), 401);
    });
  });
}
