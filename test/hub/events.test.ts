import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FleetError } from '../../src/core/errors.ts';
import { newId } from '../../src/core/ids.ts';
import type { Bus } from '../../src/hub/bus.ts';
import { EventStream, type HubEvent, type NewHubEvent } from '../../src/hub/events.ts';
import { MemoryBus } from '../../src/hub/memory-bus.ts';
import { createLogger } from '../../src/log.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';
import { recordingLogger } from '../helpers/logger.ts';
import { busBackends, fence, uniquePrefix } from './buses.ts';

const retentionSeconds = 3600;
const replayMax = 5;

/** An organization id no other test uses: other test files share the NATS server and `fleetd.events`. */
const freshOrg = () => `org_${randomBytes(8).toString('hex')}`;

/** The events of `orgId` a stream hands its listeners, and a way to wait for a number of them. */
function collect(stream: EventStream, orgId: string) {
  const events: HubEvent[] = [];
  let wake = () => {};
  const stop = stream.listen((event) => {
    if (event.orgId !== orgId) return;
    events.push(event);
    wake();
  });
  return {
    events,
    stop,
    async until(count: number, ms = 10_000): Promise<HubEvent[]> {
      const deadline = Date.now() + ms;
      while (events.length < count) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) assert.fail(`expected ${count} events, received ${events.length}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, remaining);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return events;
    },
  };
}

const online = (orgId: string | null, deviceId = 'dev_a'): NewHubEvent => ({ orgId, deviceId, name: 'device.online', data: { node: 'node_a' } });

async function refuses(work: () => Promise<unknown>, code: FleetError['code']): Promise<void> {
  await assert.rejects(work, (error: unknown) => error instanceof FleetError && error.code === code);
}

for (const database of await backends()) {
  for (const busBackend of await busBackends()) {
    describe(`event stream [${database.name}, ${busBackend.name}]`, { skip: database.skip ?? busBackend.skip }, () => {
      let testDatabase: TestDatabase;
      let store: Store;
      let buses: [Bus, Bus];
      /** Two nodes sharing one store and one bus. */
      let alpha: EventStream;
      let beta: EventStream;
      const recorded = recordingLogger();

      before(async () => {
        testDatabase = await database.create();
        store = openStore(testDatabase.url);
        await store.migrate();
        buses = await busBackend.nodes();
        alpha = new EventStream({ store, bus: buses[0], logger: recorded.logger, retentionSeconds, replayMax });
        beta = new EventStream({ store, bus: buses[1], logger: recorded.logger, retentionSeconds, replayMax });
        await alpha.start();
        await beta.start();
      });
      after(async () => {
        await alpha?.close();
        await beta?.close();
        await Promise.all(buses?.map((bus) => bus.close()) ?? []);
        await store?.close();
        await testDatabase?.drop();
      });

      it('every node hears each event once, wherever it was published', async () => {
        const org = freshOrg();
        const atAlpha = collect(alpha, org);
        const atBeta = collect(beta, org);
        const first = await alpha.publish(online(org));
        const second = await beta.publish({ orgId: org, deviceId: 'dev_a', name: 'device.offline', data: { node: 'node_b', reason: 'disconnected' } });
        await atAlpha.until(2);
        await atBeta.until(2);
        await fence(buses[0], buses[1], uniquePrefix());
        await fence(buses[1], buses[0], uniquePrefix());
        // Events of two nodes reach a third in either order: the bus orders what one node publishes.
        const byId = (events: HubEvent[]) => [...events].sort((a, b) => a.id.localeCompare(b.id));
        assert.deepEqual(byId(atAlpha.events), byId([first, second]));
        assert.deepEqual(byId(atBeta.events), byId([first, second]));
        assert.match(first.id, /^evt_[0-9a-z]{26}$/);
        assert.ok(!Number.isNaN(Date.parse(first.at)));
        assert.deepEqual(first.data, { node: 'node_a' });
        atAlpha.stop();
        atBeta.stop();
      });

      it('stores each event, its data as JSON text', async () => {
        const org = freshOrg();
        const event = await alpha.publish({ orgId: org, deviceId: 'dev_a', name: 'device.status', data: { changed: { 'switch:0': { output: true, apower: 8.5 } } } });
        const row = await store.db.selectFrom('hub_events').selectAll().where('id', '=', event.id).executeTakeFirstOrThrow();
        assert.deepEqual(row, { id: event.id, org_id: org, device_id: 'dev_a', name: 'device.status', data: '{"changed":{"switch:0":{"output":true,"apower":8.5}}}', at: event.at });
      });

      it("events of one device on one node keep their order, even when published without waiting", async () => {
        const org = freshOrg();
        const atBeta = collect(beta, org);
        const published = await Promise.all(Array.from({ length: 30 }, (_, i) => alpha.publish({ orgId: org, deviceId: 'dev_a', name: 'device.status', data: { changed: { n: i } } })));
        const received = await atBeta.until(30);
        assert.deepEqual(received.map((e) => e.data.changed), published.map((_, i) => ({ n: i })));
        assert.deepEqual(received.map((e) => e.id), published.map((e) => e.id));
        assert.deepEqual([...received.map((e) => e.id)].sort(), received.map((e) => e.id), 'ids increase in publish order');
        atBeta.stop();
      });

      it('refuses an event that is not a JSON value, and stores nothing of it', async () => {
        const org = freshOrg();
        await refuses(() => alpha.publish({ orgId: org, deviceId: 'dev_a', name: 'device.info', data: { info: Number.NaN } }), 'bad_request');
        await refuses(() => alpha.publish({ orgId: org, deviceId: 'dev_a', name: 'device.info', data: { info: new Date() as never } }), 'bad_request');
        const rows = await store.db.selectFrom('hub_events').select('id').where('org_id', '=', org).execute();
        assert.deepEqual(rows, []);
      });

      it('a listener that throws does not keep the others from the event; an unsubscribed one hears nothing', async () => {
        const org = freshOrg();
        const stopThrowing = beta.listen((event) => {
          if (event.orgId === org) throw new Error('listener bug');
        });
        const stopped = collect(beta, org);
        stopped.stop();
        const heard = collect(beta, org);
        await alpha.publish(online(org));
        await heard.until(1);
        assert.equal(stopped.events.length, 0);
        assert.ok(recorded.entries.some((entry) => entry.msg === 'hub event listener failed'));
        stopThrowing();
        heard.stop();
      });

      it('replays the events after an id, oldest first, of the organizations given', async () => {
        const org = freshOrg();
        const other = freshOrg();
        // One node: ids of several nodes within one millisecond do not follow the order of publishing.
        const mark = await alpha.publish(online(org));
        const mine1 = await alpha.publish(online(org, 'dev_b'));
        const theirs = await alpha.publish(online(other));
        const pending = await alpha.publish({ orgId: null, deviceId: null, name: 'admission.pending', data: { pendingId: 'pnd_1', externalId: 'shelly-x', endpoint: 'shelly', info: {} } });
        const mine2 = await alpha.publish(online(org, 'dev_c'));
        assert.deepEqual(await alpha.replay([org], mark.id), { events: [mine1, mine2], complete: true });
        assert.deepEqual(await beta.replay([org, other], mark.id), { events: [mine1, theirs, mine2], complete: true });
        assert.deepEqual(await alpha.replay([other], theirs.id), { events: [], complete: true });
        assert.deepEqual(await alpha.replay([], mark.id), { events: [], complete: true }, 'no organization: nothing, and no error');
        // System admins see every organization and the events of none (a device waiting for admission).
        assert.deepEqual(await alpha.replay('all', mark.id), { events: [mine1, theirs, pending, mine2], complete: true });
      });

      it('says the replay is incomplete when more than replayMax events were missed', async () => {
        const org = freshOrg();
        const mark = await alpha.publish(online(org));
        const missed: HubEvent[] = [];
        for (let i = 0; i < replayMax; i++) missed.push(await alpha.publish(online(org)));
        assert.deepEqual(await beta.replay([org], mark.id), { events: missed, complete: true });
        missed.push(await alpha.publish(online(org)));
        assert.deepEqual(await beta.replay([org], mark.id), { events: missed.slice(0, replayMax), complete: false });
        assert.deepEqual(await beta.replay([org], missed[0]!.id), { events: missed.slice(1), complete: true });
      });

      it('prunes events older than the retention; a replay from before what is kept is incomplete', async () => {
        const org = freshOrg();
        const longAgo = Date.now() - (retentionSeconds + 60) * 1000;
        const old = newId('evt', longAgo);
        await store.db.insertInto('hub_events').values({ id: old, org_id: org, device_id: 'dev_a', name: 'device.online', data: '{"node":"node_a"}', at: new Date(longAgo).toISOString() }).execute();
        const recent = await alpha.publish(online(org));
        assert.deepEqual(await alpha.replay([org], old), { events: [recent], complete: true }, 'nothing pruned yet');
        assert.ok((await alpha.prune()) >= 1);
        assert.equal(await store.db.selectFrom('hub_events').select('id').where('id', '=', old).executeTakeFirst(), undefined);
        assert.ok(await store.db.selectFrom('hub_events').select('id').where('id', '=', recent.id).executeTakeFirst());
        assert.deepEqual(await alpha.replay([org], old), { events: [recent], complete: false });
        // An id this server never gave out: older than the retention may have missed events, younger cannot.
        assert.equal((await alpha.replay([org], newId('evt', longAgo))).complete, false);
        assert.deepEqual(await alpha.replay([org], newId('evt', Date.now() - 1000)), { events: [recent], complete: true });
        assert.deepEqual(await alpha.replay([org], newId('evt', Date.now() + 60_000)), { events: [], complete: true });
      });

      const hostile: unknown[] = [
        '',
        'evt_',
        'x',
        "evt_' or 1=1 --",
        'evt_01jb3x00000000000000000000000000',
        'EVT_01JB3X0000000000000000000',
        'dev_01jb3x0000000000000000000',
        'evt_01jb3x000000000000000000i',
        `evt_${'0'.repeat(10_000)}`,
        'evt_01jb3x000000000000000000\n',
        42,
        null,
        { id: 'evt_01jb3x0000000000000000000' },
      ];
      for (const afterId of hostile) {
        it(`refuses to replay after ${JSON.stringify(afterId)?.slice(0, 40)}`, async () => {
          await refuses(() => alpha.replay('all', afterId as string), 'bad_request');
        });
      }
    });
  }
}

describe('event stream without its bus', () => {
  it('keeps an event it cannot send (clients catch up by replaying), and logs why', async () => {
    const [sqlite] = await backends();
    const testDatabase = await sqlite!.create();
    const store = openStore(testDatabase.url);
    await store.migrate();
    const recorded = recordingLogger();
    const bus = new MemoryBus(createLogger('silent'));
    const stream = new EventStream({ store, bus, logger: recorded.logger, retentionSeconds, replayMax });
    await stream.start();
    const mark = await stream.publish(online('org_x'));
    await bus.close();
    const kept = await stream.publish(online('org_x'));
    assert.deepEqual(await stream.replay(['org_x'], mark.id), { events: [kept], complete: true });
    assert.ok(recorded.entries.some((entry) => entry.msg === 'hub event not sent on the bus'));
    await stream.close();
    await store.close();
    await testDatabase.drop();
  });
});
