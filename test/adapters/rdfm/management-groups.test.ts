import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { RdfmIds } from '../../../src/adapters/rdfm/ids.ts';
import { systemActor } from '../../../src/services/actor.ts';
import { insertUser } from '../../../src/services/users.ts';
import { backends } from '../../helpers/backends.ts';
import { login, memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';

const rfc822Shape = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const v1Keys = ['created', 'devices', 'id', 'metadata', 'packages', 'policy'];
const v2Keys = [...v1Keys, 'priority'].sort();

/**
 * RDFM's group routes (v1 and v2) as rdfm-mgmt calls them (`groups list|create|delete|assign-package|
 * modify-devices|target-version|set-priority`), with `Authorization: Bearer token=<token>`, over real HTTP.
 */
for (const backend of await backends()) {
  describe(`RDFM management: groups [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let admin: string;
    let viewer: string;
    let outsider: string;
    let ids: RdfmIds;
    /** RDFM numbers of devices of the organization: d[0..3]; and of a device of the other organization. */
    const d: number[] = [];
    let foreignDevice: number;

    const rdfm = (method: string, path: string, token: string | null, body?: unknown) =>
      request(server.url, method, path, { body, headers: token === null ? {} : { authorization: `Bearer token=${token}` } });
    const fleetdGroup = async (number: number) => server.services.groups.get(systemActor.principal, org, (await ids.fleetdId('group', number))!);
    const groupCount = async () => (await server.services.store.db.selectFrom('device_groups').select('id').execute()).length;
    const assertError = (reply: { status: number; body: any }, status: number, what: string, message?: RegExp) => {
      assert.equal(reply.status, status, `${what}: ${JSON.stringify(reply.body)}`);
      assert.equal(typeof reply.body?.error, 'string', `${what}: ${JSON.stringify(reply.body)}`);
      if (message) assert.match(reply.body.error, message, what);
    };
    const create = async (metadata: Record<string, string>, priority?: number) => {
      const reply = await rdfm('POST', '/api/v2/groups', admin, { metadata, ...(priority !== undefined && { priority }) });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      return reply.body;
    };

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off' });
      org = server.admin.orgId;
      admin = server.admin.token;
      ids = new RdfmIds(server.services.store.db);
      viewer = (await memberWithRole(server, org, 'viewer@example.com', 'viewer')).token;
      const owner = await insertUser(server.services.store.db, { email: 'other@example.com', password: 'other-password-1' });
      const other = await request(server.url, 'POST', '/api/orgs', { token: admin, body: { slug: 'other', name: 'Other', ownerId: owner.id } });
      assert.equal(other.status, 201);
      const ownerToken = (await login(server.url, 'other@example.com', 'other-password-1')).accessToken;
      outsider = (await request(server.url, 'POST', '/api/orgs/other/api-keys', { token: ownerToken, body: { name: 'rdfm-mgmt' } })).body.key;
      for (let i = 0; i < 4; i++) {
        const device = await server.services.devices.create(systemActor, org, { name: `board-${i}`, model: i === 3 ? 'special' : 'board' });
        d.push(await ids.number('device', device.id));
      }
      const foreign = await server.services.devices.create(systemActor, 'other', { name: 'foreign' });
      foreignDevice = await ids.number('device', foreign.id);
    });
    after(async () => {
      await server?.close();
    });

    describe('what rdfm-mgmt does', () => {
      let a: any;
      let b: any;
      let c: any;

      it('creates a v2 group: metadata, priority, RDFM shape, fleetd name and description', async () => {
        a = await create({ 'rdfm.group.name': 'boards', 'rdfm.group.description': 'All boards', site: 'lab' }, 5);
        assert.deepEqual(Object.keys(a).sort(), v2Keys);
        assert.ok(Number.isSafeInteger(a.id) && a.id > 0);
        assert.match(a.created, rfc822Shape);
        assert.deepEqual([a.devices, a.packages, a.policy, a.priority], [[], [], 'no_update,', 5]);
        assert.deepEqual(a.metadata, { 'rdfm.group.name': 'boards', 'rdfm.group.description': 'All boards', site: 'lab' });
        const own = await fleetdGroup(a.id);
        assert.deepEqual([own.name, own.description, own.metadata, own.priority], ['boards', 'All boards', { site: 'lab' }, -5]);
      });

      it('creates a v1 group from its metadata alone: a generated name, the default priority 25', async () => {
        const reply = await rdfm('POST', '/api/v1/groups', admin, { note: 'v1 group' });
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        assert.deepEqual(Object.keys(reply.body).sort(), v1Keys);
        assert.match(reply.body.metadata['rdfm.group.name'], /^group-[0-9a-f-]{36}$/);
        assert.equal(reply.body.metadata.note, 'v1 group');
        const own = await fleetdGroup(reply.body.id);
        assert.equal(own.priority, -25);
        assert.equal((await rdfm('GET', `/api/v2/groups/${reply.body.id}`, admin)).body.priority, 25);
        assert.equal((await rdfm('DELETE', `/api/v1/groups/${reply.body.id}`, admin)).status, 200);
        b = await create({ 'rdfm.group.name': 'same priority as boards' }, 5);
        c = await create({ 'rdfm.group.name': 'canary' }, 6);
        assert.equal((await create({})).priority, 25, 'v2 default priority');
      });

      it('refuses a second group of the same name with 409', async () => {
        const count = await groupCount();
        assertError(await rdfm('POST', '/api/v2/groups', admin, { metadata: { 'rdfm.group.name': 'boards' } }), 409, 'duplicate v2');
        assertError(await rdfm('POST', '/api/v1/groups', admin, { 'rdfm.group.name': 'boards' }), 409, 'duplicate v1');
        assert.equal(await groupCount(), count);
      });

      it('lists and gets groups in both shapes', async () => {
        const v1 = await rdfm('GET', '/api/v1/groups', admin);
        const v2 = await rdfm('GET', '/api/v2/groups', admin);
        assert.equal(v1.status, 200);
        assert.ok(v1.body.every((g: any) => Object.keys(g).sort().join() === v1Keys.join()));
        assert.ok(v2.body.every((g: any) => Object.keys(g).sort().join() === v2Keys.join()));
        assert.deepEqual(v2.body.find((g: any) => g.id === a.id), a);
        assert.deepEqual((await rdfm('GET', `/api/v2/groups/${a.id}`, admin)).body, a);
        const { priority: _, ...v1Shape } = a;
        assert.deepEqual((await rdfm('GET', `/api/v1/groups/${a.id}`, admin)).body, v1Shape);
        assert.deepEqual((await rdfm('GET', '/api/v2/groups', viewer)).body, v2.body, 'viewers read');
      });

      it('modifies devices: additions, then removals; removals of non-members are ignored', async () => {
        assert.deepEqual((await rdfm('PATCH', `/api/v2/groups/${a.id}/devices`, admin, { add: [d[0], d[1]], remove: [] })).body, {});
        assert.deepEqual((await rdfm('GET', `/api/v2/groups/${a.id}`, admin)).body.devices, [d[0], d[1]]);
        const reply = await rdfm('PATCH', `/api/v1/groups/${a.id}/devices`, admin, { add: [d[2]], remove: [d[0], d[3], 2_000_000] });
        assert.deepEqual([reply.status, reply.body], [200, {}]);
        assert.deepEqual((await rdfm('GET', `/api/v1/groups/${a.id}`, admin)).body.devices, [d[1], d[2]]);
        assert.equal((await rdfm('PATCH', `/api/v2/groups/${a.id}/devices`, admin, { add: [d[1]], remove: [] })).status, 200, 'adding a member again changes nothing');
      });

      it('refuses (409) adding a device in another group of the same priority, or an unknown one, and changes nothing', async () => {
        assertError(await rdfm('PATCH', `/api/v2/groups/${b.id}/devices`, admin, { add: [d[3], d[1]], remove: [] }), 409, 'same priority', /same priority 5/);
        assertError(await rdfm('PATCH', `/api/v2/groups/${b.id}/devices`, admin, { add: [d[3], 1_000_000], remove: [] }), 409, 'unknown device', /device 1000000 does not exist/);
        assertError(await rdfm('PATCH', `/api/v2/groups/${b.id}/devices`, admin, { add: [d[3], foreignDevice], remove: [] }), 409, "another organization's device");
        assertError(await rdfm('PATCH', `/api/v2/groups/${b.id}/devices`, admin, { add: [d[3], 2 ** 53], remove: [] }), 409, 'a huge device id');
        assert.deepEqual((await rdfm('GET', `/api/v2/groups/${b.id}`, admin)).body.devices, []);
        // Another priority: no conflict.
        assert.equal((await rdfm('PATCH', `/api/v2/groups/${c.id}/devices`, admin, { add: [d[1]], remove: [] })).status, 200);
      });

      it('sets the priority, refusing (409) one another group of a member has', async () => {
        assertError(await rdfm('POST', `/api/v2/groups/${c.id}/priority`, admin, { priority: 5 }), 409, 'boards has 5 and d1', /same priority 5/);
        assert.equal((await fleetdGroup(c.id)).priority, -6);
        assert.deepEqual((await rdfm('POST', `/api/v2/groups/${c.id}/priority`, admin, { priority: 1 })).body, {});
        assert.equal((await rdfm('GET', `/api/v2/groups/${c.id}`, admin)).body.priority, 1);
        assert.equal((await fleetdGroup(c.id)).priority, -1, 'the lowest RDFM number is the highest fleetd priority');
        const effective = await server.services.groups.effectiveGroupOf(org, (await ids.fleetdId('device', d[1]))!);
        assert.equal(effective?.name, 'canary', 'RDFM priority 1 wins over 5');
        assert.equal((await rdfm('POST', `/api/v2/groups/${b.id}/priority`, admin, { priority: 1 })).status, 200, 'a group without members conflicts with none');
        assert.equal((await rdfm('POST', `/api/v1/groups/${c.id}/priority`, admin, { priority: 2 })).status, 404, 'v2 only');
      });

      it('sets the update policy (target-version)', async () => {
        assert.deepEqual((await rdfm('POST', `/api/v2/groups/${a.id}/policy`, admin, { policy: 'exact_match,v2.1' })).body, {});
        assert.equal((await rdfm('GET', `/api/v2/groups/${a.id}`, admin)).body.policy, 'exact_match,v2.1');
        const own = await fleetdGroup(a.id);
        assert.deepEqual([own.updatePolicy, own.targetVersion], ['exact_match', 'v2.1']);
        for (const policy of ['exact_match', 'exact_match,', 'no_update', 'no_update,x', 'latest,', ',v1', '', `exact_match,${'v'.repeat(201)}`, 'exact_match,v\n1']) {
          assertError(await rdfm('POST', `/api/v1/groups/${a.id}/policy`, admin, { policy }), 400, JSON.stringify(policy), /^invalid policy: /);
        }
        assert.equal((await fleetdGroup(a.id)).targetVersion, 'v2.1');
        assert.equal((await rdfm('POST', `/api/v1/groups/${a.id}/policy`, admin, { policy: 'no_update,' })).status, 200);
        assert.equal((await rdfm('GET', `/api/v1/groups/${a.id}`, admin)).body.policy, 'no_update,');
      });

      it('assigns packages: replaces the set, [] clears it, an unknown package is 409 and changes nothing', async () => {
        const upload = (version: string) => server.services.packages.upload(systemActor, org, { version, deviceType: 'board' }, Readable.from([Buffer.from(version)]));
        const [p1, p2] = await Promise.all([upload('v1'), upload('v2')]);
        const numbers = [await ids.number('package', p1.id), await ids.number('package', p2.id)].sort((x, y) => x - y);
        assert.deepEqual((await rdfm('POST', `/api/v2/groups/${a.id}/package`, admin, { packages: numbers })).body, {});
        assert.deepEqual((await rdfm('GET', `/api/v2/groups/${a.id}`, admin)).body.packages, numbers);
        assertError(await rdfm('POST', `/api/v2/groups/${a.id}/package`, admin, { packages: [numbers[0], 999_999] }), 409, 'unknown package');
        assertError(await rdfm('POST', `/api/v2/groups/${a.id}/package`, admin, { packages: [2 ** 40] }), 409, 'huge package id');
        assert.deepEqual((await rdfm('GET', `/api/v2/groups/${a.id}`, admin)).body.packages, numbers);
        assert.equal((await rdfm('POST', `/api/v1/groups/${a.id}/package`, admin, { packages: [numbers[1]] })).status, 200);
        assert.deepEqual((await rdfm('GET', `/api/v1/groups/${a.id}`, admin)).body.packages, [numbers[1]]);
        assert.equal((await rdfm('POST', `/api/v1/groups/${a.id}/package`, admin, { packages: [] })).status, 200);
        assert.deepEqual((await rdfm('GET', `/api/v1/groups/${a.id}`, admin)).body.packages, []);
      });

      it('shows the current members of a dynamic fleetd group, and keeps it while it has some', async () => {
        const dynamic = await request(server.url, 'POST', `/api/orgs/${org}/groups`, { token: admin, body: { name: 'specials', filter: { model: 'special' } } });
        assert.equal(dynamic.status, 201, JSON.stringify(dynamic.body));
        const number = await ids.number('group', dynamic.body.id);
        const shown = (await rdfm('GET', `/api/v2/groups`, admin)).body.find((g: any) => g.id === number);
        assert.deepEqual([shown.devices, shown.priority, shown.metadata], [[d[3]], 0, { 'rdfm.group.name': 'specials' }]);
        assertError(await rdfm('DELETE', `/api/v2/groups/${number}`, admin), 409, 'a dynamic group with members');
        assertError(await rdfm('PATCH', `/api/v2/groups/${number}/devices`, admin, { add: [d[0]], remove: [] }), 409, 'adding to a dynamic group');
      });

      it('deletes a group: 409 while it has devices, then 200 {} and 404', async () => {
        assertError(await rdfm('DELETE', `/api/v2/groups/${a.id}`, admin), 409, 'with devices', /still assigned/);
        assert.equal((await rdfm('PATCH', `/api/v2/groups/${a.id}/devices`, admin, { add: [], remove: [d[1], d[2]] })).status, 200);
        assert.deepEqual(await rdfm('DELETE', `/api/v2/groups/${a.id}`, admin).then((r) => [r.status, r.body]), [200, {}]);
        assertError(await rdfm('GET', `/api/v2/groups/${a.id}`, admin), 404, 'deleted');
        assertError(await rdfm('DELETE', `/api/v1/groups/${a.id}`, admin), 404, 'deleted twice');
      });
    });

    describe('who may do what', () => {
      let group: any;
      before(async () => {
        group = await create({ 'rdfm.group.name': 'guarded' }, 40);
      });

      it('refuses viewers every change (403), even an empty one, and changes nothing', async () => {
        const count = await groupCount();
        const writes: Array<[string, string, unknown]> = [
          ['POST', '/api/v1/groups', { 'rdfm.group.name': 'by a viewer' }],
          ['POST', '/api/v2/groups', { metadata: { 'rdfm.group.name': 'by a viewer' } }],
          ['DELETE', `/api/v1/groups/${group.id}`, undefined],
          ['DELETE', `/api/v2/groups/${group.id}`, undefined],
          ['PATCH', `/api/v2/groups/${group.id}/devices`, { add: [d[0]], remove: [] }],
          ['PATCH', `/api/v1/groups/${group.id}/devices`, { add: [], remove: [d[0]] }],
          ['POST', `/api/v2/groups/${group.id}/package`, { packages: [] }],
          ['POST', `/api/v2/groups/${group.id}/policy`, { policy: 'exact_match,v9' }],
          ['POST', `/api/v2/groups/${group.id}/priority`, { priority: 3 }],
        ];
        for (const [method, path, body] of writes) assertError(await rdfm(method, path, viewer, body), 403, `viewer ${method} ${path}`);
        assert.equal(await groupCount(), count);
        assert.deepEqual((await rdfm('GET', `/api/v2/groups/${group.id}`, admin)).body, group);
      });

      it("shows another organization's API key none of this organization's groups", async () => {
        assert.deepEqual(await rdfm('GET', '/api/v2/groups', outsider).then((r) => [r.status, r.body]), [200, []]);
        assert.deepEqual((await rdfm('GET', '/api/v1/groups', outsider)).body, []);
        const attempts: Array<[string, string, unknown]> = [
          ['GET', `/api/v1/groups/${group.id}`, undefined],
          ['GET', `/api/v2/groups/${group.id}`, undefined],
          ['DELETE', `/api/v2/groups/${group.id}`, undefined],
          ['PATCH', `/api/v2/groups/${group.id}/devices`, { add: [], remove: [] }],
          ['POST', `/api/v2/groups/${group.id}/package`, { packages: [] }],
          ['POST', `/api/v2/groups/${group.id}/policy`, { policy: 'exact_match,v9' }],
          ['POST', `/api/v2/groups/${group.id}/priority`, { priority: 3 }],
        ];
        for (const [method, path, body] of attempts) assertError(await rdfm(method, path, outsider, body), 404, `outsider ${method} ${path}`);
        // Its own group, numbered among all: the admin does not see it.
        const own = await rdfm('POST', '/api/v2/groups', outsider, { metadata: { 'rdfm.group.name': 'guarded' } });
        assert.equal(own.status, 200, 'names are per organization');
        assertError(await rdfm('GET', `/api/v2/groups/${own.body.id}`, admin), 404, 'admin reads the other organization');
        assert.deepEqual((await rdfm('GET', `/api/v2/groups/${group.id}`, admin)).body, group);
      });

      it('answers no token, or a wrong one, with 401 {"error"}', async () => {
        const routes: Array<[string, string, unknown]> = [
          ['GET', '/api/v1/groups', undefined],
          ['GET', '/api/v2/groups', undefined],
          ['POST', '/api/v1/groups', {}],
          ['POST', '/api/v2/groups', { metadata: {} }],
          ['GET', `/api/v2/groups/${group.id}`, undefined],
          ['DELETE', `/api/v2/groups/${group.id}`, undefined],
          ['PATCH', `/api/v2/groups/${group.id}/devices`, { add: [], remove: [] }],
          ['POST', `/api/v2/groups/${group.id}/package`, { packages: [] }],
          ['POST', `/api/v1/groups/${group.id}/policy`, { policy: 'no_update,' }],
          ['POST', `/api/v2/groups/${group.id}/priority`, { priority: 3 }],
        ];
        const count = await groupCount();
        for (const [method, path, body] of routes) {
          assertError(await rdfm(method, path, null, body), 401, `${method} ${path} without a token`);
          assertError(await rdfm(method, path, 'not-a-token', body), 401, `${method} ${path} with a bad token`);
        }
        assert.equal(await groupCount(), count);
      });
    });

    describe('hostile input', () => {
      let group: any;
      before(async () => {
        group = await create({ 'rdfm.group.name': 'target' }, 50);
      });
      const raw = (method: string, path: string, body: string, contentType = 'application/json') =>
        request(server.url, method, path, { body, headers: { authorization: `Bearer token=${admin}`, 'content-type': contentType } });

      it('refuses bodies that are not JSON, or break the schema, with 400 and changes nothing', async () => {
        const count = await groupCount();
        const devices = `/api/v2/groups/${group.id}/devices`;
        const cases: Array<[string, string, string | unknown]> = [
          ['POST', '/api/v2/groups', '{"metadata": {'],
          ['POST', '/api/v1/groups', 'not json'],
          ['PATCH', devices, '{"add": [1,'],
          ['PATCH', devices, {}],
          ['PATCH', devices, { add: [d[0]] }],
          ['PATCH', devices, { remove: [d[0]] }],
          ['PATCH', devices, { add: ['1'], remove: [] }],
          ['PATCH', devices, { add: [1.5], remove: [] }],
          ['PATCH', devices, { add: null, remove: [] }],
          ['PATCH', devices, { add: Array.from({ length: 1001 }, (_, i) => i + 1), remove: [] }],
          ['PATCH', devices, [d[0]]],
          ['POST', '/api/v1/groups', { 'rdfm.group.name': 42 }],
          ['POST', '/api/v1/groups', ['rdfm.group.name']],
          ['POST', '/api/v1/groups', { 'rdfm.group.name': '' }],
          ['POST', '/api/v1/groups', { 'rdfm.group.name': 'n'.repeat(201) }],
          ['POST', '/api/v1/groups', { k: 'v'.repeat(1001) }],
          ['POST', '/api/v1/groups', Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, 'v']))],
          ['POST', '/api/v2/groups', { 'rdfm.group.name': 'not wrapped' }],
          ['POST', '/api/v2/groups', { metadata: {}, priority: 1.5 }],
          ['POST', '/api/v2/groups', { metadata: {}, priority: '1' }],
          ['POST', '/api/v2/groups', { metadata: {}, priority: 1e12 }],
          ['POST', `/api/v2/groups/${group.id}/package`, { packages: ['1'] }],
          ['POST', `/api/v2/groups/${group.id}/package`, { package_id: 1 }],
          ['POST', `/api/v2/groups/${group.id}/policy`, { policy: 5 }],
          ['POST', `/api/v2/groups/${group.id}/priority`, { priority: 2 ** 53 }],
          ['POST', `/api/v2/groups/${group.id}/priority`, {}],
        ];
        for (const [method, path, body] of cases) {
          const reply = typeof body === 'string' ? await raw(method, path, body) : await rdfm(method, path, admin, body);
          assertError(reply, 400, `${method} ${path} ${JSON.stringify(body).slice(0, 80)}`);
        }
        assert.equal(await groupCount(), count);
        assert.deepEqual((await rdfm('GET', `/api/v2/groups/${group.id}`, admin)).body, group);
        assertError(await raw('POST', '/api/v1/groups', 'a=b', 'application/x-www-form-urlencoded'), 415, 'a form');
      });

      it('answers ids that are not RDFM group ids with 404', async () => {
        for (const id of ['abc', '1.5', '-1', '0', '99999999999999999999', '4294967296', '1e3', '0x1']) {
          assertError(await rdfm('GET', `/api/v2/groups/${id}`, admin), 404, `GET ${id}`);
          assertError(await rdfm('DELETE', `/api/v1/groups/${id}`, admin), 404, `DELETE ${id}`);
          assertError(await rdfm('PATCH', `/api/v2/groups/${id}/devices`, admin, { add: [], remove: [] }), 404, `PATCH ${id}`);
          assertError(await rdfm('POST', `/api/v2/groups/${id}/priority`, admin, { priority: 1 }), 404, `priority ${id}`);
        }
      });

      it('refuses a __proto__ key, and keeps other keys named like properties as plain keys', async () => {
        const count = await groupCount();
        assertError(await raw('POST', '/api/v1/groups', '{"rdfm.group.name": "proto", "__proto__": {"x": "y"}}'), 400, '__proto__');
        assert.equal(await groupCount(), count);
        const reply = await raw('POST', '/api/v1/groups', '{"rdfm.group.name": "proto", "constructor": "y", "toString": "z"}');
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        assert.deepEqual(reply.body.metadata, { 'rdfm.group.name': 'proto', constructor: 'y', toString: 'z' });
      });
    });
  });
}
