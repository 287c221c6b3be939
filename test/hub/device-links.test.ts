import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { Params } from '../../src/adapters/jsonrpc/messages.ts';
import { FleetError } from '../../src/core/errors.ts';
import { newId } from '../../src/core/ids.ts';
import type { Bus } from '../../src/hub/bus.ts';
import { DeviceLinks, type DeviceLink } from '../../src/hub/device-links.ts';
import { EventStream, type HubEvent } from '../../src/hub/events.ts';
import { MemoryBus } from '../../src/hub/memory-bus.ts';
import { HubMetrics } from '../../src/hub/metrics.ts';
import { closeCodes } from '../../src/hub/socket.ts';
import { nowIso } from '../../src/store/page.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';
import { recordingLogger } from '../helpers/logger.ts';
import { busBackends } from './buses.ts';
import { readUntil } from '../helpers/waiting.ts';

const callTimeoutMs = 1000;

/** A device's socket as the adapter holding it would give it: calls answered by `answer`, closes recorded. */
function fakeLink(answer: (method: string, params: Params | undefined, timeoutMs: number) => Promise<unknown> = async () => ({ ok: true })) {
  const closes: Array<[number, string]> = [];
  const desired: unknown[] = [];
  const calls: Array<{ method: string; params: Params | undefined; timeoutMs: number }> = [];
  const link: DeviceLink = {
    call(method, params, timeoutMs) {
      calls.push({ method, params, timeoutMs });
      return answer(method, params, timeoutMs);
    },
    close: (code, reason) => void closes.push([code, reason]),
    desired: (state) => void desired.push(state),
  };
  return { link, closes, desired, calls };
}

