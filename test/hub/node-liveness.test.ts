import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { newId } from '../../src/core/ids.ts';
import { DeviceLinks } from '../../src/hub/device-links.ts';
import { EventStream, type HubEvent } from '../../src/hub/events.ts';
import { MemoryBus } from '../../src/hub/memory-bus.ts';
import { HubMetrics } from '../../src/hub/metrics.ts';
import { NodeLiveness } from '../../src/hub/node-liveness.ts';
import type { Logger } from '../../src/log.ts';
import { nowIso } from '../../src/store/page.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';
import { recordingLogger } from '../helpers/logger.ts';
import { readUntil } from '../helpers/waiting.ts';

/** Short enough for a test, long enough that a live node on a busy machine is never late by three beats. */
const heartbeatMs = 50;
const deadAfterMs = 300;
/** A heartbeat long past any deadAfterMs: a node that crashed. */
const longAgo = '2000-01-01T00:00:00.000Z';

for (const database of await backends()) {
  describe(`node liveness [${database.name}]`, { skip: database.skip }, () => {
    let testDatabase: TestDatabase;
    let store: Store;
    let bus: MemoryBus;
    /** Hears every hub event of every node of the test. */
    let observer: EventStream;
    const heard: HubEvent[] = [];
    const orgId = newId('org');
    /** What every test started, closed after it if the test did not. */
    const open: Array<{ close(): Promise<void> }> = [];

    const silent = () => recordingLogger('silent').logger;

    /**
     * One node: its event stream and liveness, and on PostgreSQL its own pool, so that several nodes
     * write at once. On SQLite the nodes share the one connection, as they would the one process a
     * SQLite database is served by (better-sqlite3 waits for a lock synchronously: two connections
     * of one process would wait on each other); `ownStore` gives a node one of its own all the same.
     */
    const startNode = async (options: { heartbeatMs?: number; deadAfterMs?: number; logger?: Logger; ownStore?: boolean } = {}) => {
      const logger = options.logger ?? silent();
      const ownStore = options.ownStore || store.kind === 'postgres';
      const nodeStore = ownStore ? openStore(testDatabase.url) : store;
      const events = new EventStream({ store: nodeStore, bus, logger, retentionSeconds: 3600, replayMax: 1000 });
      await events.start();
      const id = newId('node');
      const intervals = options.heartbeatMs === undefined ? { heartbeatMs, deadAfterMs } : { heartbeatMs: options.heartbeatMs, deadAfterMs: options.deadAfterMs };
      const liveness = new NodeLiveness({ store: nodeStore, events, nodeId: id, logger, ...intervals });
      let closed = false;
      let storeClosed = !ownStore;
      const node = {
        id,
        store: nodeStore,
        events,
        liveness,
        /** The database goes away under the node. */
        async loseStore() {
          assert.ok(ownStore, 'a node loses only a store of its own');
          storeClosed = true;
          await nodeStore.close();
        },
        /** A clean stop. */
        async close() {
          if (closed) return;
          closed = true;
          await liveness.close();
          await events.close();
          if (!storeClosed) await nodeStore.close();
        },
      };
      open.push(node);
      await liveness.start();
      return node;
    };

    const newDevice = async (connectedNode: string | null, lastSeen: string | null = null) => {
      const now = nowIso();
      const id = newId('dev');
      await store.db
        .insertInto('devices')
        .values({ id, org_id: orgId, name: id, model: null, firmware: null, metadata: '{}', last_seen_at: lastSeen, connected_node: connectedNode, reported: '{}', reported_version: 0, desired: '{}', desired_version: 0, external_id: null, public_key: null, checkin_at: null, capabilities: '{}', created_at: now, updated_at: now })
        .execute();
      return id;
    };
    const newShellSession = async (node: string, deviceId: string) => {
      const id = newId('shl');
      await store.db
        .insertInto('shell_sessions')
        .values({ id, org_id: orgId, device_id: deviceId, opened_by_type: 'user', opened_by_id: 'usr_1', status: 'attached', node, created_at: nowIso(), attached_at: nowIso(), closed_at: null, close_reason: null, bytes_to_device: 0, bytes_from_device: 0 })
        .execute();
      return id;
    };
    const shellSession = (id: string) => store.db.selectFrom('shell_sessions').select(['status', 'close_reason']).where('id', '=', id).executeTakeFirstOrThrow();
    const connectedNode = async (deviceId: string) => (await store.db.selectFrom('devices').select('connected_node').where('id', '=', deviceId).executeTakeFirstOrThrow()).connected_node;
    const nodeRow = (id: string) => store.db.selectFrom('hub_nodes').selectAll().where('id', '=', id).executeTakeFirst();
    const insertNode = (id: string, seenAt: string) => store.db.insertInto('hub_nodes').values({ id, started_at: seenAt, seen_at: seenAt }).execute();
    const eventsOf = (deviceIds: string[]) => heard.filter((e) => e.deviceId !== null && deviceIds.includes(e.deviceId));
    const offlineEvents = (deviceIds: string[]) => eventsOf(deviceIds).filter((e) => e.name === 'device.offline');

    before(async () => {
      testDatabase = await database.create();
      store = openStore(testDatabase.url);
      await store.migrate();
      const now = nowIso();
      await store.db.insertInto('organizations').values({ id: orgId, slug: 'liveness', name: 'Liveness', created_at: now, updated_at: now }).execute();
      bus = new MemoryBus(silent());
      observer = new EventStream({ store, bus, logger: silent(), retentionSeconds: 3600, replayMax: 1000 });
      await observer.start();
      observer.listen((event) => void heard.push(event));
    });
    after(async () => {
      for (const node of open) await node.close();
      await observer?.close();
      await bus?.close();
      await store?.close();
      await testDatabase?.drop();
    });

    it('a node that crashed: the next node to sweep takes its devices offline, one device.offline each', async () => {
      const crashed = newId('node');
      await insertNode(crashed, longAgo);
      const earlier = '1999-12-31T00:00:00.000Z';
      const later = nowIso();
      const devices = [await newDevice(crashed, earlier), await newDevice(crashed, later)];
      const survivor = await startNode();
      const own = await newDevice(survivor.id);
      // start() sweeps before it returns.
      assert.deepEqual(await Promise.all(devices.map(connectedNode)), [null, null]);
      assert.equal(await nodeRow(crashed), undefined, 'the dead node is no longer listed');
      assert.equal(await connectedNode(own), survivor.id);
      // Last seen: the dead node's last heartbeat, unless the device was seen after it.
      const lastSeen = await store.db.selectFrom('devices').select(['id', 'last_seen_at']).where('id', 'in', devices).execute();
      assert.deepEqual(Object.fromEntries(lastSeen.map((d) => [d.id, d.last_seen_at])), { [devices[0]!]: longAgo, [devices[1]!]: later });

      await readUntil(() => offlineEvents(devices).length, (n) => n === 2);
      for (const deviceId of devices) {
        const [event, ...more] = eventsOf([deviceId]);
        assert.deepEqual(more, []);
        assert.deepEqual([event!.name, event!.orgId, event!.deviceId, event!.data], ['device.offline', orgId, deviceId, { node: crashed, reason: 'node_lost' }]);
      }
      await sleep(4 * heartbeatMs);
      assert.equal(offlineEvents(devices).length, 2, 'later sweeps say nothing more');
      await survivor.close();
    });

    it('a node whose heartbeat stopped: another node takes its devices offline once it is older than deadAfterMs, not before', async () => {
      // Started, then stopped without close(): its row stays, its heartbeat no longer moves.
      const started = Date.now();
      const stopped = await startNode({ heartbeatMs: 60_000 });
      const devices = [await newDevice(stopped.id), await newDevice(stopped.id), await newDevice(stopped.id)];
      const sweeper = await startNode();
      await sleep(deadAfterMs / 3);
      if (Date.now() - started < deadAfterMs - 50) {
        assert.deepEqual(await Promise.all(devices.map(connectedNode)), [stopped.id, stopped.id, stopped.id], 'swept while its heartbeat was still fresh');
      }
      await readUntil(() => Promise.all(devices.map(connectedNode)), (nodes) => nodes.every((n) => n === null), 5000);
      assert.ok(Date.now() - started >= deadAfterMs - 50, `swept after ${Date.now() - started} ms`);
      assert.equal(await nodeRow(stopped.id), undefined);
      await readUntil(() => offlineEvents(devices).length, (n) => n === 3);
      await sleep(4 * heartbeatMs);
      assert.deepEqual(
        offlineEvents(devices).map((e) => [e.deviceId, e.data]).sort(),
        devices.map((id) => [id, { node: stopped.id, reason: 'node_lost' }]).sort(),
      );
      await sweeper.close();
      await stopped.close();
    });

    it("closes the shell sessions of a node that is gone (crashed before, or its heartbeat stopped), not a live node's", async () => {
      const crashed = newId('node');
      const device = await newDevice(null);
      const ofCrashed = await newShellSession(crashed, device);
      const stopped = await startNode({ heartbeatMs: 60_000 });
      const ofStopped = await newShellSession(stopped.id, device);
      const sweeper = await startNode();
      const ofSweeper = await newShellSession(sweeper.id, device);
      assert.deepEqual(await shellSession(ofCrashed), { status: 'closed', close_reason: 'node_lost' }, 'closed when a node starts');
      await readUntil(() => shellSession(ofStopped), (session) => session.status === 'closed', 5000);
      assert.equal((await shellSession(ofStopped)).close_reason, 'node_lost');
      assert.equal((await shellSession(ofSweeper)).status, 'attached');
      await sweeper.close();
      await stopped.close();
    });

    it('several nodes sweeping at once announce each device once', async () => {
      const dead = [newId('node'), newId('node'), newId('node'), newId('node')];
      const devices: string[] = [];
      for (const node of dead) {
        await insertNode(node, longAgo);
        for (let i = 0; i < 5; i++) devices.push(await newDevice(node));
      }
      // Each start() sweeps at once (on PostgreSQL each on its own connections), then each timer does.
      const sweepers = await Promise.all([startNode(), startNode(), startNode()]);
      await readUntil(() => Promise.all(devices.map(connectedNode)), (nodes) => nodes.every((n) => n === null));
      await readUntil(() => offlineEvents(devices).length, (n) => n >= devices.length);
      await sleep(4 * heartbeatMs);
      const perDevice = new Map<string, number>();
      for (const event of offlineEvents(devices)) perDevice.set(event.deviceId!, (perDevice.get(event.deviceId!) ?? 0) + 1);
      assert.deepEqual([...perDevice.keys()].sort(), [...devices].sort());
      assert.deepEqual([...new Set(perDevice.values())], [1], 'a device announced more than once');
      for (const node of dead) assert.equal(await nodeRow(node), undefined);
      for (const sweeper of sweepers) await sweeper.close();
    });

    it("a live node's devices are left alone", async () => {
      const live = await startNode();
      const devices = [await newDevice(live.id), await newDevice(live.id)];
      const sweeper = await startNode();
      const firstBeat = (await nodeRow(live.id))!.seen_at;
      await sleep(3 * deadAfterMs);
      assert.deepEqual(await Promise.all(devices.map(connectedNode)), [live.id, live.id]);
      assert.deepEqual(eventsOf(devices), []);
      const row = await nodeRow(live.id);
      assert.ok(row && row.seen_at > firstBeat, 'the heartbeat moves');
      assert.match(row.seen_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO time like every other column');
      await sweeper.close();
      await live.close();
    });

    it('close() removes the node from hub_nodes and leaves the devices to DeviceLinks', async () => {
      const node = await startNode();
      const row = await nodeRow(node.id);
      assert.ok(row);
      assert.equal(row.started_at, row.seen_at);
      const device = await newDevice(node.id);
      await node.close();
      assert.equal(await nodeRow(node.id), undefined);
      // DeviceLinks.close() takes a node's devices offline before; liveness does not touch them.
      assert.equal(await connectedNode(device), node.id);
      await store.db.updateTable('devices').set({ connected_node: null }).where('id', '=', device).execute();
    });

    it('at start, devices naming a node hub_nodes does not list are taken offline', async () => {
      const gone = newId('node');
      const listed = newId('node');
      await insertNode(listed, nowIso());
      const orphans = [await newDevice(gone), await newDevice(gone)];
      const kept = await newDevice(listed);
      const node = await startNode();
      assert.deepEqual(await Promise.all(orphans.map(connectedNode)), [null, null]);
      assert.equal(await connectedNode(kept), listed);
      await readUntil(() => offlineEvents(orphans).length, (n) => n === 2);
      assert.deepEqual(
        offlineEvents(orphans).map((e) => [e.deviceId, e.orgId, e.data]).sort(),
        orphans.map((id) => [id, orgId, { node: gone, reason: 'node_lost' }]).sort(),
      );
      await node.close();
      await store.db.deleteFrom('hub_nodes').where('id', '=', listed).execute();
      await store.db.updateTable('devices').set({ connected_node: null }).where('id', '=', kept).execute();
    });

    it('a node taken for dead while alive lists itself again and writes its devices back', async () => {
      const logger = silent();
      const node = await startNode({ heartbeatMs: 200, deadAfterMs: 10_000, logger });
      const registry = new Registry();
      const links = new DeviceLinks({ store: node.store, bus, events: node.events, nodeId: node.id, logger, metrics: new HubMetrics(registry), callTimeoutMs: 1000 });
      node.liveness.onSwept(() => links.reclaim());
      const device = await newDevice(null);
      const detach = await links.attach({ id: device, orgId }, { call: async () => null, close: () => {} });
      await readUntil(() => eventsOf([device]).length, (n) => n === 1);
      // Right after a heartbeat, the node stalls (as far as the others can tell) for longer than deadAfterMs.
      const beat = (await nodeRow(node.id))!.seen_at;
      await readUntil(async () => (await nodeRow(node.id))!.seen_at, (seen) => seen !== beat);
      await store.db.updateTable('hub_nodes').set({ seen_at: longAgo }).where('id', '=', node.id).execute();
      const sweeper = await startNode();
      assert.equal(await connectedNode(device), null, 'swept');
      // Its next heartbeat finds its row gone.
      await readUntil(() => connectedNode(device), (n) => n === node.id);
      assert.ok(await nodeRow(node.id));
      await readUntil(() => eventsOf([device]).length, (n) => n === 3);
      assert.deepEqual(
        eventsOf([device]).map((e) => [e.name, e.data]),
        [
          ['device.online', { node: node.id }],
          ['device.offline', { node: node.id, reason: 'node_lost' }],
          ['device.online', { node: node.id }],
        ],
      );
      await detach();
      await links.close();
      await sweeper.close();
      await node.close();
    });

    it('a failing heartbeat or sweep is logged, and the timer keeps going', async () => {
      const recorded = recordingLogger('warn');
      const node = await startNode({ logger: recorded.logger, ownStore: true });
      await node.loseStore();
      await readUntil(
        () => recorded.entries.filter((e) => e.msg === 'node liveness: heartbeat or sweep failed').length,
        (n) => n >= 2,
      );
      await node.close();
      assert.ok(recorded.entries.some((e) => e.msg === 'could not remove this node from hub_nodes'));
      await store.db.deleteFrom('hub_nodes').where('id', '=', node.id).execute();
    });
  });
}
