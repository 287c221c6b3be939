import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Device groups over HTTP: static lists and saved filters, who may read and change them, and input
 * that must be refused with nothing stored.
 */

for (const backend of await backends()) {
  describe(`device groups [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let otherOrg: string;
    let viewer: string;
    let operator: string;
    let otherAdmin: string;
    let deviceKey: string;
    const admin = () => server.admin.token;
    const call = (method: string, path: string, token: string, body?: unknown) => request(server.url, method, path, { token, body });
    const groups = (orgId = org) => `/api/orgs/${orgId}/groups`;

    const register = async (body: Record<string, unknown>, orgId = org) => {
      const created = await call('POST', `/api/orgs/${orgId}/devices`, admin(), body);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return created.body.id as string;
    };
    const newGroup = async (body: Record<string, unknown>) => {
      const created = await call('POST', groups(), admin(), body);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return created.body as { id: string; kind: string; filter: unknown };
    };
    const memberNames = async (groupId: string, token = admin()) => {
      const reply = await call('GET', `${groups()}/${groupId}/devices?limit=500`, token);
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      return reply.body.items.map((d: { name: string }) => d.name).sort() as string[];
    };
    /** Rows of the group tables and the audit log: what a refused request must leave as it was. */
    const counts = async () => {
      const db = server.services.store.db;
      const count = async (table: 'device_groups' | 'device_group_members' | 'audit_events') =>
        Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      return { groups: await count('device_groups'), members: await count('device_group_members'), audit: await count('audit_events') };
    };

    before(async () => {
      server = await startTestServer(backend);
      org = server.admin.orgId;
      viewer = (await memberWithRole(server, org, 'group-viewer@example.com', 'viewer')).token;
      operator = (await memberWithRole(server, org, 'group-operator@example.com', 'operator')).token;
      otherOrg = (await call('POST', '/api/orgs', admin(), { slug: 'other', name: 'Other' })).body.id;
      // An admin of the other organization only.
      const user = await call('POST', '/api/users', admin(), { email: 'other-admin@example.com', password: 'other-admin-password' });
      await call('POST', `/api/orgs/${otherOrg}/members`, admin(), { email: 'other-admin@example.com', role: 'admin' });
      otherAdmin = (await request(server.url, 'POST', '/api/auth/login', { body: { email: 'other-admin@example.com', password: 'other-admin-password' } })).body.accessToken;
      assert.ok(user.body.id && otherAdmin);
      const device = await register({ name: 'Keyed device' });
      deviceKey = (await call('POST', `/api/orgs/${org}/api-keys`, admin(), { name: 'device key', deviceId: device })).body.key;
    });
    after(async () => {
      await server?.close();
    });

    it('keeps a static list: adds all or nothing, removes, and audits each change', async () => {
      const a = await register({ name: 'Static A' });
      const b = await register({ name: 'Static B' });
      const foreign = await register({ name: 'Foreign' }, otherOrg);
      const group = await newGroup({ name: 'Hand-picked', description: 'chosen by hand' });
      assert.equal(group.kind, 'static');
      assert.equal(group.filter, null);
      const members = `${groups()}/${group.id}/members`;

      const before = await counts();
      const refused = await call('POST', members, admin(), { deviceIds: [a, foreign] });
      assert.equal(refused.status, 404);
      assert.deepEqual(refused.body.error.details, { deviceIds: [foreign] });
      assert.deepEqual(await counts(), before, 'a device of another organization adds nothing, not even the others');

      const added = await call('POST', members, admin(), { deviceIds: [a, b, a] });
      assert.equal(added.status, 200);
      assert.deepEqual(added.body, { added: 2 });
      assert.deepEqual((await call('POST', members, admin(), { deviceIds: [a] })).body, { added: 0 });
      assert.deepEqual(await memberNames(group.id, viewer), ['Static A', 'Static B']);
      const page = await call('GET', `${groups()}/${group.id}/devices?limit=1`, viewer);
      assert.equal(page.body.items.length, 1);
      assert.ok(page.body.nextCursor);

      assert.equal((await call('DELETE', `${members}/${a}`, admin())).status, 204);
      assert.equal((await call('DELETE', `${members}/${a}`, admin())).status, 404);
      assert.equal((await call('DELETE', `${members}/${foreign}`, admin())).status, 404);
      assert.deepEqual(await memberNames(group.id), ['Static B']);
      // A deleted device leaves the group with it.
      assert.equal((await call('DELETE', `/api/orgs/${org}/devices/${b}`, admin())).status, 204);
      assert.deepEqual(await memberNames(group.id), []);

      const audit = await call('GET', `/api/orgs/${org}/audit?targetId=${group.id}`, admin());
      assert.deepEqual(
        audit.body.items.map((e: { action: string }) => e.action),
        ['group.create', 'group.add_members', 'group.remove_members'],
      );
      assert.deepEqual(audit.body.items[1].details, { deviceIds: [a, b] });
    });

    it('evaluates a saved filter live: tags, model, online, metadata and text', async () => {
      const plug = await register({ name: 'Porch plug', model: 'SNPL', tags: ['porch', 'power'], metadata: { ring: 'beta', floor: 0 } });
      await register({ name: 'Porch light', model: 'SNSW', tags: ['porch'], metadata: { ring: 'stable', floor: 0 } });
      await register({ name: 'Attic fan', model: 'SNSW', tags: ['attic', 'power'], metadata: { ring: 'beta', floor: 2 } });
      await register({ name: 'Porch far', model: 'SNPL', tags: ['porch', 'power'], metadata: { ring: 'beta' } }, otherOrg);
      await server.services.store.db.updateTable('devices').set({ connected_node: 'node_test' }).where('id', '=', plug).execute();

      const expectations: Array<[Record<string, unknown>, string[]]> = [
        [{ tags: ['porch', 'power'] }, ['Porch plug']],
        [{ tags: ['power'], model: 'SNSW' }, ['Attic fan']],
        [{ tags: ['porch'], online: true }, ['Porch plug']],
        [{ tags: ['porch'], online: false }, ['Porch light']],
        [{ metadata: { ring: 'beta' }, q: 'ATTI' }, ['Attic fan']],
        [{ metadata: { ring: 'beta', floor: 2 } }, ['Attic fan']],
        [{ metadata: { floor: '2' } }, []],
        [{ q: 'PORCH' }, ['Porch light', 'Porch plug']],
      ];
      for (const [index, [filter, names]] of expectations.entries()) {
        const group = await newGroup({ name: `filter ${index}`, filter });
        assert.equal(group.kind, 'dynamic');
        assert.deepEqual(group.filter, filter);
        assert.deepEqual(await memberNames(group.id, viewer), names, JSON.stringify(filter));
      }

      // Live: a device retagged now is in the group now.
      const group = await newGroup({ name: 'Attic', filter: { tags: ['attic'] } });
      assert.deepEqual(await memberNames(group.id), ['Attic fan']);
      await call('PATCH', `/api/orgs/${org}/devices/${plug}`, operator, { tags: ['attic'] });
      assert.deepEqual(await memberNames(group.id), ['Attic fan', 'Porch plug']);

      const before = await counts();
      const refused = await call('POST', `${groups()}/${group.id}/members`, admin(), { deviceIds: [plug] });
      assert.equal(refused.status, 409, 'a dynamic group takes no members by hand');
      assert.equal((await call('DELETE', `${groups()}/${group.id}/members/${plug}`, admin())).status, 409);
      assert.deepEqual(await counts(), before);
    });

    it('changes kind only through its filter, dropping the member list when it becomes dynamic', async () => {
      const device = await register({ name: 'Switcher', tags: ['switch'] });
      const group = await newGroup({ name: 'Switching', priority: 3 });
      await call('POST', `${groups()}/${group.id}/members`, admin(), { deviceIds: [device] });
      const renamed = await call('PATCH', `${groups()}/${group.id}`, admin(), { name: 'Switching group', description: 'renamed', priority: -2 });
      assert.equal(renamed.status, 200);
      assert.deepEqual([renamed.body.name, renamed.body.description, renamed.body.priority, renamed.body.kind], ['Switching group', 'renamed', -2, 'static']);
      assert.deepEqual(await memberNames(group.id), ['Switcher'], 'a rename keeps the members');

      const dynamic = await call('PATCH', `${groups()}/${group.id}`, admin(), { filter: { tags: ['nothing-has-this'] } });
      assert.equal(dynamic.body.kind, 'dynamic');
      assert.deepEqual(await memberNames(group.id), []);
      const stored = await server.services.store.db.selectFrom('device_group_members').select('device_id').where('group_id', '=', group.id).execute();
      assert.deepEqual(stored, []);

      const back = await call('PATCH', `${groups()}/${group.id}`, admin(), { filter: null });
      assert.equal(back.body.kind, 'static');
      assert.equal(back.body.filter, null);
      assert.deepEqual(await memberNames(group.id), [], 'a group made static starts empty');
      const audit = await call('GET', `/api/orgs/${org}/audit?targetId=${group.id}&action=group.update`, admin());
      assert.equal(audit.body.items[1].details.droppedMembers, 1);
    });

    it('never leaves members in a group made dynamic at the same time, nor fails on the same device added twice at once', async () => {
      const devices = await Promise.all(['Racer 1', 'Racer 2', 'Racer 3'].map((name) => register({ name })));
      for (let round = 0; round < 4; round++) {
        const group = await newGroup({ name: `Race ${round}` });
        const path = `${groups()}/${group.id}`;
        const replies = await Promise.all([
          call('POST', `${path}/members`, admin(), { deviceIds: devices }),
          call('POST', `${path}/members`, admin(), { deviceIds: devices }),
          call('PATCH', path, admin(), { filter: { tags: ['racing'] } }),
        ]);
        assert.ok(replies.every((r) => r.status === 200 || r.status === 409), replies.map((r) => `${r.status} ${JSON.stringify(r.body)}`).join('; '));
        const stored = await server.services.store.db.selectFrom('device_group_members').select('device_id').where('group_id', '=', group.id).execute();
        assert.deepEqual(stored, [], `round ${round}: the group is dynamic and keeps no list`);
        const added = replies.slice(0, 2).filter((r) => r.status === 200).map((r) => r.body.added as number);
        assert.ok(added.reduce((sum, n) => sum + n, 0) <= devices.length, `round ${round}: each device added once`);
      }
    });

    it('reports which groups a device is in and which one decides for it', async () => {
      const device = await register({ name: 'Ranked', tags: ['ranked'], metadata: { ring: 'canary' } });
      const list = await newGroup({ name: 'Ranked list', priority: 1 });
      await call('POST', `${groups()}/${list.id}/members`, admin(), { deviceIds: [device] });
      const canary = await newGroup({ name: 'Canary ring', priority: 7, filter: { metadata: { ring: 'canary' } } });
      // The older of two equals decides, and age is only defined across milliseconds.
      await new Promise((resolve) => setTimeout(resolve, 2));
      const ranked = await newGroup({ name: 'Ranked tag', priority: 7, filter: { tags: ['ranked'] } });
      await newGroup({ name: 'Unrelated', priority: 99, filter: { tags: ['unrelated'] } });
      const { groups: service } = server.services;
      assert.deepEqual(await service.groupIdsOf(org, device), [list.id, canary.id, ranked.id].sort());
      assert.equal((await service.effectiveGroupOf(org, device))?.id, canary.id, 'highest priority, the older of two equals');
      await call('PATCH', `${groups()}/${list.id}`, admin(), { priority: 8 });
      assert.equal((await service.effectiveGroupOf(org, device))?.id, list.id);
      assert.deepEqual(await service.groupIdsOf(otherOrg, device), []);
    });

    it('lists groups by text, paginated, and refuses a second group of the same name (409)', async () => {
      await newGroup({ name: 'Lobby sensors', description: 'ground floor' });
      await newGroup({ name: 'Roof', description: 'lobby roof antennas' });
      const names = async (query: string) => (await call('GET', `${groups()}?${query}`, viewer)).body.items.map((g: { name: string }) => g.name).sort();
      assert.deepEqual(await names('q=lobby'), ['Lobby sensors', 'Roof']);
      assert.deepEqual(await names('q=ground'), ['Lobby sensors']);
      const first = await call('GET', `${groups()}?q=lobby&limit=1`, viewer);
      const second = await call('GET', `${groups()}?q=lobby&limit=1&cursor=${first.body.nextCursor}`, viewer);
      assert.notEqual(first.body.items[0].id, second.body.items[0].id);
      assert.equal(second.body.nextCursor, null);

      const before = await counts();
      const duplicate = await call('POST', groups(), admin(), { name: 'Roof', filter: {} });
      assert.equal(duplicate.status, 409);
      assert.equal(duplicate.body.error.code, 'conflict');
      const lobby = (await call('GET', `${groups()}?q=sensors`, viewer)).body.items[0];
      assert.equal((await call('PATCH', `${groups()}/${lobby.id}`, admin(), { name: 'Roof' })).status, 409);
      assert.deepEqual(await counts(), before);
      // The same name in another organization is another group.
      assert.equal((await call('POST', groups(otherOrg), otherAdmin, { name: 'Roof' })).status, 201);
    });

    it('lets viewers read, only admins change, and nobody of another organization see anything', async () => {
      const device = await register({ name: 'Guarded' });
      const group = await newGroup({ name: 'Guarded group' });
      await call('POST', `${groups()}/${group.id}/members`, admin(), { deviceIds: [device] });
      const foreignGroup = (await call('POST', groups(otherOrg), otherAdmin, { name: 'Theirs' })).body.id as string;
      const one = `${groups()}/${group.id}`;
      const writes: Array<[string, string, unknown?]> = [
        ['POST', groups(), { name: 'Mine now' }],
        ['PATCH', one, { name: 'Taken over' }],
        ['DELETE', one],
        ['POST', `${one}/members`, { deviceIds: [device] }],
        ['DELETE', `${one}/members/${device}`],
      ];
      const reads = [groups(), one, `${one}/devices`];

      const before = await counts();
      for (const token of [viewer, operator]) {
        for (const path of reads) assert.equal((await call('GET', path, token)).status, 200, path);
        for (const [method, path, body] of writes) {
          const reply = await call(method, path, token, body);
          assert.equal(reply.status, 403, `${method} ${path}`);
          assert.equal(reply.body.error.code, 'forbidden');
        }
      }
      // Another organization's admin, and a device key (even of this organization), learn nothing.
      for (const token of [otherAdmin, deviceKey]) {
        for (const path of reads) assert.equal((await call('GET', path, token)).status, 404, path);
        for (const [method, path, body] of writes) assert.equal((await call(method, path, token, body)).status, 404, `${method} ${path}`);
      }
      // Nor through their own organization's routes: a group or a device of another organization is not found.
      for (const [method, path, body] of [
        ['GET', `${groups(otherOrg)}/${group.id}`],
        ['GET', `${groups(otherOrg)}/${group.id}/devices`],
        ['PATCH', `${groups(otherOrg)}/${group.id}`, { name: 'Taken over' }],
        ['DELETE', `${groups(otherOrg)}/${group.id}`],
        ['POST', `${groups(otherOrg)}/${group.id}/members`, { deviceIds: [device] }],
        ['POST', `${groups(otherOrg)}/${foreignGroup}/members`, { deviceIds: [device] }],
        ['DELETE', `${groups(otherOrg)}/${group.id}/members/${device}`],
      ] as Array<[string, string, unknown?]>) {
        assert.equal((await call(method, path, otherAdmin, body)).status, 404, `${method} ${path}`);
      }
      assert.deepEqual(await counts(), before);
      assert.deepEqual(await memberNames(group.id), ['Guarded']);
    });

    it('refuses hostile input with 400 and stores nothing', async () => {
      const device = await register({ name: 'Target' });
      const group = await newGroup({ name: 'Target group' });
      const dynamic = await newGroup({ name: 'Target filter', filter: { tags: ['t'] } });
      const tooMany = Array.from({ length: 1001 }, (_, i) => `dev_${i}`);
      const attempts: Array<[string, string, unknown]> = [
        ['POST', `${groups()}/${group.id}/members`, { deviceIds: tooMany }],
        ['POST', `${groups()}/${group.id}/members`, { deviceIds: [] }],
        ['POST', `${groups()}/${group.id}/members`, { deviceIds: device }],
        ['POST', `${groups()}/${group.id}/members`, { deviceIds: [device], extra: true }],
        ['POST', `${groups()}/${group.id}/members`, { deviceIds: [''] }],
        ['POST', `${groups()}/${group.id}/members`, { deviceIds: ['x'.repeat(101)] }],
        ['POST', groups(), { name: 'Unknown field', kind: 'static' }],
        ['POST', groups(), { name: '' }],
        ['POST', groups(), { name: 'x'.repeat(201) }],
        ['POST', groups(), { name: 'Float', priority: 1.5 }],
        ['POST', groups(), { name: 'Huge', priority: 1e12 }],
        ['POST', groups(), { name: 'Text priority', priority: '1' }],
        ['POST', groups(), { name: 'Long text', description: 'x'.repeat(1001) }],
        ['POST', groups(), { name: 'Array filter', filter: [] }],
        ['POST', groups(), { name: 'Unknown criterion', filter: { group: 'x' } }],
        ['POST', groups(), { name: 'Tags text', filter: { tags: 'a' } }],
        ['POST', groups(), { name: 'Bad tag', filter: { tags: ['a b'] } }],
        ['POST', groups(), { name: 'Many tags', filter: { tags: Array.from({ length: 21 }, (_, i) => `t${i}`) } }],
        ['POST', groups(), { name: 'Online text', filter: { online: 'yes' } }],
        ['POST', groups(), { name: 'Nested metadata', filter: { metadata: { a: { b: 1 } } } }],
        ['POST', groups(), { name: 'Null metadata', filter: { metadata: { a: null } } }],
        ['POST', groups(), { name: 'List metadata', filter: { metadata: { a: [1] } } }],
        ['POST', groups(), { name: 'Quoted key', filter: { metadata: { 'a"b': 1 } } }],
        ['POST', groups(), { name: 'Injected key', filter: { metadata: { "a') or 1=1 --": 1 } } }],
        ['POST', groups(), { name: 'Many keys', filter: { metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, i])) } }],
        ['PATCH', `${groups()}/${group.id}`, {}],
        ['PATCH', `${groups()}/${group.id}`, { name: 'Renamed', unknown: 1 }],
        ['PATCH', `${groups()}/${dynamic.id}`, { filter: { online: 1 } }],
        ['PATCH', `${groups()}/${dynamic.id}`, { filter: 'tags=t' }],
      ];
      const before = await counts();
      for (const [method, path, body] of attempts) {
        const reply = await call(method, path, admin(), body);
        assert.equal(reply.status, 400, `${method} ${path} ${JSON.stringify(body).slice(0, 120)}: ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`);
        assert.equal(reply.body.error.code, 'validation_failed');
      }
      for (const query of ['limit=0', 'limit=501', 'cursor=bad', 'q=' + 'x'.repeat(201), 'unknown=1']) {
        assert.equal((await call('GET', `${groups()}?${query}`, viewer)).status, 400, query);
      }
      assert.equal((await call('GET', `${groups()}/${group.id}/devices?tag=a`, viewer)).status, 400);
      assert.deepEqual(await counts(), before);
      assert.deepEqual((await call('GET', `${groups()}/${dynamic.id}`, viewer)).body.filter, { tags: ['t'] });
      assert.equal((await call('GET', `${groups()}/grp_nope`, viewer)).status, 404);
    });
  });
}
