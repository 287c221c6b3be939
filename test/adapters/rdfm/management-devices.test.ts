import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RdfmIds } from '../../../src/adapters/rdfm/ids.ts';
import { systemActor } from '../../../src/services/actor.ts';
import { backends } from '../../helpers/backends.ts';
import { readUntil } from '../../helpers/waiting.ts';
import { memberWithRole, startTestServer, type TestServer } from '../../helpers/server.ts';
import { apiKey, otherOrganization, rdfmClient, registeredDevice, rfc822Shape } from './management-helpers.ts';
import type { RdfmDevice, RdfmSocket } from './simulator.ts';

const v1Keys = ['capabilities', 'group', 'id', 'last_access', 'mac_address', 'metadata', 'name', 'public_key'];
const v2Keys = ['capabilities', 'connected', 'groups', 'id', 'last_access', 'mac_address', 'metadata', 'name', 'public_key'];
const badIds = ['abc', '99999999999', '0', '-1', '1.5', '1e3', '%2e%2e%2f1', '..%2Fdevices'];

/** RDFM's device routes (rdfm.md §10, §11) over fleetd's devices, as rdfm-mgmt calls them. */
for (const backend of await backends()) {
  describe(`RDFM management: devices [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let admin: ReturnType<typeof rdfmClient>;
    let ids: RdfmIds;
    let board: { device: RdfmDevice; number: number; fleetdId: string };
    let socket: RdfmSocket | undefined;
    let groupLow: number;
    let groupHigh: number;
    let groupDynamic: number;

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off' });
      admin = rdfmClient(server, server.admin.token);
      ids = new RdfmIds(server.services.store.db);
      board = await registeredDevice(server, 'cc:00:00:00:00:01');
      const org = server.admin.orgId;
      const groups = server.services.groups;
      const low = await groups.create(systemActor, org, { name: 'low', priority: 1 });
      const high = await groups.create(systemActor, org, { name: 'high', priority: 5 });
      const dynamic = await groups.create(systemActor, org, { name: 'lab', priority: 0, filter: { tags: ['lab'] } });
      await groups.addMembers(systemActor, org, low.id, [board.fleetdId]);
      await groups.addMembers(systemActor, org, high.id, [board.fleetdId]);
      [groupLow, groupHigh, groupDynamic] = await Promise.all([low, high, dynamic].map((g) => ids.number('group', g.id)));
      await server.services.capabilities.set({ id: board.fleetdId, orgId: org }, { shell: true, action: false });
    });
    after(async () => {
      socket?.close();
      await server?.close();
    });

    it('v1: the device with its effective group (highest priority), capabilities, key and RFC 822 last access', async () => {
      const list = await admin('GET', '/api/v1/devices');
      assert.equal(list.status, 200);
      const shown = list.body.find((d: any) => d.id === board.number);
      assert.deepEqual(Object.keys(shown).sort(), v1Keys);
      assert.equal(shown.name, board.device.mac);
      assert.equal(shown.mac_address, board.device.mac);
      assert.deepEqual(shown.capabilities, { shell: true, action: false });
      assert.equal(shown.metadata['rdfm.hardware.devtype'], 'board-a');
      assert.equal(shown.group, groupHigh);
      assert.match(shown.last_access, rfc822Shape);
      assert.equal(shown.public_key.trim(), board.device.publicPem.trim());
      assert.deepEqual((await admin('GET', `/api/v1/devices/${board.number}`)).body, shown);
    });

    it('v2: every group it is in (dynamic ones too) and whether it is connected', async () => {
      const shownBefore = (await admin('GET', `/api/v2/devices/${board.number}`)).body;
      assert.deepEqual(Object.keys(shownBefore).sort(), v2Keys);
      assert.deepEqual(shownBefore.groups, [groupLow, groupHigh].sort((a, b) => a - b));
      assert.equal(shownBefore.connected, false);
      assert.equal((await admin('POST', `/api/v2/devices/${board.number}/tag/lab`)).status, 200);
      socket = await board.device.connect();
      await socket.frame('alert');
      // The device is online once its link is attached, just after the alert.
      const shown = await readUntil(async () => (await admin('GET', `/api/v2/devices/${board.number}`)).body, (body) => body.connected === true);
      assert.deepEqual(shown.groups, [groupLow, groupHigh, groupDynamic].sort((a, b) => a - b));
      assert.equal(shown.connected, true);
      assert.deepEqual((await admin('GET', '/api/v2/devices')).body.find((d: any) => d.id === board.number), shown);
    });

    it('a device made with fleetd (no MAC, no key, no group) shows nulls and empty lists', async () => {
      const made = await server.services.devices.create(systemActor, server.admin.orgId, { name: 'made by hand' });
      const number = await ids.number('device', made.id);
      const v1 = (await admin('GET', `/api/v1/devices/${number}`)).body;
      assert.deepEqual(v1, { id: number, name: 'made by hand', mac_address: null, capabilities: {}, metadata: {}, group: null, last_access: null, public_key: null });
      const v2 = (await admin('GET', `/api/v2/devices/${number}`)).body;
      assert.deepEqual(v2.groups, []);
      assert.equal(v2.connected, false);
    });

    it('tags: added once each (operators may), listed, and found by tag', async () => {
      const operator = rdfmClient(server, (await memberWithRole(server, server.admin.orgId, 'operator@example.com', 'operator')).token);
      assert.deepEqual(await operator('POST', `/api/v2/devices/${board.number}/tag/rack-1`), { status: 200, body: {} });
      assert.deepEqual(await admin('POST', `/api/v2/devices/${board.number}/tag/rack-1`), { status: 200, body: {} });
      assert.deepEqual(await admin('GET', `/api/v2/devices/${board.number}/tags`), { status: 200, body: ['lab', 'rack-1'] });
      const tagged = await admin('GET', '/api/v2/tags/rack-1');
      assert.equal(tagged.status, 200);
      assert.deepEqual(tagged.body.map((d: any) => d.id), [board.number]);
      assert.deepEqual(Object.keys(tagged.body[0]).sort(), v2Keys);
      assert.deepEqual(await admin('GET', '/api/v2/tags/nobody-has-it'), { status: 200, body: [] });
    });

    it('tags that break fleetd\'s rules are 400 {"error"}; nothing is stored', async () => {
      for (const tag of ['bad%20tag', 'x'.repeat(65), '%C3%A9t%C3%A9', 'a%2Fb']) {
        for (const [method, path] of [['POST', `/api/v2/devices/${board.number}/tag/${tag}`], ['GET', `/api/v2/tags/${tag}`]] as const) {
          const reply = await admin(method, path);
          assert.equal(reply.status, 400, `${method} ${path}: ${JSON.stringify(reply.body)}`);
          assert.equal(typeof reply.body.error, 'string');
        }
      }
      assert.deepEqual((await admin('GET', `/api/v2/devices/${board.number}/tags`)).body, ['lab', 'rack-1']);
    });

    it('ids that name no device are 404 {"error"}: unknown, not integers, too large, traversal', async () => {
      for (const id of ['424242', ...badIds]) {
        for (const [method, path] of [
          ['GET', `/api/v1/devices/${id}`],
          ['GET', `/api/v2/devices/${id}`],
          ['DELETE', `/api/v1/devices/${id}`],
          ['DELETE', `/api/v2/devices/${id}`],
          ['GET', `/api/v2/devices/${id}/tags`],
          ['POST', `/api/v2/devices/${id}/tag/lab`],
        ] as const) {
          const reply = await admin(method, path);
          assert.equal(reply.status, 404, `${method} ${path}: ${JSON.stringify(reply.body)}`);
          assert.equal(typeof reply.body.error, 'string');
        }
      }
    });

    it('viewers read but neither tag nor delete (403); operators tag but do not delete', async () => {
      const viewer = rdfmClient(server, (await memberWithRole(server, server.admin.orgId, 'viewer@example.com', 'viewer')).token);
      assert.equal((await viewer('GET', '/api/v2/devices')).status, 200);
      assert.equal((await viewer('GET', `/api/v1/devices/${board.number}`)).status, 200);
      assert.equal((await viewer('GET', `/api/v2/devices/${board.number}/tags`)).status, 200);
      for (const [method, path] of [['POST', `/api/v2/devices/${board.number}/tag/viewer`], ['DELETE', `/api/v1/devices/${board.number}`], ['DELETE', `/api/v2/devices/${board.number}`]] as const) {
        const reply = await viewer(method, path);
        assert.equal(reply.status, 403, `${method} ${path}`);
        assert.equal(typeof reply.body.error, 'string');
      }
      const operator = rdfmClient(server, await apiKey(server, 'default', server.admin.token, 'operator'));
      assert.equal((await operator('DELETE', `/api/v2/devices/${board.number}`)).status, 403);
      assert.deepEqual((await admin('GET', `/api/v2/devices/${board.number}/tags`)).body, ['lab', 'rack-1']);
    });

    it("another organization's API key sees none of these devices: empty lists, 404 for each", async () => {
      const other = rdfmClient(server, (await otherOrganization(server, 'other-devices')).key);
      assert.deepEqual(await other('GET', '/api/v1/devices'), { status: 200, body: [] });
      assert.deepEqual(await other('GET', '/api/v2/devices'), { status: 200, body: [] });
      assert.deepEqual(await other('GET', '/api/v2/tags/lab'), { status: 200, body: [] });
      for (const [method, path] of [
        ['GET', `/api/v1/devices/${board.number}`],
        ['GET', `/api/v2/devices/${board.number}`],
        ['GET', `/api/v2/devices/${board.number}/tags`],
        ['POST', `/api/v2/devices/${board.number}/tag/mine`],
        ['DELETE', `/api/v1/devices/${board.number}`],
        ['DELETE', `/api/v2/devices/${board.number}`],
      ] as const) {
        const reply = await other(method, path);
        assert.equal(reply.status, 404, `${method} ${path}`);
        assert.equal(typeof reply.body.error, 'string');
      }
      assert.equal((await admin('GET', `/api/v2/devices/${board.number}`)).status, 200);
    });

    it('without a token: 401 {"error"}', async () => {
      const anonymous = rdfmClient(server, undefined);
      for (const [method, path] of [
        ['GET', '/api/v1/devices'],
        ['GET', '/api/v2/devices'],
        ['GET', `/api/v2/devices/${board.number}`],
        ['DELETE', `/api/v1/devices/${board.number}`],
        ['POST', `/api/v2/devices/${board.number}/tag/x`],
        ['GET', '/api/v2/tags/lab'],
      ] as const) {
        const reply = await anonymous(method, path);
        assert.equal(reply.status, 401, `${method} ${path}`);
        assert.equal(typeof reply.body.error, 'string');
      }
    });

    it('deleting (v1 and v2): 200 {}, then 404; a deleted device must register again', async () => {
      socket?.close();
      socket = undefined;
      const second = await registeredDevice(server, 'cc:00:00:00:00:02');
      assert.deepEqual(await admin('DELETE', `/api/v1/devices/${board.number}`), { status: 200, body: {} });
      assert.equal((await admin('GET', `/api/v1/devices/${board.number}`)).status, 404);
      assert.equal((await admin('DELETE', `/api/v1/devices/${board.number}`)).status, 404);
      assert.deepEqual(await admin('DELETE', `/api/v2/devices/${second.number}`), { status: 200, body: {} });
      assert.equal((await admin('GET', `/api/v2/devices/${second.number}`)).status, 404);
      const left = (await admin('GET', '/api/v2/devices')).body.map((d: any) => d.mac_address);
      assert.ok(!left.includes(board.device.mac) && !left.includes(second.device.mac));
      assert.equal((await board.device.auth()).status, 401);
    });
  });
}
