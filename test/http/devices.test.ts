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
