import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../src/services/actor.ts';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

/** /api/series/*: raw (JSON and CSV), consolidated, last, single and bulk writes, who may do what. */

for (const backend of await backends()) {
  describe(`series routes [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let token: string;
    let viewer: string;
    const base = Math.floor(Date.now() / 600_000) * 600_000 - 3600_000;
    const q = (params: Record<string, string | number>) => new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
    const create = (parent: string, name: string, dataType: 'numeric' | 'text' | 'image', rrd?: string[]) =>
      server.services.resources.create(systemActor, parent, { name, type: 'sequence', sequence: { dataType, rrd } });

    before(async () => {
      server = await startTestServer(backend, { rrduinoPort: '0' });
      token = server.admin.token;
      viewer = (await memberWithRole(server, server.admin.orgId, 'viewer@example.com', 'viewer')).token;
      await server.services.organizations.create(systemActor, { slug: 'other', name: 'Other', ownerId: server.admin.userId });
      await create('/other', 'secret', 'numeric');
      await create('/default', 'temp', 'numeric', ['--step', '60', 'RRA:AVERAGE:0.5:1:1000', 'RRA:AVERAGE:0.5:10:100']);
      await create('/default', 'log', 'text');
      await create('/default', 'camera', 'image');
    });
    after(() => server?.close());

    it('writes one value and reads it back raw, last and as CSV', async () => {
      for (let i = 0; i <= 30; i++) {
        const reply = await request(server.url, 'POST', '/api/series/values', { token, body: { path: '/default/temp', value: i, t: base + i * 60_000 } });
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        assert.deepEqual(reply.body, { stored: true });
      }
      const raw = await request(server.url, 'GET', `/api/series/raw?${q({ path: '/default/temp', start: base, end: new Date(base + 120_000).toISOString() })}`, { token });
      assert.equal(raw.status, 200);
      assert.deepEqual(raw.body.values, [0, 1, 2].map((i) => ({ t: base + i * 60_000, value: i })));
      assert.equal(raw.body.dataType, 'numeric');
      const desc = await request(server.url, 'GET', `/api/series/raw?${q({ path: '/default/temp', order: 'desc', limit: 1 })}`, { token });
      assert.deepEqual(desc.body.values, [{ t: base + 30 * 60_000, value: 30 }]);
      const last = await request(server.url, 'GET', `/api/series/last?${q({ path: '/default/temp' })}`, { token: viewer });
      assert.deepEqual(last.body.last, { t: base + 30 * 60_000, value: 30 });
      const csv = await request(server.url, 'GET', `/api/series/raw?${q({ path: '/default/temp', end: base + 60_000, format: 'csv' })}`, { token });
      assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
      assert.equal(csv.body, `time,value\r\n${new Date(base).toISOString()},0\r\n${new Date(base + 60_000).toISOString()},1\r\n`);
      const accepted = await request(server.url, 'GET', `/api/series/raw?${q({ path: '/default/temp', limit: 1 })}`, { token, headers: { accept: 'text/csv' } });
      assert.equal(accepted.body, `time,value\r\n${new Date(base).toISOString()},0\r\n`);
    });

    it('answers consolidated values at the resolution asked, as JSON and CSV', async () => {
      const reply = await request(server.url, 'GET', `/api/series/consolidated?${q({ path: '/default/temp', start: base, end: base + 30 * 60_000, step: 600 })}`, { token });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.equal(reply.body.resolution, 600);
      const byT = new Map(reply.body.points as Array<[number, number | null]>);
      // The ten-minute row ending at base + 20 min holds the values of minutes 11 to 20.
      assert.equal(byT.get(base + 20 * 60_000), 15.5);
      const csv = await request(server.url, 'GET', `/api/series/consolidated?${q({ path: '/default/temp', start: base, end: base + 30 * 60_000, resolution: 600, format: 'csv' })}`, { token });
      assert.ok((csv.body as string).includes(`${new Date(base + 20 * 60_000).toISOString()},15.5\r\n`));
      const text = await request(server.url, 'GET', `/api/series/consolidated?${q({ path: '/default/log', start: base })}`, { token });
      assert.equal(text.status, 400);
    });

    it('writes text, images as base64, and many sequences at once', async () => {
      const image = Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]);
      assert.equal((await request(server.url, 'POST', '/api/series/values', { token, body: { path: '/default/camera', value: image.toString('base64'), encoding: 'base64' } })).status, 200);
      assert.equal((await request(server.url, 'POST', '/api/series/values', { token, body: { path: '/default/camera', value: 'not base64!', encoding: 'base64' } })).status, 400);
      const last = await request(server.url, 'GET', `/api/series/last?${q({ path: '/default/camera' })}`, { token });
      assert.equal(last.body.last.value, image.toString('base64'));
      const bulk = await request(server.url, 'POST', '/api/series/bulk', { token, body: { timestamp: base + 90 * 60_000, values: { '/default/temp': 7, '/default/log': 'door, "open"', '/default/missing': 1, '/other/secret': 1 } } });
      assert.equal(bulk.status, 200, JSON.stringify(bulk.body));
      assert.deepEqual(bulk.body.results['/default/temp'], { stored: true });
      assert.deepEqual(bulk.body.results['/default/log'], { stored: true });
      assert.equal(bulk.body.results['/default/missing'].error.code, 'not_found');
      const csv = await request(server.url, 'GET', `/api/series/raw?${q({ path: '/default/log', format: 'csv' })}`, { token });
      assert.equal(csv.body, `time,value\r\n${new Date(base + 90 * 60_000).toISOString()},"door, ""open"""\r\n`);
    });

    it("corrects a drifting device clock in bulk updates and keeps the correction in the device's folder", async () => {
      const device = await server.services.devices.create(systemActor, server.admin.orgId, { name: 'logger' });
      const folder = await server.services.resources.deviceFolder(device.id);
      await create(folder.path, 'temperature', 'numeric');
      const key = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/api-keys`, { token, body: { name: 'logger key', deviceId: device.id } });
      assert.equal(key.status, 201, JSON.stringify(key.body));
      const deviceNow = Date.now() - 3600_000; // an hour behind
      const bulk = await request(server.url, 'POST', '/api/series/bulk', { token: key.body.key, body: { timestamp: deviceNow, values: { [`${folder.path}/temperature`]: 20 } } });
      assert.deepEqual(bulk.body.results[`${folder.path}/temperature`], { stored: true }, JSON.stringify(bulk.body));
      const last = await request(server.url, 'GET', `/api/series/last?${q({ path: `${folder.path}/temperature` })}`, { token });
      assert.ok(Math.abs(last.body.last.t - Date.now()) < 10_000, `corrected to about now, not ${new Date(last.body.last.t).toISOString()}`);
      const correction = (await server.services.resources.deviceFolder(device.id)).systemAttributes.timestamp_correction as number;
      assert.ok(Math.abs(correction - 3600) < 10, String(correction));
    });

    it('refuses anonymous callers, writes without write access, and hides other organizations', async () => {
      const read = `/api/series/raw?${q({ path: '/default/temp' })}`;
      // Anonymous callers read public sequences only: this one is not found for them.
      assert.equal((await request(server.url, 'GET', read)).status, 404);
      assert.equal((await request(server.url, 'POST', '/api/series/values', { body: { path: '/default/temp', value: 1 } })).status, 401);
      assert.equal((await request(server.url, 'GET', read, { token: viewer })).status, 200);
      assert.equal((await request(server.url, 'POST', '/api/series/values', { token: viewer, body: { path: '/default/temp', value: 1 } })).status, 403);
      assert.equal((await request(server.url, 'GET', `/api/series/raw?${q({ path: '/default/nothing' })}`, { token })).status, 404);
      // The viewer is a member of default only: another organization's sequences do not exist for them.
      assert.equal((await request(server.url, 'GET', `/api/series/raw?${q({ path: '/other/secret' })}`, { token: viewer })).status, 404);
      assert.equal((await request(server.url, 'POST', '/api/series/values', { token: viewer, body: { path: '/other/secret', value: 1 } })).status, 404);
      assert.equal((await request(server.url, 'GET', `/api/series/raw?${q({ path: '/default' })}`, { token })).status, 400, 'a folder is no sequence');
      assert.equal((await request(server.url, 'GET', `/api/series/raw?${q({ path: '/default/temp', start: 'yesterday' })}`, { token })).status, 400);
    });
  });
}
