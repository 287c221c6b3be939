import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../../src/services/actor.ts';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { fakeDevice, hubOf, memberKey, newDevice, newOrg, RpcClient, wsUrl } from './harness.ts';

/** The device methods of /api/ws: who may use them on which devices, and what a device's answer becomes. */

for (const backend of await backends()) {
  describe(`client device methods [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let otherOrg: string;
    let admin: RpcClient;
    const clients: RpcClient[] = [];
    const open = async (token: string, how?: 'header' | 'protocol' | 'query') => {
      const client = await RpcClient.open(wsUrl(server), token, how);
      clients.push(client);
      return client;
    };

    before(async () => {
      server = await startTestServer(backend);
      org = server.admin.orgId;
      otherOrg = await newOrg(server, 'other');
      // An admin key of one organization: its calls need not name it.
      admin = await open((await memberKey(server, org, 'admin-key@example.com', 'admin')).key);
    });
    after(async () => {
      for (const client of clients) client.close();
      await server?.close();
    });

    it('authenticates the upgrade with a header, a bearer subprotocol or ?token=, and refuses devices and strangers', async () => {
      const operator = await memberKey(server, org, 'ways@example.com', 'operator');
      for (const how of ['header', 'protocol', 'query'] as const) {
        const client = await open(operator.key, how);
        assert.equal((await client.result('Device.List', {})).nextCursor, null, how);
      }
      const refused = (token: string | undefined) =>
        new Promise<number>((resolve, reject) => {
          RpcClient.open(wsUrl(server), token).then(() => reject(new Error('accepted')), (error: Error) => resolve(Number(/\d{3}/.exec(error.message)?.[0])));
        });
      assert.equal(await refused(undefined), 401);
      assert.equal(await refused('fk_not_a_key_at_all_000000000000'), 401);
      const device = await newDevice(server, org, 'keyed');
      const { key } = await server.services.apiKeys.create(systemActor, org, { name: 'device key', deviceId: device.id });
      assert.equal(await refused(key), 403);
    });

    it('lists, gets and sets the desired state of devices by id or external id', async () => {
      const lamp = await newDevice(server, org, 'lamp', { tags: ['light'], externalId: 'shellyplus1-lamp' });
      await newDevice(server, org, 'pump', { tags: ['water'] });
      const page = await admin.result('Device.List', { org: 'default', tags: ['light'] });
      assert.deepEqual(page.items.map((d: { name: string }) => d.name), ['lamp']);
      const byExternal = await admin.result('Device.Get', { org: 'default', device: 'shellyplus1-lamp' });
      assert.equal(byExternal.device.id, lamp.id);
      assert.deepEqual(byExternal.state.desired, {});

      const linked: unknown[] = [];
      const detach = await hubOf(server).links.attach(lamp, { call: async () => null, close: () => {}, desired: (state) => void linked.push(state.desired) });
      const state = await admin.result('Device.SetDesired', { org, device: lamp.id, desired: { switch: { on: true } } });
      assert.deepEqual(state.desired, { switch: { on: true } });
      assert.deepEqual(state.delta, { switch: { on: true } });
      await admin.until(() => linked.length === 1, 'the device to be told');
      assert.deepEqual(linked, [{ switch: { on: true } }]);
      await detach();
    });

    it('renames, retags and deletes devices, each by the role it needs, and lists groups', async () => {
      const heater = await newDevice(server, org, 'heater', { externalId: 'heater-1' });
      const operator = await open((await memberKey(server, org, 'renamer@example.com', 'operator')).key);
      const updated = await operator.result('Device.Update', { device: 'heater-1', name: 'Heater', tags: ['warm'], metadata: { room: 'hall' } });
      assert.equal(updated.name, 'Heater');
      assert.deepEqual(updated.tags, ['warm']);
      assert.deepEqual(updated.metadata, { room: 'hall' });
      const viewer = await open((await memberKey(server, org, 'onlooker@example.com', 'viewer')).key);
      assert.equal((await viewer.error('Device.Update', { device: heater.id, name: 'x' })).code, -32003);
      assert.equal((await operator.error('Device.Delete', { device: heater.id })).code, -32003, 'deleting takes an admin');
      const stranger = await open((await memberKey(server, otherOrg, 'elsewhere@example.com', 'admin')).key);
      assert.equal((await stranger.error('Device.Delete', { device: heater.id })).code, -32004);
      assert.equal((await stranger.error('Device.Update', { org, device: heater.id, name: 'x' })).code, -32004);
      assert.equal(await admin.result('Device.Delete', { device: heater.id }), true);
      assert.equal((await admin.error('Device.Get', { device: heater.id })).code, -32004);

      const group = await request(server.url, 'POST', `/api/orgs/${org}/groups`, { token: server.admin.token, body: { name: 'Warm rooms', filter: { tags: ['warm'] } } });
      assert.equal(group.status, 201, JSON.stringify(group.body));
      assert.deepEqual((await viewer.result('Group.List', { q: 'warm' })).items.map((g: { id: string }) => g.id), [group.body.id]);
      assert.deepEqual((await stranger.result('Group.List', {})).items, []);
    });

    it('asks which organization is meant when the principal belongs to several, and not otherwise', async () => {
      const both = await memberWithRole(server, org, 'both@example.com', 'viewer');
      const added = await request(server.url, 'POST', `/api/orgs/${otherOrg}/members`, { token: server.admin.token, body: { email: 'both@example.com', role: 'viewer' } });
      assert.equal(added.status, 201);
      const client = await open(both.token);
      const error = await client.error('Device.List', {});
      assert.equal(error.code, -32602);
      assert.match(error.message, /org/);
      assert.deepEqual(error.data, [{ field: 'org', message: 'is required: you belong to 2 organizations' }]);
      assert.ok(Array.isArray((await client.result('Device.List', { org: 'other' })).items));
      const single = await open((await memberKey(server, org, 'single@example.com', 'viewer')).key);
      assert.ok(Array.isArray((await single.result('Device.List', {})).items));
    });

    it('relays Device.Call: the result, the device error with its code in data, a timeout, an offline device', async () => {
      const plug = await newDevice(server, org, 'plug', { externalId: 'plug-1' });
      const device = await fakeDevice(hubOf(server), plug, (method, params) => {
        if (method === 'Switch.Set') return { result: { was_on: false, params } };
        if (method === 'Broken') return { error: { code: -105, message: 'Argument id, value 7 not found', data: { id: 7 } } };
        return 'silent';
      });
      const result = await admin.result('Device.Call', { device: 'plug-1', method: 'Switch.Set', params: { id: 0, on: true } });
      assert.deepEqual(result, { was_on: false, params: { id: 0, on: true } });
      assert.deepEqual(device.received[0], { method: 'Switch.Set', params: { id: 0, on: true } });

      const failed = await admin.error('Device.Call', { device: plug.id, method: 'Broken' });
      assert.equal(failed.code, -32052);
      assert.deepEqual(failed.data, { code: -105, message: 'Argument id, value 7 not found', data: { id: 7 } });

      const started = Date.now();
      const slow = await admin.error('Device.Call', { device: plug.id, method: 'Sys.Sleep', timeoutMs: 200 });
      assert.equal(slow.code, -32054);
      assert.ok(Date.now() - started < 3000);
      const tooLong = await admin.error('Device.Call', { device: plug.id, method: 'X', timeoutMs: 31_000 });
      assert.equal(tooLong.code, -32602);

      await device.disconnect();
      const offline = await admin.error('Device.Call', { device: plug.id, method: 'Switch.Set' });
      assert.equal(offline.code, -32053);
      assert.equal(offline.data.reason, 'device_offline');
    });

    it('calls many devices by tag or group, one outcome per device in order', async () => {
      const hub = hubOf(server);
      const names = ['m1', 'm2', 'm3', 'm4'];
      const made = [];
      for (const name of names) made.push(await newDevice(server, org, name, { tags: ['many'], externalId: `ext-${name}` }));
      // Lists are in id order, and ids made within one millisecond are in no particular order.
      made.sort((a, b) => (a.id < b.id ? -1 : 1));
      const [ok, failing, silent] = await Promise.all([
        fakeDevice(hub, made[0]!, () => ({ result: 'done' })),
        fakeDevice(hub, made[1]!, () => ({ error: { code: 42, message: 'nope' } })),
        fakeDevice(hub, made[2]!, () => 'silent'),
      ]);
      const byTag = await admin.result('Device.CallMany', { tags: ['many'], method: 'Do', timeoutMs: 300 });
      assert.deepEqual(
        byTag.results.map((r: { device: string; result?: unknown; error?: { code: number } }) => [r.device, r.result ?? r.error?.code]),
        [
          [made[0]!.id, 'done'],
          [made[1]!.id, -32052],
          [made[2]!.id, -32054],
          [made[3]!.id, -32053],
        ],
      );
      assert.deepEqual(byTag.results[1].error.data, { code: 42, message: 'nope' });

      const group = await server.services.groups.create(systemActor, org, { name: 'pair' });
      await server.services.groups.addMembers(systemActor, org, group.id, [made[0]!.id, made[3]!.id]);
      const members = await admin.result('Device.List', { group: group.id });
      assert.deepEqual(members.items.map((d: { id: string }) => d.id), [made[0]!.id, made[3]!.id]);
      assert.equal((await admin.error('Device.List', { group: group.id, online: true })).code, -32602);
      const byGroup = await admin.result('Device.CallMany', { group: group.id, method: 'Do', timeoutMs: 300 });
      assert.deepEqual(byGroup.results.map((r: { device: string }) => r.device), [made[0]!.id, made[3]!.id]);

      const named = await admin.result('Device.CallMany', { devices: [made[1]!.externalId!, 'nowhere', made[0]!.id], method: 'Do', timeoutMs: 300 });
      assert.deepEqual(named.results.map((r: { device: string; error?: { code: number } }) => [r.device, r.error?.code ?? 'ok']), [
        [made[1]!.id, -32052],
        ['nowhere', -32004],
        [made[0]!.id, 'ok'],
      ]);

      assert.equal((await admin.error('Device.CallMany', { tags: ['many'], group: group.id, method: 'Do' })).code, -32602);
      assert.equal((await admin.error('Device.CallMany', { method: 'Do' })).code, -32602);
      const tooMany = await admin.error('Device.CallMany', { devices: Array.from({ length: 1001 }, (_, i) => `d${i}`), method: 'Do' });
      assert.equal(tooMany.code, -32602);
      await Promise.all([ok.disconnect(), failing.disconnect(), silent.disconnect()]);
    });

    it('keeps organizations apart: not found, never forbidden', async () => {
      const secret = await newDevice(server, org, 'secret', { externalId: 'secret-ext' });
      const device = await fakeDevice(hubOf(server), secret, () => ({ result: 'leaked' }));
      const stranger = await memberKey(server, otherOrg, 'stranger@example.com', 'admin');
      const client = await open(stranger.key);
      assert.deepEqual((await client.result('Device.List', {})).items, []);
      for (const ref of [secret.id, 'secret-ext']) {
        assert.equal((await client.error('Device.Get', { device: ref })).code, -32004);
        assert.equal((await client.error('Device.Call', { device: ref, method: 'X' })).code, -32004);
        assert.equal((await client.error('Device.SetDesired', { device: ref, desired: { a: 1 } })).code, -32004);
      }
      assert.equal((await client.error('Device.List', { org })).code, -32004);
      assert.equal((await client.error('Device.Get', { org, device: secret.id })).code, -32004);
      assert.equal((await client.error('Device.Call', { org: 'default', device: secret.id, method: 'X' })).code, -32004);
      const many = await client.result('Device.CallMany', { devices: [secret.id], method: 'X' });
      assert.equal(many.results[0].error.code, -32004);
      assert.equal(device.received.length, 0);
      await device.disconnect();
    });

    it('lists, accepts and denies waiting devices for admins of their organization only', async () => {
      const { admission } = server.services;
      const wait = async (externalId: string, orgHint?: string) => {
        const decision = await admission.admit({ endpoint: 'shelly', externalId, orgHint, info: { name: externalId, model: 'SNSW-001X16EU' } });
        assert.equal(decision.status, 'pending');
        return (decision as { pendingId: string }).pendingId;
      };
      const first = await wait('waiting-1', 'default');
      const second = await wait('waiting-2', 'default');
      const orphan = await wait('waiting-3');

      const listed = await admin.result('Device.ListPending', { state: 'pending' });
      assert.deepEqual(listed.items.map((p: { id: string }) => p.id), [first, second]);
      const operator = await open((await memberKey(server, org, 'pending-operator@example.com', 'operator')).key);
      assert.equal((await operator.error('Device.ListPending', {})).code, -32003);
      assert.equal((await operator.error('Device.Accept', { pendingId: first })).code, -32003);
      const stranger = await open((await memberKey(server, otherOrg, 'pending-stranger@example.com', 'admin')).key);
      assert.deepEqual((await stranger.result('Device.ListPending', {})).items, []);
      assert.equal((await stranger.error('Device.Accept', { pendingId: first })).code, -32004);
      assert.equal((await stranger.error('Device.Deny', { pendingId: second })).code, -32004);
      assert.equal((await admin.error('Device.Accept', { pendingId: orphan })).code, -32004, 'only system admins see devices waiting without an organization');

      const accepted = await admin.result('Device.Accept', { pendingId: first, name: 'hall switch', tags: ['hall'] });
      assert.deepEqual([accepted.name, accepted.externalId, accepted.tags], ['hall switch', 'waiting-1', ['hall']]);
      assert.equal((await admin.result('Device.Get', { device: 'waiting-1' })).device.id, accepted.id);
      const denied = await admin.result('Device.Deny', { pendingId: second });
      assert.equal(denied.state, 'denied');
      assert.deepEqual((await admin.result('Device.ListPending', { state: 'denied' })).items.map((p: { id: string }) => p.id), [second]);

      const system = await open(server.admin.token);
      assert.deepEqual((await system.result('Device.ListPending', {})).items.map((p: { id: string }) => p.id), [orphan]);
      assert.equal((await system.error('Device.Accept', { pendingId: orphan })).code, -32602);
      assert.equal((await system.result('Device.Accept', { pendingId: orphan, org: 'other' })).orgId, otherOrg);
    });

    it('lets viewers read but not call or change devices', async () => {
      const thing = await newDevice(server, org, 'thing');
      const viewer = await memberKey(server, org, 'viewer@example.com', 'viewer');
      const client = await open(viewer.key);
      assert.equal((await client.result('Device.Get', { device: thing.id })).device.id, thing.id);
      assert.equal((await client.error('Device.Call', { device: thing.id, method: 'X' })).code, -32003);
      assert.equal((await client.error('Device.CallMany', { devices: [thing.id], method: 'X' })).code, -32003);
      assert.equal((await client.error('Device.SetDesired', { device: thing.id, desired: { a: 1 } })).code, -32003);
      assert.equal((await client.error('Device.ListPending', {})).code, -32003);
    });
  });
}