async function rejectsWith(work: () => Promise<unknown>, code: FleetError['code'], details?: Record<string, unknown>): Promise<FleetError> {
  try {
    await work();
  } catch (error) {
    assert.ok(error instanceof FleetError, `expected a FleetError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (details) assert.deepEqual({ ...(error.details as object) }, { ...(error.details as object), ...details }, error.message);
    return error;
  }
  assert.fail(`expected a FleetError ${code}`);
}

/** One fleetd node as far as device links go: its event stream, links and metrics. */
interface Node {
  id: string;
  events: EventStream;
  links: DeviceLinks;
  registry: Registry;
}

async function startNode(id: string, store: Store, bus: Bus, logger = recordingLogger().logger): Promise<Node> {
  const events = new EventStream({ store, bus, logger, retentionSeconds: 3600, replayMax: 1000 });
  await events.start();
  const registry = new Registry();
  const links = new DeviceLinks({ store, bus, events, nodeId: id, logger, metrics: new HubMetrics(registry), callTimeoutMs });
  return { id, events, links, registry };
}

async function callCount(node: Node, outcome: string): Promise<number> {
  const metric = await node.registry.getSingleMetric('fleetd_device_calls_total')!.get();
  return metric.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

for (const database of await backends()) {
  for (const busBackend of await busBackends()) {
    describe(`device links [${database.name}, ${busBackend.name}]`, { skip: database.skip ?? busBackend.skip }, () => {
      let testDatabase: TestDatabase;
      let store: Store;
      let buses: [Bus, Bus];
      let alpha: Node;
      let beta: Node;
      const orgId = newId('org');

      /** A registered device, offline. */
      const newDevice = async () => {
        const now = nowIso();
        const id = newId('dev');
        await store.db
          .insertInto('devices')
          .values({ id, org_id: orgId, name: id, model: null, firmware: null, metadata: '{}', last_seen_at: null, connected_node: null, reported: '{}', reported_version: 0, desired: '{}', desired_version: 0, external_id: null, public_key: null, checkin_at: null, capabilities: '{}', created_at: now, updated_at: now })
          .execute();
        return { id, orgId };
      };
      const connectedNode = async (deviceId: string) =>
        (await store.db.selectFrom('devices').select('connected_node').where('id', '=', deviceId).executeTakeFirstOrThrow()).connected_node;

      /** The presence events of a device as a node hears them. */
      const presence = (node: Node, deviceId: string) => {
        const heard: HubEvent[] = [];
        const stop = node.events.listen((event) => {
          if (event.deviceId === deviceId) heard.push(event);
        });
        return { heard, stop, until: (count: number) => readUntil(() => heard.length, (n) => n >= count) };
      };

      before(async () => {
        testDatabase = await database.create();
        store = openStore(testDatabase.url);
        await store.migrate();
        const now = nowIso();
        await store.db.insertInto('organizations').values({ id: orgId, slug: 'links', name: 'Links', created_at: now, updated_at: now }).execute();
        buses = await busBackend.nodes();
        alpha = await startNode('node_alpha', store, buses[0]);
        beta = await startNode('node_beta', store, buses[1]);
      });
      after(async () => {
        for (const node of [alpha, beta]) {
          await node?.links.close();
          await node?.events.close();
        }
        await Promise.all(buses?.map((bus) => bus.close()) ?? []);
        await store?.close();
        await testDatabase?.drop();
      });

      it('a call reaches the device on whichever node holds its socket', async () => {
        const device = await newDevice();
        const socket = fakeLink(async (method, params) => (params === undefined ? { method } : { method, params }));
        const detach = await alpha.links.attach(device, socket.link);
        assert.ok(alpha.links.isLocal(device.id));
        assert.ok(!beta.links.isLocal(device.id));
        assert.equal(await connectedNode(device.id), 'node_alpha');
        const okBefore = await callCount(beta, 'ok');
        assert.deepEqual(await beta.links.call(device.id, 'Switch.Set', { id: 0, on: true }), { method: 'Switch.Set', params: { id: 0, on: true } });
        assert.deepEqual(await alpha.links.call(device.id, 'Shelly.GetStatus'), { method: 'Shelly.GetStatus' });
        assert.deepEqual(await beta.links.call(device.id, 'Sum', [1, 2]), { method: 'Sum', params: [1, 2] });
        assert.equal(await callCount(beta, 'ok'), okBefore + 2, 'counted once, by the node that was asked');
        assert.equal(alpha.links.localCount, 1);
        await detach();
        assert.equal(alpha.links.localCount, 0);
      });

      it("a device's answer of null is an answer", async () => {
        const device = await newDevice();
        const detach = await alpha.links.attach(device, fakeLink(async () => undefined).link);
        assert.equal(await beta.links.call(device.id, 'Shelly.Reboot'), null);
        await detach();
      });

      it("carries the device's error back with its code", async () => {
        const device = await newDevice();
        const deviceError = new FleetError('device_error', 'Switch.Set failed on the device: Bad id=7', { details: { code: -105, message: 'Bad id=7' } });
        const detach = await alpha.links.attach(device, fakeLink(async () => Promise.reject(deviceError)).link);
        await rejectsWith(() => alpha.links.call(device.id, 'Switch.Set', { id: 7 }), 'device_error', { code: -105, message: 'Bad id=7' });
        const errorsBefore = await callCount(beta, 'error');
        await rejectsWith(() => beta.links.call(device.id, 'Switch.Set', { id: 7 }), 'device_error', { code: -105, message: 'Bad id=7' });
        assert.equal(await callCount(beta, 'error'), errorsBefore + 1);
        await detach();
      });

      it('a call waits at most the call timeout, less when asked; a device that does not answer times out', async () => {
        const device = await newDevice();
        const socket = fakeLink(async (method, _params, timeoutMs) => {
          throw new FleetError('device_timeout', `The device did not answer ${method} within ${timeoutMs} ms`, { details: { method, timeoutMs } });
        });
        const detach = await alpha.links.attach(device, socket.link);
        const timeoutsBefore = await callCount(beta, 'timeout');
        await rejectsWith(() => beta.links.call(device.id, 'Shelly.GetStatus', undefined, { timeoutMs: 60_000 }), 'device_timeout');
        await rejectsWith(() => beta.links.call(device.id, 'Shelly.GetStatus', undefined, { timeoutMs: 50 }), 'device_timeout');
        assert.deepEqual(socket.calls.map((c) => c.timeoutMs), [callTimeoutMs, 50]);
        assert.equal(await callCount(beta, 'timeout'), timeoutsBefore + 2);
        await rejectsWith(() => beta.links.call(device.id, 'Shelly.GetStatus', undefined, { timeoutMs: 0 }), 'bad_request');
        await rejectsWith(() => beta.links.call(device.id, 'Shelly.GetStatus', undefined, { timeoutMs: 1.5 }), 'bad_request');
        await detach();
      });

      it('a node that never answers for its device ends in device_timeout, not a hang', async () => {
        const device = await newDevice();
        const detach = await alpha.links.attach(device, fakeLink(() => new Promise(() => {})).link);
        const started = Date.now();
        await rejectsWith(() => beta.links.call(device.id, 'Shelly.GetStatus', undefined, { timeoutMs: 20 }), 'device_timeout');
        assert.ok(Date.now() - started < 5000);
        await detach();
      });

      it('a device connected nowhere is offline', async () => {
        const device = await newDevice();
        const offlineBefore = await callCount(beta, 'offline');
        await rejectsWith(() => beta.links.call(device.id, 'Shelly.GetStatus'), 'unavailable', { reason: 'device_offline' });
        const detach = await alpha.links.attach(device, fakeLink().link);
        await detach();
        await rejectsWith(() => beta.links.call(device.id, 'Shelly.GetStatus'), 'unavailable', { reason: 'device_offline' });
        await rejectsWith(() => alpha.links.call(device.id, 'Shelly.GetStatus'), 'unavailable', { reason: 'device_offline' });
        assert.equal(await callCount(beta, 'offline'), offlineBefore + 2);
      });

      for (const hostile of ['dev_x.claim', 'dev_x.*', '>', '*', '', 'dev x', 'dev_x\n', 'a'.repeat(300)]) {
        it(`refuses to call ${JSON.stringify(hostile).slice(0, 30)}, which is no device id`, async () => {
          await rejectsWith(() => beta.links.call(hostile, 'Shelly.GetStatus'), 'bad_request');
        });
      }

      it('the device goes online and offline in the store and for watchers on every node', async () => {
        const device = await newDevice();
        const atBeta = presence(beta, device.id);
        const detach = await alpha.links.attach(device, fakeLink().link);
        const row = await store.db.selectFrom('devices').select(['connected_node', 'last_seen_at']).where('id', '=', device.id).executeTakeFirstOrThrow();
        assert.equal(row.connected_node, 'node_alpha');
        assert.ok(row.last_seen_at);
        await detach();
        assert.equal(await connectedNode(device.id), null);
        await atBeta.until(2);
        assert.deepEqual(
          atBeta.heard.map((e) => [e.name, e.orgId, e.data]),
          [
            ['device.online', orgId, { node: 'node_alpha' }],
            ['device.offline', orgId, { node: 'node_alpha', reason: 'disconnected' }],
          ],
        );
        await detach();
        assert.equal(atBeta.heard.length, 2, 'detaching twice says nothing more');
        atBeta.stop();
      });

      it('a newer connection on another node replaces the older, which stays closed without taking the device offline', async () => {
        const device = await newDevice();
        const atAlpha = presence(alpha, device.id);
        const older = fakeLink(async () => 'older');
        const newer = fakeLink(async () => 'newer');
        const detachOlder = await alpha.links.attach(device, older.link);
        // The bus orders what one node publishes, not what two do: the first event is in before the second is sent.
        await atAlpha.until(1);
        const detachNewer = await beta.links.attach(device, newer.link);
        await readUntil(() => older.closes, (closes) => closes.length > 0);
        assert.deepEqual(older.closes, [[closeCodes.replaced, 'replaced by a newer connection']]);
        assert.equal(closeCodes.replaced, 4000);
        assert.ok(!alpha.links.isLocal(device.id));
        // The adapter detaches when the older socket has closed.
        await detachOlder();
        assert.equal(await connectedNode(device.id), 'node_beta');
        assert.equal(await alpha.links.call(device.id, 'Shelly.GetStatus'), 'newer');
        assert.equal(await beta.links.call(device.id, 'Shelly.GetStatus'), 'newer');
        assert.deepEqual(newer.closes, []);
        await atAlpha.until(2);
        assert.deepEqual(atAlpha.heard.map((e) => [e.name, e.data.node]), [['device.online', 'node_alpha'], ['device.online', 'node_beta']]);
        await detachNewer();
        await atAlpha.until(3);
        assert.deepEqual(atAlpha.heard.map((e) => e.name), ['device.online', 'device.online', 'device.offline']);
        assert.equal(await connectedNode(device.id), null);
        atAlpha.stop();
      });

      it('a newer connection on the same node closes the older directly', async () => {
        const device = await newDevice();
        const older = fakeLink(async () => 'older');
        const newer = fakeLink(async () => 'newer');
        const linked = alpha.links.localCount;
        const detachOlder = await alpha.links.attach(device, older.link);
        const detachNewer = await alpha.links.attach(device, newer.link);
        assert.deepEqual(older.closes, [[closeCodes.replaced, 'replaced by a newer connection']]);
        await detachOlder();
        assert.equal(await connectedNode(device.id), 'node_alpha');
        assert.equal(alpha.links.localCount, linked + 1);
        assert.equal(await beta.links.call(device.id, 'Shelly.GetStatus'), 'newer');
        assert.deepEqual(older.calls, []);
        await detachNewer();
        assert.equal(await connectedNode(device.id), null);
      });

      it('two connections of a device arriving at once on two nodes: one stays, and the store names its node', async () => {
        for (let round = 0; round < 5; round++) {
          const device = await newDevice();
          const first = fakeLink(async () => 'alpha');
          const second = fakeLink(async () => 'beta');
          const [detachFirst, detachSecond] = await Promise.all([alpha.links.attach(device, first.link), beta.links.attach(device, second.link)]);
          const [closedOne] = await readUntil(
            () => [first, second].filter((s) => s.closes.length > 0),
            (closed) => closed.length > 0,
          );
          const [survivor, survivorNode] = closedOne === first ? [second, 'node_beta'] : [first, 'node_alpha'];
          assert.deepEqual(survivor.closes, []);
          await (closedOne === first ? detachFirst : detachSecond)();
          await readUntil(() => connectedNode(device.id), (node) => node === survivorNode);
          assert.equal(await beta.links.call(device.id, 'Shelly.GetStatus'), survivorNode === 'node_alpha' ? 'alpha' : 'beta');
          await (closedOne === first ? detachSecond : detachFirst)();
        }
      });

      it("a change of the desired state reaches the device's socket, on whichever node, never older than the last", async () => {
        const device = await newDevice();
        const socket = fakeLink();
        const detach = await alpha.links.attach(device, socket.link);
        const state = (version: number, relay: boolean) => ({ desired: { relay }, desiredVersion: version, reported: {}, reportedVersion: 1, delta: { relay } });
        beta.links.desiredChanged(device.id, state(3, true));
        await readUntil(() => socket.desired.length, (n) => n === 1);
        assert.deepEqual(socket.desired, [{ desired: { relay: true }, version: 3, delta: { relay: true } }]);
        // Published by two nodes, the changes may cross on the way; the older one is not handed on after the newer.
        alpha.links.desiredChanged(device.id, state(5, false));
        beta.links.desiredChanged(device.id, state(4, true));
        await readUntil(() => socket.desired.at(-1), (last) => (last as { version: number }).version === 5);
        alpha.links.desiredChanged(device.id, state(2, true));
        alpha.links.desiredChanged(device.id, state(6, true));
        await readUntil(() => socket.desired.at(-1), (last) => (last as { version: number }).version === 6);
        const versions = socket.desired.map((s) => (s as { version: number }).version);
        assert.deepEqual(versions, [...versions].sort((a, b) => a - b));
        assert.ok(!versions.includes(2));
        await detach();
      });

      it('an attach that fails leaves the device neither linked nor online', async () => {
        const bus = new MemoryBus(recordingLogger().logger);
        const delta = await startNode('node_delta', store, bus);
        await bus.close();
        const device = await newDevice();
        await rejectsWith(() => delta.links.attach(device, fakeLink().link), 'unavailable', { reason: 'closed' });
        assert.ok(!delta.links.isLocal(device.id));
        assert.equal(await connectedNode(device.id), null);
        await delta.events.close();
      });

      it('closing a node takes its devices offline, saying why', async () => {
        const recorded = recordingLogger();
        const gamma = await startNode('node_gamma', store, buses[0], recorded.logger);
        const device = await newDevice();
        const atAlpha = presence(alpha, device.id);
        const socket = fakeLink();
        const detach = await gamma.links.attach(device, socket.link);
        await gamma.links.close();
        assert.equal(gamma.links.localCount, 0);
        assert.equal(await connectedNode(device.id), null);
        await atAlpha.until(2);
        assert.deepEqual(atAlpha.heard[1]!.data, { node: 'node_gamma', reason: 'shutdown' });
        await rejectsWith(() => alpha.links.call(device.id, 'Shelly.GetStatus'), 'unavailable', { reason: 'device_offline' });
        await detach();
        assert.equal(atAlpha.heard.length, 2);
        await gamma.events.close();
        atAlpha.stop();
      });
    });
  }
}
