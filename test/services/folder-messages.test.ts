import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Principal } from '../../src/core/access.ts';
import type { Bus } from '../../src/hub/bus.ts';
import { createLogger } from '../../src/log.ts';
import { FolderMessages, maxParametersBytes, type FolderMessage } from '../../src/services/folder-messages.ts';
import type { ResourceInfo } from '../../src/services/resources/resource-info.ts';
import { nowIso } from '../../src/store/page.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';
import { busBackends, fence, uniquePrefix } from '../hub/buses.ts';
import { Arrivals } from '../helpers/waiting.ts';

/**
 * Folder messages on two nodes of one cluster (one database, two bus connections): stored, heard
 * once by the listeners of every node, per organization, sequence values turned into
 * sequence_update, and pruned after the retention.
 */

const silent = createLogger('silent');
const device: Principal = { kind: 'device', deviceId: 'dev_1', orgId: 'org_a', keyId: 'key_1' };

type CommittedListener = Parameters<ConstructorParameters<typeof FolderMessages>[0]['series']['onCommitted']>[0];

/** A series that only lets the test play committed values. */
function fakeSeries() {
  const listeners: CommittedListener[] = [];
  return {
    onCommitted: (listener: CommittedListener) => {
      listeners.push(listener);
      return () => void listeners.splice(listeners.indexOf(listener), 1);
    },
    commit: (values: Parameters<CommittedListener>[0]) => listeners.forEach((l) => l(values)),
  };
}

function folder(id: string, orgId: string, relativePath: string): ResourceInfo {
  return {
    id,
    orgId,
    parentId: null,
    name: id,
    path: `/${orgId}${relativePath}`,
    relativePath,
    type: 'basic_folder',
    deviceId: null,
    systemAttributes: {},
    userAttributes: {},
    permissions: null,
    lastRevisionId: null,
    createdAt: nowIso(),
    modifiedAt: nowIso(),
  };
}

async function seed(store: Store): Promise<void> {
  const at = nowIso();
  for (const org of ['org_a', 'org_b']) {
    await store.db.insertInto('organizations').values({ id: org, slug: org, name: org, created_at: at, updated_at: at }).execute();
    await store.db
      .insertInto('resources')
      .values({ id: `${org}_root`, org_id: org, parent_id: null, name: org, path: '', type: 11, device_id: null, system_attributes: '{}', user_attributes: '{}', permissions: null, last_revision_id: null, deleted: 0, created_at: at, modified_at: at })
      .execute();
  }
}

/** Keeps what a listener hears. */
function collector() {
  const messages: FolderMessage[] = [];
  const arrivals = new Arrivals();
  return {
    messages,
    listener: (message: FolderMessage) => {
      messages.push(message);
      arrivals.arrived();
    },
    until: (count: number) => arrivals.until(() => messages.length >= count, `${count} messages (have ${messages.length})`),
  };
}

