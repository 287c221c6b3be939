import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../../src/services/actor.ts';
import { backends } from '../../helpers/backends.ts';
import { request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { TestClient } from './client.ts';
import { fridgeArchives, valuesOf, waitForValues } from './helpers.ts';

/** rrduino clients over real TCP against a whole fleetd server: only what the protocol shows, and the stored values. */
for (const backend of await backends()) {
  describe(`rrduino listener [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let port: number;
    const clients: TestClient[] = [];
    const connect = async () => {
      const client = await TestClient.connect(port);
      clients.push(client);
      return client;
    };
    const addProfile = async (body: Record<string, unknown>) => {
      const reply = await request(server.url, 'POST', '/api/orgs/default/rrduino-profiles', { token: server.admin.token, body });
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
      return reply.body;
    };

    before(async () => {
      server = await startTestServer(backend);
      port = server.server.rrduinoPort!;
      assert.ok(port > 0);
      await addProfile({ clientId: 'fridge', key: 'secret123', rrdArguments: fridgeArchives });
    });
    after(async () => {
      for (const client of clients) client.end();
      await server?.close();
    });

    it('a hello gets 32 random bytes; each update lands in the sequences of the device folder, /default/fridge/*', async () => {
      const client = await connect();
      const nonce = await client.hello('fridge', 'secret123');
      assert.equal(nonce.length, 32);
      client.update([['temperature', '21.50'], ['humidity', '40']]);
      client.update([['humidity', '41'], ['temperature', '21.75'], ['door', 'open']]);
      await waitForValues(server, '/default/fridge/temperature', [21.5, 21.75]);
      await waitForValues(server, '/default/fridge/humidity', [40, 41]);
      assert.equal(client.isClosed, false, 'keys the profile does not take are ignored');
      assert.equal(client.unread.length, 0, 'nothing but the nonce is ever sent');
      // The same values through the HTTP queries: raw, last, and the archives of the profile.
      const raw = await request(server.url, 'GET', '/api/series/raw?path=/default/fridge/temperature', { token: server.admin.token });
      assert.deepEqual(raw.body.values.map((v: { value: number }) => v.value), [21.5, 21.75]);
      const last = await request(server.url, 'GET', '/api/series/last?path=/default/fridge/humidity', { token: server.admin.token });
      assert.equal(last.body.last.value, 41);
      const sequence = await server.services.resources.resolve(systemActor.principal, '/default/fridge/temperature');
      const row = await server.services.store.db.selectFrom('sequences').select('rrd').where('resource_id', '=', sequence.id).executeTakeFirstOrThrow();
      assert.deepEqual(JSON.parse(row.rrd!), {
        step: 60,
        source: { name: 'temperature', type: 'GAUGE', heartbeat: 120, min: -50, max: 110 },
        archives: [
          { cf: 'AVERAGE', xff: 0.5, steps: 1, rows: 100 },
          { cf: 'AVERAGE', xff: 0.5, steps: 5, rows: 288 },
        ],
      });
    });

    it('the device is the one named as the client, and the folder is its folder', async () => {
      const folder = await server.services.resources.resolve(systemActor.principal, '/default/fridge');
      assert.equal(folder.type, 'controller_folder');
      const profile = await request(server.url, 'GET', '/api/orgs/default/rrduino-profiles/fridge', { token: server.admin.token });
      assert.equal(folder.deviceId, profile.body.deviceId);
      const device = await request(server.url, 'GET', `/api/orgs/default/devices/${profile.body.deviceId}`, { token: server.admin.token });
      assert.equal(device.body.name, 'fridge');
    });

    it('several lines in one TCP segment, and a line split over several, are all stored in order', async () => {
      const client = await connect();
      await client.hello('fridge', 'secret123');
      const before = (await valuesOf(server, '/default/fridge/temperature')).length;
      const burst = [1, 2, 3, 4, 5].map((i) => client.line([['temperature', String(i)], ['humidity', String(50 + i)]])).join('');
      client.write(burst);
      const split = client.line([['temperature', '6.25'], ['humidity', '56']]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (const part of [split.slice(0, 7), split.slice(7, 40), split.slice(40)]) {
        client.write(part);
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
      const temperatures = (await waitUntilCount(server, '/default/fridge/temperature', before + 6)).slice(before);
      assert.deepEqual(temperatures, [1, 2, 3, 4, 5, 6.25]);
      assert.equal(client.isClosed, false);
    });

    it('a second hello re-keys: a new nonce, and lines MACed from it', async () => {
      const client = await connect();
      const before = (await valuesOf(server, '/default/fridge/temperature')).length;
      const first = await client.hello('fridge', 'secret123');
      client.update([['temperature', '7'], ['humidity', '60']]);
      const second = await client.hello('fridge', 'secret123');
      assert.notDeepEqual(first, second);
      client.update([['temperature', '8'], ['humidity', '61']]);
      assert.deepEqual((await waitUntilCount(server, '/default/fridge/temperature', before + 2)).slice(before), [7, 8]);
      assert.equal(client.isClosed, false);
    });

    it('serves many clients at once, each with its own key and device', async () => {
      const count = 25;
      const ids = Array.from({ length: count }, (_, i) => `sensor-${i}`);
      for (const id of ids) await server.services.rrduinoProfiles.create(systemActor, 'default', { clientId: id, key: `key of ${id}` });
      await Promise.all(
        ids.map(async (id, i) => {
          const client = await connect();
          await client.hello(id, `key of ${id}`);
          for (let n = 0; n < 4; n++) client.update([['reading', String(i * 100 + n)]]);
        }),
      );
      await Promise.all(ids.map((id, i) => waitForValues(server, `/default/${id}/reading`, [0, 1, 2, 3].map((n) => i * 100 + n))));
      assert.ok(clients.every((c) => !c.isClosed));
    });

    it('a profile without data sources makes a sequence per key when it first arrives, with the default archives', async () => {
      await addProfile({ clientId: 'garage', key: 'garage-key' });
      const client = await connect();
      await client.hello('garage', 'garage-key');
      client.update([['temperature', '4.5'], ['voltage', '3.31']]);
      client.update([['voltage', '3.30']]);
      await waitForValues(server, '/default/garage/temperature', [4.5]);
      await waitForValues(server, '/default/garage/voltage', [3.31, 3.3]);
      const voltage = await server.services.resources.resolve(systemActor.principal, '/default/garage/voltage');
      assert.equal(voltage.type, 'sequence');
    });

    it("rrduino's own profile file is taken as it is: the update template maps keys to data sources", async () => {
      const created = await addProfile({
        clientId: 'cellar',
        key: 'cellar-key',
        handler: 'RRDuinoHandler',
        handler_options: { path: '/var/lib/rrduino/cellar.rrd', create: ['--step', '60', 'DS:temp:GAUGE:120:-50:110', 'DS:hum:GAUGE:120:0:100', 'RRA:AVERAGE:0.5:5:288'], update: 'N:{t}:{h}' },
      });
      assert.deepEqual(created.sources, ['temp', 'hum']);
      assert.equal(created.updateTemplate, 'N:{t}:{h}');
      const client = await connect();
      await client.hello('cellar', 'cellar-key');
      client.update([['t', '12.5'], ['h', '80'], ['extra', '1']]);
      await waitForValues(server, '/default/cellar/temp', [12.5]);
      await waitForValues(server, '/default/cellar/hum', [80]);
    });

    it('a new key ends the sessions keyed with the old one at their next line; the new key works after a new hello', async () => {
      await addProfile({ clientId: 'attic', key: 'old-key' });
      const client = await connect();
      await client.hello('attic', 'old-key');
      client.update([['temperature', '30']]);
      await waitForValues(server, '/default/attic/temperature', [30]);
      const patched = await request(server.url, 'PATCH', '/api/orgs/default/rrduino-profiles/attic', { token: server.admin.token, body: { key: 'new-key' } });
      assert.equal(patched.status, 200);
      client.update([['temperature', '31']]);
      assert.equal(await client.closedWithin(5000), true);
      const again = await connect();
      await again.hello('attic', 'new-key');
      again.update([['temperature', '32']]);
      await waitForValues(server, '/default/attic/temperature', [30, 32]);
    });

    it('the server closes its rrduino connections when it stops', async () => {
      const extra = await startTestServer(backend);
      let closed = false;
      try {
        await extra.services.rrduinoProfiles.create(systemActor, 'default', { clientId: 'porch', key: 'porch-key' });
        const client = await TestClient.connect(extra.server.rrduinoPort!);
        await client.hello('porch', 'porch-key');
        client.update([['lux', '120']]);
        await waitForValues(extra, '/default/porch/lux', [120]);
        await extra.close();
        closed = true;
        assert.equal(await client.closedWithin(5000), true);
      } finally {
        if (!closed) await extra.close();
      }
    });
  });
}

/** The sequence's values once it holds at least `count`. */
async function waitUntilCount(server: TestServer, path: string, count: number): Promise<number[]> {
  const end = Date.now() + 10_000;
  for (;;) {
    const values = await valuesOf(server, path);
    if (values.length >= count || Date.now() > end) return values;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
