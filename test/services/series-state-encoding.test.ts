import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Kysely, Migrator } from 'kysely';
import { rrdDefinition } from '../../src/core/rrd.ts';
import { createRrdState, updateRrd, type RrdState } from '../../src/core/rrd-archive.ts';
import { decodeState, encodeState } from '../../src/services/series/state-encoding.ts';
import { migrations } from '../../src/store/migrations/index.ts';
import type { Database } from '../../src/store/schema.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';

/** The archive state as every batch stores it, and the migration that brought stored JSON states to it. */

const definition = rrdDefinition(undefined);

function fedState(updates: number): RrdState {
  let state = createRrdState(definition, 1_700_000_000 - 1);
  for (let i = 0; i < updates; i++) state = updateRrd(definition, state, 1_700_000_000 + i * 10, 20 + Math.sin(i)).state;
  return state;
}

describe('archive state encoding', () => {
  it('gives back the state it encoded, unknown values included', () => {
    for (const state of [createRrdState(definition, 1_700_000_000.5), fedState(1), fedState(1000)]) assert.deepEqual(decodeState(encodeState(state)), state);
  });

  it('is less than half the size of the JSON', () => {
    const state = fedState(1000);
    assert.ok(encodeState(state).length * 2 < JSON.stringify(state).length);
  });
});

for (const backend of await backends()) {
  describe(`migration 0007_series_speed [${backend.name}]`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    const at = '2024-05-06T07:08:09.000Z';

    before(async () => {
      database = await backend.create();
      store = openStore(database.url);
    });
    after(async () => {
      await store?.close();
      await database?.drop();
    });

    it('rewrites stored JSON states in the new encoding, and drops one it cannot read', async () => {
      const migrator = new Migrator({ db: store.db, provider: { getMigrations: async () => migrations } });
      const before0007 = await migrator.migrateTo('0006_ota');
      assert.equal(before0007.error, undefined);
      const state = fedState(500);
      await store.db.insertInto('organizations').values({ id: 'org_1', slug: 'acme', name: 'Acme', created_at: at, updated_at: at }).execute();
      const resource = (id: string, path: string) => ({ id, org_id: 'org_1', parent_id: null, name: id, path, type: 21, device_id: null, system_attributes: '{}', user_attributes: '{}', permissions: null, last_revision_id: null, deleted: 0, created_at: at, modified_at: at });
      await store.db.insertInto('resources').values([resource('res_a', '/a'), resource('res_b', '/b'), resource('res_c', '/c')]).execute();
      const sequence = (id: string, rrdState: string | null) => ({ resource_id: id, org_id: 'org_1', data_type: 'numeric' as const, units: null, decimal_places: null, max_history: null, max_age: null, min_storage_interval: 0, last_stored_t: null, last_t: null, last_num: null, last_text: null, last_blob_key: null, rrd: JSON.stringify(definition), rrd_state: rrdState });
      // As the table stood before 0009 added revisions.
      const sequences = store.db as unknown as Kysely<{ sequences: Omit<Database['sequences'], 'revision'> }>;
      await sequences.insertInto('sequences').values([sequence('res_a', JSON.stringify(state)), sequence('res_b', null), sequence('res_c', '{}')]).execute();
      assert.equal((await migrator.migrateToLatest()).error, undefined);
      const stored = new Map((await store.db.selectFrom('sequences').select(['resource_id', 'rrd_state']).execute()).map((r) => [r.resource_id, r.rrd_state]));
      assert.deepEqual(decodeState(stored.get('res_a')!), state);
      assert.equal(stored.get('res_b'), null);
      assert.equal(stored.get('res_c'), null);
    });
  });
}
