import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StateDocument } from '../../src/core/device-state.ts';
import { newId } from '../../src/core/ids.ts';
import { systemActor } from '../../src/services/actor.ts';
import type { DeviceFilter } from '../../src/services/device-query.ts';
import { Devices } from '../../src/services/devices.ts';
import { Groups } from '../../src/services/groups.ts';
import { NodeCache } from '../../src/services/node-cache.ts';
import { Organizations, type Organization } from '../../src/services/organizations.ts';
import { nowIso } from '../../src/store/page.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';

/**
 * Device groups at the service: what a filter means on each database, which groups a device is in,
 * and which of them decides for it.
 */

for (const backend of await backends()) {
  describe(`groups service [${backend.name}]`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let services: { organizations: Organizations; devices: Devices; groups: Groups };
    let org: string;
    let otherOrg: string;
    const principal = systemActor.principal;

    const device = async (name: string, options: { tags?: string[]; model?: string; metadata?: StateDocument; orgId?: string } = {}) =>
      (await services.devices.create(systemActor, options.orgId ?? org, { name, ...options })).id;
    // Each group a millisecond or more after the last: among groups of equal priority the older one
    // decides, and age is only defined across milliseconds.
    const group = async (name: string, filter: DeviceFilter | null = null, priority = 0) => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      return (await services.groups.create(systemActor, org, { name, filter, priority })).id;
    };
    const memberNames = async (groupId: string) =>
      (await services.groups.members(principal, org, groupId, { limit: 500 })).items.map((d) => d.name).sort();
    const dynamicNames = async (filter: DeviceFilter) => memberNames(await group(`filter ${JSON.stringify(filter)}`, filter));

    before(async () => {
      database = await backend.create();
      store = openStore(database.url);
      await store.migrate();
      const organizations = new Organizations(store, new NodeCache<Organization>(1000));
      services = { organizations, devices: new Devices(store, organizations), groups: new Groups(store, organizations) };
      org = (await services.organizations.create(systemActor, { slug: 'groups', name: 'Groups' })).id;
      otherOrg = (await services.organizations.create(systemActor, { slug: 'others', name: 'Others' })).id;
    });
    after(async () => {
      await store?.close();
      await database?.drop();
    });

    it('compares metadata by key, value and JSON type', async () => {
      await device('flag true', { metadata: { m: true } });
      await device('number one', { metadata: { m: 1 } });
      await device('number one and a half', { metadata: { m: 1.5 } });
      await device('text one', { metadata: { m: '1' } });
      await device('text true', { metadata: { m: 'true' } });
      await device('nested', { metadata: { m: { m: 1 } } });
      await device('list', { metadata: { m: [1] } });
      await device('quoted', { metadata: { m: 'it\'s "x" \\ ü ☃', 'dotted.key': 'yes' } });
      await device('other key', { metadata: { n: 1 } });
      await device('elsewhere', { metadata: { m: 1 }, orgId: otherOrg });

      assert.deepEqual(await dynamicNames({ metadata: { m: true } }), ['flag true']);
      assert.deepEqual(await dynamicNames({ metadata: { m: 1 } }), ['number one']);
      assert.deepEqual(await dynamicNames({ metadata: { m: 1.5 } }), ['number one and a half']);
      assert.deepEqual(await dynamicNames({ metadata: { m: '1' } }), ['text one']);
      assert.deepEqual(await dynamicNames({ metadata: { m: 'true' } }), ['text true']);
      assert.deepEqual(await dynamicNames({ metadata: { m: false } }), []);
      assert.deepEqual(await dynamicNames({ metadata: { m: 'it\'s "x" \\ ü ☃' } }), ['quoted']);
      assert.deepEqual(await dynamicNames({ metadata: { 'dotted.key': 'yes', m: 'it\'s "x" \\ ü ☃' } }), ['quoted']);
      assert.deepEqual(await dynamicNames({ metadata: { 'dotted.key': 'yes', m: 1 } }), []);
    });

    it('refuses metadata keys and values a query could not hold, even past the HTTP schemas', async () => {
      const before = await store.db.selectFrom('device_groups').select('id').execute();
      for (const filter of [
        { metadata: { 'a"b': 1 } },
        { metadata: { "$') or 1=1 --": 1 } },
        { metadata: { '': 1 } },
        { metadata: { nested: { a: 1 } } },
        { metadata: { missing: null } },
      ] as unknown as DeviceFilter[]) {
        await assert.rejects(services.groups.create(systemActor, org, { name: `bad ${JSON.stringify(filter)}`, filter }), { code: 'bad_request' }, JSON.stringify(filter));
      }
      await assert.rejects(services.devices.list(principal, org, { metadata: { 'a"b': 1 } }, {}), { code: 'bad_request' });
      assert.equal((await store.db.selectFrom('device_groups').select('id').execute()).length, before.length);
    });

    it('filters by every tag, model, online and text, and the device list means the same', async () => {
      const plug = await device('Kitchen plug', { tags: ['kitchen', 'power'], model: 'SNPL', metadata: { floor: 1 } });
      await device('Kitchen light', { tags: ['kitchen'], model: 'SNSW', metadata: { floor: 1 } });
      await device('Garage door', { tags: ['garage', 'power'], model: 'SNSW', metadata: { floor: 0 } });
      await store.db.updateTable('devices').set({ connected_node: 'node_test' }).where('id', '=', plug).execute();

      assert.deepEqual(await dynamicNames({ tags: ['kitchen', 'power'] }), ['Kitchen plug']);
      assert.deepEqual(await dynamicNames({ tags: ['power'], model: 'SNSW' }), ['Garage door']);
      assert.deepEqual(await dynamicNames({ tags: ['kitchen'], online: false }), ['Kitchen light']);
      assert.deepEqual(await dynamicNames({ online: true }), ['Kitchen plug']);
      assert.deepEqual(await dynamicNames({ q: 'KITCHEN', metadata: { floor: 1 } }), ['Kitchen light', 'Kitchen plug']);
      assert.deepEqual(await dynamicNames({ q: '%' }), []);
      const listed = await services.devices.list(principal, org, { tags: ['kitchen'], metadata: { floor: 1 }, online: false }, {});
      assert.deepEqual(listed.items.map((d) => d.name), ['Kitchen light']);
    });

    it('knows the static and dynamic groups of one device, and which of them decides for it', async () => {
      const sensor = await device('Hall sensor', { tags: ['hall', 'sensor'], metadata: { ring: 'beta' } });
      const lonely = await device('Lonely', { tags: ['nowhere'] });
      const foreign = await device('Foreign', { tags: ['hall', 'sensor'], metadata: { ring: 'beta' }, orgId: otherOrg });
      const list = await group('hand-picked', null, 5);
      const sensors = await group('sensors', { tags: ['sensor'] }, 5);
      const beta = await group('beta ring', { metadata: { ring: 'beta' } }, 10);
      const hall = await group('hall', { tags: ['hall'] }, 1);
      await group('kitchen', { tags: ['kitchen'] }, 100);
      await services.groups.addMembers(systemActor, org, list, [sensor]);

      assert.deepEqual(await services.groups.groupIdsOf(org, sensor), [list, sensors, beta, hall].sort());
      assert.deepEqual(await services.groups.groupIdsOf(org, lonely), []);
      assert.deepEqual(await services.groups.groupIdsOf(org, foreign), [], 'a device of another organization is in none of these groups');
      assert.deepEqual(await services.groups.groupIdsOf(otherOrg, sensor), []);
      assert.deepEqual(await services.groups.memberIds(org, list), [sensor]);
      assert.deepEqual(await services.groups.memberIds(org, beta), [sensor]);
      await assert.rejects(services.groups.memberIds(otherOrg, beta), { code: 'not_found' });

      assert.equal((await services.groups.effectiveGroupOf(org, sensor))?.id, beta);
      // Many devices at once say what each alone says.
      const many = await services.groups.groupIdsOfMany(org, [sensor, lonely, foreign]);
      assert.deepEqual([...many], [
        [sensor, [list, sensors, beta, hall].sort()],
        [lonely, []],
        [foreign, []],
      ]);
      const effective = await services.groups.effectiveGroupsOf(org, [sensor, lonely]);
      assert.deepEqual([...effective].map(([id, group]) => [id, group?.id ?? null]), [
        [sensor, beta],
        [lonely, null],
      ]);
      await services.groups.update(systemActor, org, beta, { priority: 5 });
      // hand-picked, sensors and beta ring now share priority 5: the oldest decides.
      assert.equal((await services.groups.effectiveGroupOf(org, sensor))?.id, list);
      await services.groups.delete(systemActor, org, list);
      assert.equal((await services.groups.effectiveGroupOf(org, sensor))?.id, sensors);
      assert.equal(await services.groups.effectiveGroupOf(org, lonely), null);
    });

    it('adds and removes members in one transaction: an unknown device to add changes nothing', async () => {
      const [kept, gone, joining] = [await device('change-kept'), await device('change-gone'), await device('change-joining')];
      const g = await group('change');
      await services.groups.addMembers(systemActor, org, g, [kept, gone]);
      await assert.rejects(services.groups.changeMembers(systemActor, org, g, { add: [joining, 'dev_missing'], remove: [gone] }), { code: 'not_found' });
      assert.deepEqual(await memberNames(g), ['change-gone', 'change-kept']);
      const foreign = await device('change-foreign', { orgId: otherOrg });
      await assert.rejects(services.groups.changeMembers(systemActor, org, g, { add: [foreign], remove: [gone] }), { code: 'not_found' });
      assert.deepEqual(await memberNames(g), ['change-gone', 'change-kept']);
      assert.deepEqual(await services.groups.changeMembers(systemActor, org, g, { add: [joining, kept], remove: [gone, 'dev_never_a_member'] }), { added: 1, removed: 1 });
      assert.deepEqual(await memberNames(g), ['change-joining', 'change-kept']);
    });

    it('evaluates more dynamic groups than one query holds', async () => {
      const target = await device('Target', { tags: ['many'], metadata: { n: 7 } });
      // Written straight to the store: what is tested is reading them.
      const rows = Array.from({ length: 230 }, (_, i) => ({
        id: newId('grp'),
        org_id: org,
        name: `many ${i}`,
        description: '',
        filter: JSON.stringify(i % 3 === 0 ? { tags: ['many'], metadata: { n: 7 } } : { tags: ['many'], metadata: { n: i } }),
        priority: 0,
        update_policy: 'no_update' as const,
        target_version: null,
        metadata: '{}',
        created_at: nowIso(),
        updated_at: nowIso(),
      }));
      await store.db.insertInto('device_groups').values(rows).execute();
      const created = rows.map((row) => row.id);
      const matching = rows.filter((_, i) => i % 3 === 0 || i === 7).map((row) => row.id);
      const ids = await services.groups.groupIdsOf(org, target);
      assert.deepEqual(ids.filter((id) => created.includes(id)), matching.sort());
      // And over more devices than one query names.
      const others = await Promise.all(Array.from({ length: 3 }, (_, i) => device(`Other ${i}`, { tags: ['few'] })));
      const fleet = [...Array.from({ length: 600 }, (_, i) => `dev_missing_${i}`), target, ...others];
      const byDevice = await services.groups.groupIdsOfMany(org, fleet);
      assert.deepEqual(byDevice.get(target), ids);
      for (const other of others) assert.deepEqual(byDevice.get(other)!.filter((id) => created.includes(id)), []);
      assert.deepEqual(byDevice.get('dev_missing_0'), []);
    });
  });
}