for (const backend of await backends()) {
  for (const busBackend of await busBackends()) {
    describe(`folder messages on ${backend.name} with the ${busBackend.name} bus`, { skip: backend.skip ?? busBackend.skip }, () => {
      let database: TestDatabase;
      let stores: [Store, Store];
      let buses: [Bus, Bus];
      let nodes: [FolderMessages, FolderMessages];
      const series = fakeSeries();
      const prefix = uniquePrefix();

      before(async () => {
        database = await backend.create();
        stores = [openStore(database.url), openStore(database.url)];
        await stores[0].migrate();
        await seed(stores[0]);
        buses = await busBackend.nodes();
        nodes = [
          new FolderMessages({ store: stores[0], bus: buses[0], series, config: { folderMessageRetention: 3600 }, logger: silent }),
          new FolderMessages({ store: stores[1], bus: buses[1], series: fakeSeries(), config: { folderMessageRetention: 3600 }, logger: silent }),
        ];
        await Promise.all(nodes.map((n) => n.start()));
      });

      after(async () => {
        await Promise.all(nodes.map((n) => n.close()));
        await Promise.all([...new Set(buses)].map((b) => b.close()));
        await Promise.all(stores.map((s) => s.close()));
        await database.drop();
      });

      it('stores a message and delivers it once to the listeners of every node, of its organization only', async () => {
        const [here, there, otherOrg] = [collector(), collector(), collector()];
        const stops = [nodes[0].listen('org_a', here.listener), nodes[1].listen('org_a', there.listener), nodes[1].listen('org_b', otherOrg.listener)];
        const sent = await nodes[0].send(device, folder('org_a_root', 'org_a', ''), 'set_config', { names: 'a,b', n: 1 });
        await Promise.all([here.until(1), there.until(1)]);
        await fence(buses[0], buses[1], prefix);
        assert.equal(here.messages.length, 1);
        assert.equal(there.messages.length, 1);
        assert.deepEqual(there.messages[0], sent);
        assert.deepEqual(sent.sender, { kind: 'device', id: 'dev_1' });
        assert.equal(otherOrg.messages.length, 0);
        const row = await stores[1].db.selectFrom('folder_messages').selectAll().where('id', '=', sent.id).executeTakeFirstOrThrow();
        assert.deepEqual(
          { org: row.org_id, folder: row.folder_id, type: row.type, parameters: JSON.parse(row.parameters), sender: [row.sender_kind, row.sender_id] },
          { org: 'org_a', folder: 'org_a_root', type: 'set_config', parameters: { names: 'a,b', n: 1 }, sender: ['device', 'dev_1'] },
        );
        stops.forEach((stop) => stop());
      });

      it('refuses a type over 40 characters, parameters that are not an object, and oversize parameters', async () => {
        const root = folder('org_a_root', 'org_a', '');
        await assert.rejects(nodes[0].send(device, root, 'x'.repeat(41), {}), { code: 'bad_request' });
        await assert.rejects(nodes[0].send(device, root, '', {}), { code: 'bad_request' });
        await assert.rejects(nodes[0].send(device, root, 'ok', [] as never), { code: 'bad_request' });
        await assert.rejects(nodes[0].send(device, root, 'ok', { big: 'x'.repeat(maxParametersBytes) }), { code: 'payload_too_large' });
        // 40 characters outside the BMP are still 40 characters.
        await nodes[0].send(device, root, '😀'.repeat(40), {});
      });

      it('turns committed sequence values into sequence_update on the parent folder, stored or not', async () => {
        const heard = collector();
        // Only these: messages of the tests before may still be on their way.
        const stop = nodes[1].listen('org_a', (m) => m.type === 'sequence_update' && heard.listener(m));
        const t = Date.UTC(2024, 0, 2, 3, 4, 5, 123);
        series.commit([
          { orgId: 'org_a', sequenceId: 'res_seq', path: '/org_a/ctrl/status/temp', folderId: 'res_status', t, value: 21.5, stored: false },
          { orgId: 'org_a', sequenceId: 'res_img', path: '/org_a/cam', folderId: 'org_a_root', t, value: null, stored: true },
        ]);
        await heard.until(2);
        const [first, second] = heard.messages;
        assert.equal(first!.type, 'sequence_update');
        assert.equal(first!.folderId, 'res_status');
        assert.equal(first!.folderPath, '/ctrl/status');
        assert.deepEqual(first!.parameters, { id: 'res_seq', name: '/org_a/ctrl/status/temp', timestamp: '2024-01-02T03:04:05.123Z', value: 21.5 });
        assert.deepEqual(first!.sender, { kind: 'server', id: 'fleetd' });
        assert.equal(second!.folderPath, '');
        assert.equal('value' in second!.parameters, false);
        stop();
      });

      it('prunes messages older than the retention', async () => {
        const root = folder('org_a_root', 'org_a', '');
        const kept = await nodes[0].send(device, root, 'keep', {});
        assert.equal(await nodes[0].prune(Date.now()), 0);
        const pruned = await nodes[1].prune(Date.now() + 3600_000 + 1000);
        assert.ok(pruned >= 1);
        assert.equal(await stores[0].db.selectFrom('folder_messages').select('id').where('id', '=', kept.id).executeTakeFirst(), undefined);
      });
    });
  }
}
