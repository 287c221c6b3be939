import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

for (const backend of await backends()) {
  describe(`devices and device keys [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    const admin = () => ({ token: server.admin.token });

    const newDevice = async (orgId: string, name: string) => {
      const created = await request(server.url, 'POST', `/api/orgs/${orgId}/devices`, { ...admin(), body: { name } });
      assert.equal(created.status, 201);
      const key = await request(server.url, 'POST', `/api/orgs/${orgId}/api-keys`, { ...admin(), body: { name: `${name} key`, deviceId: created.body.id } });
      assert.equal(key.status, 201);
      assert.equal(key.body.deviceId, created.body.id);
      assert.equal(key.body.userId, null);
      return { id: created.body.id as string, key: key.body.key as string, keyId: key.body.id as string };
    };

    before(async () => {
      server = await startTestServer(backend);
      org = server.admin.orgId;
    });
    after(async () => {
      await server?.close();
    });

    it('a device key authenticates as the device, which may read itself and nothing else', async () => {
      const lamp = await newDevice(org, 'lamp');
      const fan = await newDevice(org, 'fan');
      const me = await request(server.url, 'GET', '/api/auth/me', { token: lamp.key });
      assert.equal(me.body.kind, 'device');
      assert.equal(me.body.deviceId, lamp.id);
      assert.equal(me.body.user, null);
      assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/devices/${lamp.id}`, { token: lamp.key })).status, 200);
      assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/devices/${fan.id}`, { token: lamp.key })).status, 404);
      assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/devices`, { token: lamp.key })).status, 404);
      assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/members`, { token: lamp.key })).status, 404);
      assert.equal((await request(server.url, 'POST', `/api/orgs/${org}/api-keys`, { token: lamp.key, body: { name: 'more' } })).status, 404);
    });

    it("a device of one organization sees nothing of another's", async () => {
      const other = await request(server.url, 'POST', '/api/orgs', { ...admin(), body: { slug: 'elsewhere', name: 'Elsewhere' } });
      const far = await newDevice(other.body.id, 'far');
      const near = await newDevice(org, 'near');
      assert.equal((await request(server.url, 'GET', `/api/orgs/${other.body.id}/devices/${far.id}`, { token: near.key })).status, 404);
      assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/devices/${far.id}`, { ...admin() })).status, 404);
      const viewer = await memberWithRole(server, org, 'device-viewer@example.com', 'viewer');
      assert.equal((await request(server.url, 'GET', `/api/orgs/${other.body.id}/devices`, { token: viewer.token })).status, 404);
      assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/devices`, { token: viewer.token })).status, 200);
    });

    it('only admins register devices and give them keys', async () => {
      const operator = await memberWithRole(server, org, 'device-operator@example.com', 'operator');
      assert.equal((await request(server.url, 'POST', `/api/orgs/${org}/devices`, { token: operator.token, body: { name: 'x' } })).status, 403);
      const device = await newDevice(org, 'sensor');
      const key = await request(server.url, 'POST', `/api/orgs/${org}/api-keys`, { token: operator.token, body: { name: 'k', deviceId: device.id } });
      assert.equal(key.status, 403);
      const both = await request(server.url, 'POST', `/api/orgs/${org}/api-keys`, { ...admin(), body: { name: 'k', deviceId: device.id, role: 'viewer' } });
      assert.equal(both.status, 400);
      const unknown = await request(server.url, 'POST', `/api/orgs/${org}/api-keys`, { ...admin(), body: { name: 'k', deviceId: 'dev_nope' } });
      assert.equal(unknown.status, 404);
    });

    it('deleting a device revokes its keys', async () => {
      const device = await newDevice(org, 'doomed');
      assert.equal((await request(server.url, 'DELETE', `/api/orgs/${org}/devices/${device.id}`, { ...admin() })).status, 204);
      assert.equal((await request(server.url, 'GET', '/api/auth/me', { token: device.key })).status, 401);
      const key = await request(server.url, 'GET', `/api/orgs/${org}/api-keys/${device.keyId}`, { ...admin() });
      assert.equal(key.body.revokedBy, 'device.deleted');
      const audit = await request(server.url, 'GET', `/api/orgs/${org}/audit?action=device.delete`, { ...admin() });
      assert.equal(audit.body.items.at(-1).target.id, device.id);
    });
  });
}

for (const backend of await backends()) {
  describe(`device registry and state [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let operator: string;
    let viewer: string;
    const admin = () => ({ token: server.admin.token });

    before(async () => {
      server = await startTestServer(backend);
      org = server.admin.orgId;
      operator = (await memberWithRole(server, org, 'registry-operator@example.com', 'operator')).token;
      viewer = (await memberWithRole(server, org, 'registry-viewer@example.com', 'viewer')).token;
    });
    after(async () => {
      await server?.close();
    });

    const register = async (body: Record<string, unknown>) => {
      const created = await request(server.url, 'POST', `/api/orgs/${org}/devices`, { ...admin(), body });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return created.body as { id: string; tags: string[] };
    };
    const keyFor = async (deviceId: string) =>
      (await request(server.url, 'POST', `/api/orgs/${org}/api-keys`, { ...admin(), body: { name: 'device', deviceId } })).body.key as string;

    it('lists devices by tag, model and text, paginated', async () => {
      const plug = await register({ name: 'Kitchen plug', model: 'SNPL-00112EU', tags: ['kitchen', 'power'], metadata: { floor: 1 } });
      await register({ name: 'Kitchen light', model: 'SNSW-001X16EU', tags: ['kitchen'] });
      await register({ name: 'Garage door', model: 'SNSW-001X16EU', tags: ['garage'] });
      assert.deepEqual(plug.tags, ['kitchen', 'power']);
      const names = async (query: string) => (await request(server.url, 'GET', `/api/orgs/${org}/devices?${query}`, { token: viewer })).body.items.map((d: { name: string }) => d.name).sort();
      assert.deepEqual(await names('tag=kitchen'), ['Kitchen light', 'Kitchen plug']);
      assert.deepEqual(await names('tag=kitchen&tag=power'), ['Kitchen plug']);
      assert.deepEqual(await names('model=SNSW-001X16EU'), ['Garage door', 'Kitchen light']);
      assert.deepEqual(await names('q=garage'), ['Garage door']);
      assert.ok((await names('online=true')).length === 0, 'nothing is connected yet');
      const first = await request(server.url, 'GET', `/api/orgs/${org}/devices?tag=kitchen&limit=1`, { token: viewer });
      const second = await request(server.url, 'GET', `/api/orgs/${org}/devices?tag=kitchen&limit=1&cursor=${first.body.nextCursor}`, { token: viewer });
      assert.notEqual(first.body.items[0].id, second.body.items[0].id);
      assert.equal(second.body.nextCursor, null);
      assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/devices?tag=${'x'.repeat(65)}`, { token: viewer })).status, 400);
    });

    it('operators rename, retag and merge metadata; viewers may not', async () => {
      const device = await register({ name: 'Sensor', tags: ['a'], metadata: { room: 'hall', floor: 0 } });
      const path = `/api/orgs/${org}/devices/${device.id}`;
      assert.equal((await request(server.url, 'PATCH', path, { token: viewer, body: { name: 'x' } })).status, 403);
      const changed = await request(server.url, 'PATCH', path, { token: operator, body: { name: 'Hall sensor', tags: ['b', 'c'], metadata: { floor: null, battery: 'AA' } } });
      assert.equal(changed.status, 200);
      assert.equal(changed.body.name, 'Hall sensor');
      assert.deepEqual(changed.body.tags, ['b', 'c']);
      assert.deepEqual(changed.body.metadata, { room: 'hall', battery: 'AA' });
      assert.deepEqual((await request(server.url, 'GET', path, { token: viewer })).body.tags, ['b', 'c']);
    });

    it('merges what a device reports, tells only what changed, and shows the delta to what is desired', async () => {
      const device = await register({ name: 'Plug' });
      const key = await keyFor(device.id);
      const state = `/api/orgs/${org}/devices/${device.id}/state`;

      const first = await request(server.url, 'PATCH', `${state}/reported`, { token: key, body: { 'switch:0': { output: false, apower: 0 }, sys: { uptime: 5 } } });
      assert.equal(first.status, 200);
      assert.equal(first.body.state.reportedVersion, 1);
      const second = await request(server.url, 'PATCH', `${state}/reported`, { token: key, body: { 'switch:0': { apower: 12.5 }, sys: { uptime: 5 } } });
      assert.deepEqual(second.body.changed, { 'switch:0': { apower: 12.5 } });
      assert.deepEqual(second.body.state.reported, { 'switch:0': { output: false, apower: 12.5 }, sys: { uptime: 5 } });

      assert.equal((await request(server.url, 'PATCH', `${state}/desired`, { token: viewer, body: { 'switch:0': { output: true } } })).status, 403);
      const desired = await request(server.url, 'PATCH', `${state}/desired`, { token: operator, body: { 'switch:0': { output: true } } });
      assert.equal(desired.status, 200);
      assert.deepEqual(desired.body.delta, { 'switch:0': { output: true } });

      await request(server.url, 'PATCH', `${state}/reported`, { token: key, body: { 'switch:0': { output: true } } });
      const now = await request(server.url, 'GET', state, { token: viewer });
      assert.equal(now.body.delta, null);
      assert.equal(now.body.reportedVersion, 3);
      assert.ok((await request(server.url, 'GET', `/api/orgs/${org}/devices/${device.id}`, { token: viewer })).body.lastSeenAt);
      const audit = await request(server.url, 'GET', `/api/orgs/${org}/audit?action=device.desired`, admin());
      assert.equal(audit.body.items.at(-1).target.id, device.id);
    });

    it('lets only the device itself report, and refuses oversize documents', async () => {
      const device = await register({ name: 'Meter' });
      const other = await register({ name: 'Other meter' });
      const otherKey = await keyFor(other.id);
      const path = `/api/orgs/${org}/devices/${device.id}/state/reported`;
      assert.equal((await request(server.url, 'PATCH', path, { ...admin(), body: { a: 1 } })).status, 403);
      assert.equal((await request(server.url, 'PATCH', path, { token: otherKey, body: { a: 1 } })).status, 404);
      const key = await keyFor(device.id);
      const big = { blob: 'x'.repeat(40_000) };
      assert.equal((await request(server.url, 'PATCH', path, { token: key, body: big })).status, 200);
      const refused = await request(server.url, 'PATCH', path, { token: key, body: { more: 'y'.repeat(40_000) } });
      assert.equal(refused.status, 413);
      assert.deepEqual(Object.keys((await request(server.url, 'GET', `/api/orgs/${org}/devices/${device.id}/state`, admin())).body.reported), ['blob']);
    });

    it('keeps every field of reports that arrive at the same time', async () => {
      const device = await register({ name: 'Busy' });
      const key = await keyFor(device.id);
      const path = `/api/orgs/${org}/devices/${device.id}/state/reported`;
      const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => request(server.url, 'PATCH', path, { token: key, body: { [`field${i}`]: i } })));
      assert.ok(replies.every((r) => r.status === 200 || r.status === 409), replies.map((r) => r.status).join());
      const stored = (await request(server.url, 'GET', `/api/orgs/${org}/devices/${device.id}/state`, admin())).body;
      const accepted = replies.filter((r) => r.status === 200).length;
      assert.equal(Object.keys(stored.reported).length, accepted);
      assert.equal(stored.reportedVersion, accepted);
    });
  });
}
