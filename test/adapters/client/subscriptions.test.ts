import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newId } from '../../../src/core/ids.ts';
import type { HubEvent, NewHubEvent } from '../../../src/hub/events.ts';
import { systemActor } from '../../../src/services/actor.ts';
import type { Device } from '../../../src/services/devices.ts';
import { backends } from '../../helpers/backends.ts';
import { login, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { busBackends, natsTestUrl } from '../../hub/buses.ts';
import { memberKey, newDevice, newOrg, publish, RpcClient, wsUrl, type EventNotification } from './harness.ts';

/** Events to clients: who sees what, filters, catching up after a reconnect, and connections that fall behind. */

const ids = (notifications: EventNotification[], subscription?: string) => notifications.filter((n) => subscription === undefined || n.subscription === subscription).map((n) => n.event.id);

const databases = await backends();
const [memory, nats] = await busBackends();
/** Every database on the in-process bus, and the first database on NATS. */
const setups = [...databases.map((database) => ({ database, bus: memory! })), { database: databases[0]!, bus: nats! }];

for (const { database, bus } of setups) {
  describe(`client subscriptions [${database.name}, ${bus.name}]`, { skip: database.skip ?? bus.skip }, () => {
    let server: TestServer;
    let org: string;
    let otherOrg: string;
    let lamp: Device;
    let pump: Device;
    let stranger: Device;
    let group: string;
    const clients: RpcClient[] = [];
    const open = async (token: string) => {
      const client = await RpcClient.open(wsUrl(server), token);
      clients.push(client);
      return client;
    };
    const event = (device: Device, name: NewHubEvent['name'], data: NewHubEvent['data'] = {}): NewHubEvent => ({ orgId: device.orgId, deviceId: device.id, name, data });

    before(async () => {
      server = await startTestServer(database, bus.name === 'nats' ? { bus: natsTestUrl } : {});
      org = server.admin.orgId;
      otherOrg = await newOrg(server, 'elsewhere');
      lamp = await newDevice(server, org, 'lamp', { tags: ['light'], externalId: 'shelly-lamp' });
      pump = await newDevice(server, org, 'pump', { tags: ['water'] });
      stranger = await newDevice(server, otherOrg, 'stranger', { tags: ['light'] });
      group = (await server.services.groups.create(systemActor, org, { name: 'lamps' })).id;
      await server.services.groups.addMembers(systemActor, org, group, [lamp.id]);
    });
    after(async () => {
      for (const client of clients) client.close();
      await server?.close();
    });

    it('filters by device, tag, group, event name, notification and status fields', async () => {
      const client = await open(server.admin.token);
      const subscribe = async (filter: object) => (await client.result('Subscribe', { org: 'default', filter })).subscription as string;
      const byDevice = await subscribe({ deviceIds: ['shelly-lamp'] });
      const byTag = await subscribe({ tags: ['water'] });
      const byGroup = await subscribe({ groups: [group] });
      const byName = await subscribe({ events: ['device.online'] });
      const noEnergy = await subscribe({ status: { deny: ['*:aenergy'] } });
      const outputs = await subscribe({ events: ['device.status'], status: { allow: ['switch:output'] } });
      const pushes = await subscribe({ events: ['device.notification'], notifications: ['single_push'] });
      // Created last, so that when it has the last event every other subscription has had it too.
      const everything = (await client.result('Subscribe', { org })).subscription as string;

      const sent = [
        await publish(server, event(lamp, 'device.online', { node: 'n' })),
        await publish(server, event(pump, 'device.online', { node: 'n' })),
        await publish(server, event(lamp, 'device.status', { changed: { 'switch:0': { output: true, aenergy: { total: 1 } }, ts: 5 } })),
        await publish(server, event(pump, 'device.status', { changed: { 'switch:0': { aenergy: { total: 2 } } } })),
        await publish(server, event(lamp, 'device.notification', { method: 'NotifyEvent', event: 'single_push', component: 'input:0' })),
        await publish(server, event(lamp, 'device.notification', { method: 'NotifyEvent', event: 'long_push', component: 'input:0' })),
        await publish(server, event(pump, 'device.info', { info: { fw: '1.0' } })),
        await publish(server, event(stranger, 'device.online', { node: 'n' })),
      ];
      const [lampOnline, pumpOnline, lampStatus, pumpStatus, push, longPush, pumpInfo] = sent.map((e) => e.id);
      await client.until(() => ids(client.events, everything).includes(pumpInfo!), 'the last event');

      assert.deepEqual(ids(client.events, everything), [lampOnline, pumpOnline, lampStatus, pumpStatus, push, longPush, pumpInfo], 'everything of the organization, in order');
      assert.deepEqual(ids(client.events, byDevice), [lampOnline, lampStatus, push, longPush]);
      assert.deepEqual(ids(client.events, byTag), [pumpOnline, pumpStatus, pumpInfo]);
      assert.deepEqual(ids(client.events, byGroup), [lampOnline, lampStatus, push, longPush]);
      assert.deepEqual(ids(client.events, byName), [lampOnline, pumpOnline]);
      assert.deepEqual(ids(client.events, noEnergy), [lampOnline, pumpOnline, lampStatus, push, longPush, pumpInfo]);
      assert.deepEqual(client.events.find((n) => n.subscription === noEnergy && n.event.id === lampStatus)!.event.data.changed, { 'switch:0': { output: true }, ts: 5 });
      assert.deepEqual(ids(client.events, outputs), [lampStatus]);
      assert.deepEqual(client.events.find((n) => n.subscription === outputs)!.event.data.changed, { 'switch:0': { output: true } });
      assert.deepEqual(ids(client.events, pushes), [push]);

      assert.equal(await client.result('Unsubscribe', { subscription: byDevice }), true);
      assert.equal(await client.result('Unsubscribe', { subscription: byDevice }), false);
      const after = await publish(server, event(lamp, 'device.offline', { node: 'n', reason: 'gone' }));
      await client.until(() => ids(client.events, everything).includes(after.id), 'the offline event');
      assert.ok(!ids(client.events, byDevice).includes(after.id));
    });

    it("keeps other organizations' events and admission events from those who may not see them", async () => {
      const outsider = await open((await memberKey(server, otherOrg, 'outsider@example.com', 'admin')).key);
      const viewer = await open((await memberKey(server, org, 'watcher@example.com', 'viewer')).key);
      const admin = await open((await memberKey(server, org, 'orgadmin@example.com', 'admin')).key);
      const system = await open(server.admin.token);
      assert.equal((await outsider.error('Subscribe', { org })).code, -32004);
      assert.equal((await outsider.error('Subscribe', { org: 'default' })).code, -32004);
      for (const client of [outsider, viewer, admin, system]) await client.result('Subscribe', {});

      const mine = await publish(server, event(lamp, 'device.online', { node: 'n' }));
      const pending = await publish(server, { orgId: org, deviceId: null, name: 'admission.pending', data: { pendingId: 'pnd_1', externalId: 'new-1', endpoint: 'shelly', info: {} } });
      const orphan = await publish(server, { orgId: null, deviceId: null, name: 'admission.pending', data: { pendingId: 'pnd_2', externalId: 'new-2', endpoint: 'shelly', info: {} } });
      const theirs = await publish(server, event(stranger, 'device.online', { node: 'n' }));

      await system.until(() => ids(system.events).includes(theirs.id), 'the last event for the system admin');
      assert.deepEqual(ids(system.events), [mine.id, pending.id, orphan.id, theirs.id]);
      await outsider.until(() => ids(outsider.events).includes(theirs.id), 'its own event');
      assert.deepEqual(ids(outsider.events), [theirs.id]);
      // Each has had the last event of its own organization: nothing else is on its way.
      const fence = await publish(server, event(pump, 'device.info', { info: {} }));
      await viewer.until(() => ids(viewer.events).includes(fence.id), 'the fence');
      await admin.until(() => ids(admin.events).includes(fence.id), 'the fence');
      assert.deepEqual(ids(viewer.events), [mine.id, fence.id]);
      assert.deepEqual(ids(admin.events), [mine.id, pending.id, fence.id]);
    });

    it('replays what a client missed exactly once, then live events, with no gap while events keep coming', async () => {
      const first = await open(server.admin.token);
      await first.result('Subscribe', { org });
      const seen = await publish(server, event(lamp, 'device.online', { node: 'n' }));
      await first.until(() => ids(first.events).includes(seen.id), 'the first event');
      first.close();
      await first.closed;

      const missed: HubEvent[] = [];
      for (let i = 0; i < 5; i++) missed.push(await publish(server, event(pump, 'device.status', { changed: { n: i } })));
      const again = await open(server.admin.token);
      // Events keep being published while the subscription replays and goes live.
      const during: HubEvent[] = [];
      let publishing = true;
      const publisher = (async () => {
        while (publishing) {
          during.push(await publish(server, event(lamp, 'device.status', { changed: { busy: during.length } })));
          // SQLite answers at once: without a turn of the event loop the socket would never be read.
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const result = await again.result('Subscribe', { org, lastEventId: seen.id });
      await new Promise((resolve) => setTimeout(resolve, 100));
      publishing = false;
      await publisher;
      const live = [...during, await publish(server, event(pump, 'device.info', { info: {} }))];
      assert.ok(during.length > 0, 'events were published during the replay');
      assert.equal(result.resync, false);
      assert.ok(result.replayed >= 5);
      const expected = [...missed, ...live].map((e) => e.id).sort();
      await again.until(() => ids(again.events).includes(live.at(-1)!.id), 'the last live event');
      const received = ids(again.events);
      assert.equal(new Set(received).size, received.length, 'no event twice');
      assert.deepEqual([...received].sort(), expected, 'every event after the last one seen');
      assert.deepEqual(received.slice(0, 5), missed.map((e) => e.id), 'the missed ones first, in order');
    });

    it('tells a client that missed too much to resync', async () => {
      const client = await open(server.admin.token);
      const ancient = newId('evt', Date.now() - 3 * 3600_000);
      const result = await client.result('Subscribe', { org, lastEventId: ancient });
      assert.deepEqual({ replayed: result.replayed, resync: result.resync }, { replayed: 0, resync: true });
      const live = await publish(server, event(lamp, 'device.online', { node: 'n' }));
      await client.until(() => ids(client.events).includes(live.id), 'the live event');
      assert.equal((await client.error('Subscribe', { org, lastEventId: 'evt_not-an-id' })).code, -32602);
    });

    it('holds at most 100 subscriptions per connection', async () => {
      const client = await open(server.admin.token);
      for (let i = 0; i < 100; i++) await client.result('Subscribe', { org });
      const refused = await client.error('Subscribe', { org });
      assert.match(refused.message, /100/);
      assert.equal((await client.result('Device.List', { org })).items.length > 0, true);
    });
  });
}

for (const backend of await backends()) {
  describe(`client connections that must end [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let device: Device;

    before(async () => {
      // Credentials are checked again every second; a small send queue fills quickly.
      server = await startTestServer(backend, { cacheTtl: '1', wsSendQueue: '262144' });
      org = server.admin.orgId;
      device = await newDevice(server, org, 'chatty');
    });
    after(async () => {
      await server?.close();
    });

    it('closes a connection whose API key is revoked, or whose session ended, with 4001', async () => {
      const { key, keyId, token } = await memberKey(server, org, 'revoked@example.com', 'operator');
      const withKey = await RpcClient.open(wsUrl(server), key);
      await withKey.result('Subscribe', {});
      const revoked = await request(server.url, 'DELETE', `/api/orgs/${org}/api-keys/${keyId}`, { token });
      assert.equal(revoked.status, 200);
      assert.deepEqual(await withKey.closed, { code: 4001, reason: 'credentials revoked' });

      const session = await login(server.url, 'revoked@example.com', 'member-password-1');
      const withToken = await RpcClient.open(wsUrl(server), session.accessToken);
      assert.equal((await request(server.url, 'POST', '/api/auth/logout', { token: session.accessToken })).status, 204);
      assert.deepEqual(await withToken.closed, { code: 4001, reason: 'credentials revoked' });
    });

    it('closes a client that does not read with 4008 while another receives every event', async () => {
      const slow = await RpcClient.open(wsUrl(server), server.admin.token);
      const fast = await RpcClient.open(wsUrl(server), server.admin.token);
      await slow.result('Subscribe', { org });
      await fast.result('Subscribe', { org });
      slow.ws.pause();
      const padding = 'x'.repeat(32 * 1024);
      const sent: string[] = [];
      let resumed = false;
      for (let i = 0; i < 400; i++) {
        sent.push((await publish(server, { orgId: org, deviceId: device.id, name: 'device.status', data: { changed: { i, padding } } })).id);
        await new Promise((resolve) => setImmediate(resolve));
        if (!resumed && i % 10 === 9 && (await slowDisconnects(server)) > 0) {
          // Read what is waiting, so that the close frame behind it arrives.
          slow.ws.resume();
          resumed = true;
        }
      }
      assert.ok(resumed, 'the slow client was disconnected');
      assert.equal((await slow.closed).code, 4008);
      await fast.until(() => fast.events.length === sent.length, `all ${sent.length} events (have ${fast.events.length})`, 30_000);
      assert.deepEqual(ids(fast.events), sent);
      fast.close();
    });
  });
}

async function slowDisconnects(server: TestServer): Promise<number> {
  const metrics = await request(server.url, 'GET', '/metrics');
  const line = String(metrics.body)
    .split('\n')
    .find((l) => l.startsWith('fleetd_slow_client_disconnects_total{endpoint="clients"}'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}
