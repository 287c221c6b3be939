import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { shellyEndpoints } from '../../../src/adapters/shelly/endpoint.ts';
import type { Device } from '../../../src/services/devices.ts';
import { backends } from '../../helpers/backends.ts';
import { closeOf, connect, eventually, startWebSockets } from '../../hub/websocket-harness.ts';
import { hubEvent, hydrated, registryDevice, startShellyServer, type ShellyServer } from './harness.ts';
import { ShellySimulator } from './simulator.ts';

/**
 * What a device (or something posing as one) may send on purpose or by accident: each is refused with
 * its close code or ignored, nothing of it is stored half, and the server keeps serving the others.
 */

const maxFrame = 64 * 1024;
const rateLimit = 200;

/** The text of arrays nested `depth` deep. */
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

const helloOf = (src: unknown, params: unknown = { ts: 1, sys: { uptime: 1 } }, method = 'NotifyFullStatus') => JSON.stringify({ src, dst: 'ws', method, params });

for (const backend of await backends()) {
  describe(`hostile devices on /shelly [${backend.name}]`, { skip: backend.skip }, () => {
    let server: ShellyServer;
    let victim: ShellySimulator;
    let victimDevice: Device;

    /** A device admitted at once (open admission), hydrated. */
    const openDevice = async (id: string) => {
      const since = server.events.length;
      const simulator = await ShellySimulator.connect({ url: `${server.wsUrl}/shelly?org=default`, id });
      const online = await hubEvent(server, (event) => event.name === 'device.online', { since, what: `${id} online` });
      await hydrated(server, online.deviceId!, since);
      return { simulator, deviceId: online.deviceId! };
    };

    /** Sends a good NotifyStatus and waits for its event: every frame sent before it has been handled. */
    const fence = async (simulator: ShellySimulator, deviceId: string, uptime: number) => {
      const since = server.events.length;
      simulator.notifyStatus({ sys: { uptime } });
      const event = await hubEvent(server, (e) => e.name === 'device.status' && e.deviceId === deviceId, { since, what: `uptime ${uptime} stored` });
      return event.data.changed;
    };

    /** The victim still works: it reports and answers a relayed call. */
    const victimServed = async (uptime: number) => {
      assert.deepEqual(await fence(victim, victimDevice.id, uptime), { sys: { uptime } });
      assert.deepEqual(await server.hub.links.call(victimDevice.id, 'Switch.GetStatus', { id: 0 }), victim.status['switch:0']);
    };

    before(async () => {
      server = await startShellyServer(backend, { admissionEndpoints: '{shelly: open}', wsRateLimit: String(rateLimit), wsMaxFrame: String(maxFrame) });
      const admitted = await openDevice('shellyplus1pm-000000000001');
      victim = admitted.simulator;
      victimDevice = (await server.hub.services.devices.findByExternalId(victim.id))!;
    });
    after(async () => {
      await victim?.close();
      await server?.close();
    });

    it('refuses a first frame that is no hello with 4100/4101, and stores nothing of it', async () => {
      const refusals: Array<[string, number]> = [
        ['not json at all', 4100],
        ['{"src":"x",', 4100],
        ['[' + helloOf('shellyplus1-arrayhello') + ']', 4101],
        ['[]', 4101],
        ['"a string"', 4101],
        ['null', 4101],
        ['{}', 4101],
        [helloOf('shellyplus1-eventfirst', { ts: 1, events: [] }, 'NotifyEvent'), 4101],
        [JSON.stringify({ id: 1, src: 'shellyplus1-request', method: 'NotifyFullStatus', params: {} }), 4101],
        [JSON.stringify({ id: 1, src: 'shellyplus1-response', result: {} }), 4101],
        [helloOf(undefined), 4101],
        [helloOf(42), 4101],
        [helloOf(''), 4101],
        [helloOf('shelly plus'), 4101],
        [helloOf('../../etc'), 4101],
        [helloOf('x'.repeat(129)), 4101],
        [helloOf('shellyplus1-arrayparams', [1, 2]), 4101],
        [helloOf('shellyplus1-textparams', 'status'), 4101],
        [`{"src":"shellyplus1-deep","method":"NotifyFullStatus","params":{"sys":${nested(10_000)}}}`, 4101],
        [`{"src":"shellyplus1-proto","method":"NotifyFullStatus","params":{"__proto__":{"polluted":true}}}`, 4101],
      ];
      for (const [text, code] of refusals) {
        const ws = await connect(`${server.wsUrl}/shelly?org=default`);
        const closed = closeOf(ws);
        ws.send(text);
        const { code: got, reason } = await closed;
        assert.equal(got, code, `${text.slice(0, 80)} closed with ${got} ${reason}`);
        assert.equal(reason, code === 4100 ? 'hello is not JSON' : 'first frame must be NotifyFullStatus or NotifyStatus with src');
      }
      const pending = await server.hub.services.admission.listPending(server.orgAdmin, server.orgId, {}, {});
      assert.deepEqual(pending.items, []);
      for (const id of ['shellyplus1-arrayhello', 'shellyplus1-eventfirst', 'shellyplus1-request', 'shellyplus1-deep', 'shellyplus1-proto']) {
        assert.equal(await server.hub.services.devices.findByExternalId(id), undefined, id);
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      await victimServed(100);
    });

    it('closes a binary frame with 1003 and a frame above the limit with 1009, before and after the hello', async () => {
      const binary = await connect(`${server.wsUrl}/shelly?org=default`);
      binary.send(Buffer.from(helloOf('shellyplus1-binary')));
      assert.equal((await closeOf(binary)).code, 1003);
      const huge = await connect(`${server.wsUrl}/shelly?org=default`);
      huge.send(helloOf('shellyplus1-huge', { ts: 1, sys: { filler: 'x'.repeat(maxFrame) } }));
      assert.equal((await closeOf(huge)).code, 1009);
      assert.equal(await server.hub.services.devices.findByExternalId('shellyplus1-huge'), undefined);

      const { simulator, deviceId } = await openDevice('shellyplus1pm-000000000002');
      const before = (await registryDevice(server, deviceId)).state.reported;
      simulator.send(JSON.stringify({ src: simulator.id, method: 'NotifyStatus', params: { ts: 2, sys: { filler: 'x'.repeat(maxFrame) } } }));
      assert.equal((await simulator.closed).code, 1009);
      const { body, state } = await registryDevice(server, deviceId);
      assert.deepEqual(state.reported, before, 'nothing of the frame is stored');
      await eventually(async () => !(await registryDevice(server, deviceId)).body.online, 5000, 'the device offline');
      assert.equal(body.externalId, simulator.id);

      const late = await openDevice('shellyplus1pm-000000000003');
      late.simulator.ws.send(Buffer.from('binary'));
      assert.equal((await late.simulator.closed).code, 1003);
      await victimServed(101);
    });

    it('closes a connection that says nothing with 1008', async () => {
      const quick = await startWebSockets(shellyEndpoints(server.hub, { helloTimeoutMs: 200 }));
      try {
        const ws = await connect(`${quick.url}/shelly`);
        assert.deepEqual(await closeOf(ws), { code: 1008, reason: 'no hello in time' });
      } finally {
        await quick.close();
      }
    });

    it('ignores what an admitted device sends that is no frame of it, and stores nothing of it', async () => {
      const { simulator, deviceId } = await openDevice('shellypro4pm-000000000004');
      const before = (await registryDevice(server, deviceId)).state.reported;
      const victimBefore = (await registryDevice(server, victimDevice.id)).state.reported;
      const since = server.events.length;
      const status = (params: unknown, src: unknown = simulator.id) => JSON.stringify({ src, dst: 'ws', method: 'NotifyStatus', params });
      const garbage = [
        'not json',
        '{"unterminated":',
        '[1, 2, 3]',
        '[]',
        '"text"',
        '42',
        'null',
        '{}',
        JSON.stringify([{ src: simulator.id, method: 'NotifyStatus', params: { 'switch:0': { output: true } } }]),
        // Frames in another device's name: not stored for either.
        status({ ts: 3, 'switch:0': { output: true } }, victim.id),
        status({ ts: 3, 'switch:0': { output: true } }, 'shellyplus1pm-nobody'),
        status({ ts: 3, 'switch:0': { output: true } }, 7),
        // Params that are not a status object.
        status([1, 2]),
        status('on'),
        status(null),
        JSON.stringify({ src: simulator.id, method: 'NotifyStatus' }),
        // Half good, half hostile: none of it.
        `{"src":"${simulator.id}","method":"NotifyStatus","params":{"switch:0":{"output":true},"deep":${nested(10_000)}}}`,
        `{"src":"${simulator.id}","method":"NotifyStatus","params":{"switch:0":{"output":true},"sys":{"__proto__":{"polluted":true}}}}`,
        // Responses nobody waits for.
        JSON.stringify({ id: 123456, src: simulator.id, dst: 'fleetd', result: { surprise: true } }),
        JSON.stringify({ id: 'abc', src: simulator.id, dst: 'fleetd', error: { code: -105, message: 'x' } }),
        JSON.stringify({ id: 1, src: simulator.id, dst: 'fleetd', result: {}, error: { code: 1, message: 'both' } }),
        // Events that are not events.
        JSON.stringify({ src: simulator.id, method: 'NotifyEvent', params: { events: 'many' } }),
        JSON.stringify({ src: simulator.id, method: 'NotifyEvent', params: { events: [1, null, 'x', { no: 'event' }] } }),
        JSON.stringify({ src: simulator.id, method: 'NotifyEvent', params: 'x' }),
        JSON.stringify({ src: simulator.id, method: 'NotifyEvent', params: { events: [{ component: '__proto__', event: 'config_changed' }, { component: 'sys', event: 'component_added', target: '../../x' }] } }),
      ];
      const mark = simulator.received.length;
      for (const text of garbage) simulator.send(text);
      assert.deepEqual(await fence(simulator, deviceId, 200), { sys: { uptime: 200 } }, 'the next good frame is the only change');
      assert.equal(simulator.ws.readyState, simulator.ws.OPEN);
      assert.deepEqual(simulator.received.slice(mark), [], 'nothing was called back for any of it');
      const { state } = await registryDevice(server, deviceId);
      assert.deepEqual(state.reported, { ...before, sys: { ...(before.sys as object), uptime: 200 } });
      assert.deepEqual((await registryDevice(server, victimDevice.id)).state.reported, victimBefore, 'nothing reached the device it named');
      const statusEvents = server.events.slice(since).filter((e) => e.name === 'device.status');
      assert.deepEqual(
        statusEvents.map((e) => e.deviceId),
        [deviceId],
      );
      const notifications = server.events.slice(since).filter((e) => e.name === 'device.notification');
      assert.deepEqual(
        notifications.map((e) => e.data.event),
        ['config_changed', 'component_added'],
        'only entries with an event name are passed on, without calling back for keys that are none',
      );
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      await simulator.close();
    });

    it('answers requests from the device with Method not found, to the device', async () => {
      const { simulator } = await openDevice('shellyplus1pm-000000000005');
      simulator.send({ id: 77, src: simulator.id, method: 'FleetManager.Subscribe', params: {} });
      const reply = await simulator.next((frame) => frame.id === 77);
      assert.deepEqual(reply, { jsonrpc: '2.0', id: 77, src: 'fleetd', dst: simulator.id, error: { code: -32601, message: 'Method not found' } });
      await simulator.close();
    });

    it('settles a call once when the device answers twice, and ignores late answers', async () => {
      const { simulator, deviceId } = await openDevice('shellyplus1pm-000000000006');
      simulator.on('Sys.GetStatus', (_params, frame) => {
        simulator.send({ id: frame.id, src: simulator.id, dst: 'fleetd', result: { first: true } });
        simulator.send({ id: frame.id, src: simulator.id, dst: 'fleetd', result: { second: true } });
        return 'silent';
      });
      assert.deepEqual(await server.hub.links.call(deviceId, 'Sys.GetStatus'), { first: true });
      simulator.on('Sys.GetConfig', async (_params, frame) => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        simulator.send({ id: frame.id, src: simulator.id, dst: 'fleetd', result: { late: true } });
        return 'silent' as const;
      });
      await assert.rejects(server.hub.links.call(deviceId, 'Sys.GetConfig', undefined, { timeoutMs: 100 }), { code: 'device_timeout' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(await fence(simulator, deviceId, 300), { sys: { uptime: 300 } });
      assert.deepEqual(await server.hub.links.call(deviceId, 'Switch.Set', { id: 0, on: true }), { was_on: false });
      await simulator.close();
    });

    it('closes a device flooding above the rate limit with 1008 while the others are served', async () => {
      const { simulator, deviceId } = await openDevice('shellyplus1pm-000000000007');
      for (let i = 0; i < rateLimit + 50; i++) simulator.send(JSON.stringify({ src: simulator.id, method: 'NotifyStatus', params: { ts: i, sys: { uptime: 1000 + i } } }));
      assert.deepEqual(await simulator.closed, { code: 1008, reason: 'message rate limited' });
      await eventually(async () => !(await registryDevice(server, deviceId)).body.online, 5000, 'the flooding device offline');
      await victimServed(102);
    });
  });
}
