import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BlobStore } from '../../src/blob/blob-store.ts';
import { openBlobStore } from '../../src/blob/open.ts';
import type { Principal } from '../../src/core/access.ts';
import { FleetError } from '../../src/core/errors.ts';
import { systemActor, type Actor } from '../../src/services/actor.ts';
import { Devices } from '../../src/services/devices.ts';
import { NodeCache } from '../../src/services/node-cache.ts';
import { Organizations, type Organization } from '../../src/services/organizations.ts';
import { ResourceTree } from '../../src/services/resources/tree.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';

/** The resource tree at the service: paths, moves, soft deletes, listings, revisions and device folders. */

const code = async (promise: Promise<unknown>): Promise<string> => {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (error instanceof FleetError) return error.code;
    throw error;
  }
};

for (const backend of await backends()) {
  describe(`resource tree [${backend.name}]`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let data: string;
    let store: Store;
    let blobs: BlobStore;
    let organizations: Organizations;
    let devices: Devices;
    let tree: ResourceTree;
    let org: Organization;
    let otherOrg: Organization;
    const admin = systemActor;
    const member = (role: 'viewer' | 'operator', userId = 'usr_member'): Actor => ({
      principal: { kind: 'user', userId, systemAdmin: false, orgRoles: new Map([[org.id, role]]), via: 'token' },
    });
    const p = (path: string) => `/tree${path}`;
    const names = (items: Array<{ relativePath: string }>) => items.map((r) => r.relativePath);

    before(async () => {
      database = await backend.create();
      data = mkdtempSync(join(tmpdir(), 'fleetd-resources-'));
      store = openStore(database.url);
      await store.migrate();
      organizations = new Organizations(store, new NodeCache<Organization>(1000));
      devices = new Devices(store, organizations);
      blobs = openBlobStore({ blobStorage: '', data, s3Endpoint: '', s3Region: 'us-east-1', s3AccessKeyId: '', s3SecretAccessKey: '', s3ForcePathStyle: false });
      tree = new ResourceTree({ store, organizations, blobs, config: { blobThreshold: 64 } });
      org = await organizations.create(admin, { slug: 'tree', name: 'Tree' });
      otherOrg = await organizations.create(admin, { slug: 'other', name: 'Other' });
    });
    after(async () => {
      await blobs?.close();
      await store?.close();
      await database?.drop();
      if (data) rmSync(data, { recursive: true, force: true });
    });

    it("makes the organization's folder on first use, with its users and devices writing", async () => {
      const root = await tree.resolve(admin.principal, '/tree');
      assert.equal(root.type, 'organization_folder');
      assert.equal(root.name, 'tree');
      assert.equal(root.path, '/tree');
      assert.equal(root.relativePath, '');
      assert.deepEqual(root.permissions, [[110, org.id, 20], [120, org.id, 20]]);
      assert.equal((await Promise.all([tree.resolve(admin.principal, '/other'), tree.resolve(admin.principal, '/other/')]))[0].orgId, otherOrg.id);
    });

    it('creates, reads, renames and moves; the subtree follows', async () => {
      await tree.create(admin, p(''), { name: 'a', type: 'basic_folder' });
      await tree.create(admin, p('/a'), { name: 'b', type: 'basic_folder', userAttributes: { colour: 'red' } });
      const file = await tree.create(admin, p('/a/b'), { name: 'c.txt', type: 'file', content: Buffer.from('hello') });
      assert.equal(file.path, '/tree/a/b/c.txt');
      assert.equal((await tree.resolve(admin.principal, p('/a/b'))).userAttributes.colour, 'red');
      assert.equal(await code(tree.create(admin, p('/a'), { name: 'b', type: 'file' })), 'conflict');
      assert.equal(await code(tree.create(admin, p('/a/b/c.txt'), { name: 'd', type: 'file' })), 'bad_request');
      assert.equal(await code(tree.create(admin, p('/nowhere'), { name: 'd', type: 'file' })), 'not_found');
      assert.equal(await code(tree.create(admin, p('/a'), { name: 'x/y', type: 'file' })), 'bad_request');

      const renamed = await tree.update(admin, p('/a'), { name: 'a2' });
      assert.equal(renamed.path, '/tree/a2');
      assert.equal((await tree.byId(admin.principal, file.id)).path, '/tree/a2/b/c.txt');
      assert.equal(await code(tree.resolve(admin.principal, p('/a/b'))), 'not_found');

      await tree.create(admin, p(''), { name: 'z', type: 'basic_folder' });
      const moved = await tree.update(admin, p('/a2/b'), { parentPath: p('/z'), name: 'b2' });
      assert.equal(moved.path, '/tree/z/b2');
      assert.equal((await tree.byId(admin.principal, file.id)).relativePath, '/z/b2/c.txt');
      assert.equal((await tree.readFile(admin.principal, p('/z/b2/c.txt'))).content.toString(), 'hello');
      assert.equal(await code(tree.update(admin, p('/z'), { parentPath: p('/z/b2') })), 'bad_request');
      assert.equal(await code(tree.update(admin, p('/z'), { parentPath: '/other' })), 'bad_request');
      assert.equal(await code(tree.update(admin, p(''), { name: 'x' })), 'bad_request');
      await tree.create(admin, p('/z'), { name: 'taken', type: 'basic_folder' });
      assert.equal(await code(tree.update(admin, p('/z/b2'), { name: 'taken' })), 'conflict');
    });

    it('soft-deletes a subtree; its names are free again', async () => {
      await tree.create(admin, p('/gone/inner'), { name: 'leaf', type: 'file', createParents: true });
      const before = await tree.resolve(admin.principal, p('/gone/inner/leaf'));
      await tree.delete(admin, p('/gone'));
      assert.equal(await code(tree.resolve(admin.principal, p('/gone'))), 'not_found');
      assert.equal(await code(tree.byId(admin.principal, before.id)), 'not_found');
      const again = await tree.create(admin, p('/gone/inner'), { name: 'leaf', type: 'file', createParents: true });
      assert.notEqual(again.id, before.id);
      const rows = await store.db.selectFrom('resources').select('deleted').where('id', '=', before.id).executeTakeFirstOrThrow();
      assert.equal(rows.deleted, 1);
      assert.equal(await code(tree.delete(admin, p(''))), 'bad_request');
    });

    it('lists children or the subtree by path, filtered by type and name, page by page', async () => {
      await tree.create(admin, p('/list/sub'), { name: 'Temp_1', type: 'file', createParents: true });
      await tree.create(admin, p('/list/sub'), { name: 'temp%2', type: 'file' });
      await tree.create(admin, p('/list'), { name: 'temperature', type: 'sequence', sequence: { dataType: 'numeric' } });
      await tree.create(admin, p('/list'), { name: 'humidity', type: 'sequence', sequence: { dataType: 'numeric' } });
      assert.deepEqual(names((await tree.list(admin.principal, p('/list'))).items), ['/list/humidity', '/list/sub', '/list/temperature']);
      assert.deepEqual(names((await tree.list(admin.principal, p('/list'), { recursive: true })).items), ['/list/humidity', '/list/sub', '/list/sub/Temp_1', '/list/sub/temp%2', '/list/temperature']);
      assert.deepEqual(names((await tree.list(admin.principal, p('/list'), { recursive: true, type: 'file' })).items), ['/list/sub/Temp_1', '/list/sub/temp%2']);
      assert.deepEqual(names((await tree.list(admin.principal, p('/list'), { recursive: true, filter: 'temp*' })).items), ['/list/sub/Temp_1', '/list/sub/temp%2', '/list/temperature']);
      assert.deepEqual(names((await tree.list(admin.principal, p('/list'), { recursive: true, filter: 'temp_*' })).items), ['/list/sub/Temp_1']);
      assert.deepEqual(names((await tree.list(admin.principal, p('/list'), { recursive: true, filter: '*%*' })).items), ['/list/sub/temp%2']);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await tree.list(admin.principal, p('/list'), { recursive: true, limit: 2, cursor });
        assert.ok(page.items.length <= 2);
        seen.push(...names(page.items));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      assert.deepEqual(seen, ['/list/humidity', '/list/sub', '/list/sub/Temp_1', '/list/sub/temp%2', '/list/temperature']);
      assert.equal(await code(tree.list(admin.principal, p('/list/humidity'))), 'bad_request');
    });

    it('inherits permissions down the tree, with overrides, and lists only what one may read', async () => {
      const viewer = member('viewer', 'usr_viewer');
      const operator = member('operator', 'usr_operator');
      await tree.create(admin, p(''), { name: 'private', type: 'basic_folder', permissions: [[110, org.id, 0], [130, 'usr_operator', 10]] });
      await tree.create(admin, p('/private'), { name: 'open', type: 'basic_folder', permissions: [[110, org.id, 20]] });
      await tree.create(admin, p('/private'), { name: 'closed', type: 'file' });
      await tree.create(admin, p(''), { name: 'public', type: 'basic_folder', permissions: [[100, null, 10]] });
      await tree.create(admin, p('/public'), { name: 'readme', type: 'file', content: Buffer.from('public words') });

      assert.equal(await code(tree.resolve(viewer.principal, p('/private'))), 'not_found');
      assert.equal(await code(tree.resolve(operator.principal, p('/private/closed'))), 'ok');
      assert.equal(await code(tree.resolve(operator.principal, p('/private/closed'), 'write')), 'forbidden');
      assert.equal(await code(tree.create(operator, p('/private'), { name: 'x', type: 'file' })), 'forbidden');
      assert.equal(await code(tree.create(operator, p('/private/open'), { name: 'x', type: 'file' })), 'ok');
      assert.equal(await code(tree.resolve(viewer.principal, p('/private/open/x'))), 'ok');
      assert.equal(await code(tree.resolve(viewer.principal, p('/private/open/x'), 'write')), 'forbidden');
      assert.deepEqual(names((await tree.list(operator.principal, p('/private'), { recursive: true })).items), ['/private/closed', '/private/open', '/private/open/x']);
      // The viewer cannot read /private, but reads what /private/open gives back.
      assert.equal(await code(tree.list(viewer.principal, p('/private'))), 'not_found');
      assert.deepEqual(names((await tree.list(viewer.principal, p('/private/open'))).items), ['/private/open/x']);

      assert.equal((await tree.readFile(undefined, p('/public/readme'))).content.toString(), 'public words');
      assert.equal(await code(tree.resolve(undefined, p('/list'))), 'not_found');
      assert.equal(await code(tree.resolve(undefined, '/nonexistent-org/x')), 'not_found');
      assert.equal(await code(tree.writeFile({ principal: { kind: 'user', userId: 'usr_out', systemAdmin: false, orgRoles: new Map(), via: 'token' } }, p('/public/readme'), Buffer.from('x'))), 'forbidden');
      assert.equal(await tree.accessOf(undefined, await tree.resolve(admin.principal, p('/public'))), 10);

      // Only admins set permissions.
      assert.equal(await code(tree.update(operator, p('/private/open/x'), { permissions: [[100, null, 20]] })), 'forbidden');
      assert.equal(await code(tree.create(operator, p('/private/open'), { name: 'y', type: 'file', permissions: [[100, null, 20]] })), 'forbidden');
      const inherited = await tree.update(admin, p('/private/open'), { permissions: null });
      assert.equal(inherited.permissions, null);
      assert.equal(await code(tree.resolve(viewer.principal, p('/private/open/x'))), 'not_found');
    });

    it('keeps another organization out of the tree entirely', async () => {
      const outsider: Principal = { kind: 'user', userId: 'usr_o', systemAdmin: false, orgRoles: new Map([[otherOrg.id, 'owner']]), via: 'token' };
      const theirDevice: Principal = { kind: 'device', deviceId: 'dev_o', orgId: otherOrg.id, keyId: 'k' };
      for (const who of [outsider, theirDevice]) {
        assert.equal(await code(tree.resolve(who, p(''))), 'not_found');
        assert.equal(await code(tree.list(who, p('/list'))), 'not_found');
        assert.equal(await code(tree.create({ principal: who }, p(''), { name: 'x', type: 'file' })), 'not_found');
        assert.equal(await code(tree.delete({ principal: who }, p('/list'))), 'not_found');
      }
    });

    it('keeps small revisions in the database and large ones in blob storage, and reads both back', async () => {
      const small = Buffer.from('a small file');
      const large = randomBytes(10_000);
      const file = await tree.create(admin, p(''), { name: 'data.bin', type: 'file', content: small });
      const second = await tree.writeFile(admin, p('/data.bin'), large);
      assert.equal(second.storage, 'blob');
      assert.equal(second.size, large.length);
      const rows = await store.db.selectFrom('resource_revisions').selectAll().where('resource_id', '=', file.id).orderBy('id').execute();
      assert.equal(rows.length, 2);
      assert.ok(rows[0]!.data && rows[0]!.blob_key === null);
      assert.equal(rows[1]!.data, null);
      assert.equal(rows[1]!.blob_key, `rev/${org.id}/${file.id}/${second.id}`);
      assert.ok((await blobs.get(rows[1]!.blob_key!))!.equals(large));
      assert.ok((await tree.readFile(admin.principal, p('/data.bin'))).content.equals(large));
      assert.ok((await tree.readFile(admin.principal, p('/data.bin'), rows[0]!.id)).content.equals(small));
      const listed = await tree.revisions(admin.principal, p('/data.bin'), {});
      assert.deepEqual(listed.items.map((r) => r.storage), ['database', 'blob']);
      const info = await tree.resolve(admin.principal, p('/data.bin'));
      assert.equal(info.lastRevisionId, second.id);
      assert.equal(info.systemAttributes.size, large.length);
      assert.equal(await code(tree.readFile(admin.principal, p('/data.bin'), 'rev_unknown')), 'not_found');
      assert.equal(await code(tree.writeFile(admin, p('/list'), small)), 'bad_request');
      // A change of system attributes keeps those fleetd keeps there; null removes a key.
      await tree.update(admin, p('/data.bin'), { systemAttributes: { label: 'raw', note: 'x' } });
      await tree.update(admin, p('/data.bin'), { systemAttributes: { note: null } });
      const changed = (await tree.resolve(admin.principal, p('/data.bin'))).systemAttributes;
      assert.equal(changed.size, large.length);
      assert.equal(changed.label, 'raw');
      assert.ok(!('note' in changed));
    });

    it('gives each device a folder, soft-deleted with the device, and makes one for older devices', async () => {
      const fridge = await devices.create(admin, org.id, { name: 'fridge' });
      const folder = await tree.deviceFolder(fridge.id);
      assert.equal(folder.path, '/tree/fridge');
      assert.equal(folder.type, 'controller_folder');
      assert.equal(folder.deviceId, fridge.id);
      const twin = await devices.create(admin, org.id, { name: 'fridge' });
      assert.match((await tree.deviceFolder(twin.id)).name, /^fridge-.{8}$/);
      const odd = await devices.create(admin, org.id, { name: 'a/b' });
      assert.match((await tree.deviceFolder(odd.id)).name, /^a_b-.{8}$/);

      // A device made before the tree existed gets its folder on first use.
      await store.db.deleteFrom('resources').where('device_id', '=', odd.id).execute();
      assert.equal((await tree.deviceFolder(odd.id)).deviceId, odd.id);

      await tree.create(admin, folder.path, { name: 'temperature', type: 'sequence', sequence: { dataType: 'numeric' } });
      await devices.delete(admin, org.id, fridge.id);
      assert.equal(await code(tree.resolve(admin.principal, '/tree/fridge')), 'not_found');
      assert.equal(await code(tree.resolve(admin.principal, '/tree/fridge/temperature')), 'not_found');

      // A device may write in its organization's tree (the root's entry for its devices).
      const device: Principal = { kind: 'device', deviceId: twin.id, orgId: org.id, keyId: 'k' };
      assert.equal(await code(tree.create({ principal: device }, (await tree.deviceFolder(twin.id)).path, { name: 'log', type: 'sequence', sequence: { dataType: 'text' } })), 'ok');
    });

    it('makes a device with a controller folder created anywhere (admins only)', async () => {
      await tree.create(admin, p(''), { name: 'site', type: 'basic_folder' });
      const folder = await tree.create(admin, p('/site'), { name: 'pump', type: 'controller_folder', userAttributes: { where: 'cellar' } });
      assert.equal(folder.path, '/tree/site/pump');
      assert.deepEqual(folder.userAttributes, { where: 'cellar' });
      assert.ok(folder.deviceId);
      assert.equal((await devices.get(admin.principal, org.id, folder.deviceId)).name, 'pump');
      assert.equal((await tree.deviceFolder(folder.deviceId)).id, folder.id);
      assert.equal(await code(tree.create(member('operator'), p('/site'), { name: 'valve', type: 'controller_folder' })), 'forbidden');
      assert.equal(await code(tree.create(admin, p('/site'), { name: 'pump', type: 'controller_folder' })), 'conflict');
    });

    it("gives new sequences the archive definition of the nearest folder that has one", async () => {
      const rrd = ['--step', '10', 'DS:value:GAUGE:30:U:U', 'RRA:AVERAGE:0.5:1:100'];
      await tree.create(admin, p(''), { name: 'archived', type: 'basic_folder', systemAttributes: { rrd } });
      const seq = await tree.create(admin, p('/archived/deeper'), { name: 'level', type: 'sequence', sequence: { dataType: 'numeric' }, createParents: true });
      const row = await store.db.selectFrom('sequences').select('rrd').where('resource_id', '=', seq.id).executeTakeFirstOrThrow();
      assert.equal(JSON.parse(row.rrd!).step, 10);
      assert.equal(await code(tree.create(admin, p(''), { name: 'bare', type: 'sequence' })), 'bad_request');
      // Settings change later too; new archive arguments replace the definition.
      await tree.update(admin, p('/archived/deeper/level'), { sequence: { units: 'cm', rrd: ['--step', '30', 'DS:value:GAUGE:90:U:U', 'RRA:MAX:0.5:2:50'] } });
      const changed = await store.db.selectFrom('sequences').select(['rrd', 'units']).where('resource_id', '=', seq.id).executeTakeFirstOrThrow();
      assert.equal(changed.units, 'cm');
      assert.equal(JSON.parse(changed.rrd!).step, 30);
      assert.equal(await code(tree.update(admin, p('/archived'), { sequence: { units: 'cm' } })), 'bad_request');
      assert.equal(await code(tree.update(admin, p('/archived/deeper/level'), { sequence: { rrd: ['RRA:BOGUS'] } })), 'bad_request');
      assert.equal((await store.db.selectFrom('sequences').select('units').where('resource_id', '=', seq.id).executeTakeFirstOrThrow()).units, 'cm');
    });

    it('records creation, changes and deletion in the audit log', async () => {
      const made = await tree.create(admin, p(''), { name: 'audited', type: 'basic_folder' });
      await tree.update(admin, p('/audited'), { name: 'audited2' });
      await tree.delete(admin, p('/audited2'));
      const events = await store.db.selectFrom('audit_events').select(['action', 'details']).where('target_id', '=', made.id).execute();
      // Ids order events only across milliseconds: compare the set.
      assert.deepEqual(events.map((e) => e.action).sort(), ['resource.create', 'resource.delete', 'resource.update']);
      assert.equal(JSON.parse(events.find((e) => e.action === 'resource.create')!.details!).path, '/tree/audited');
    });
  });
}
