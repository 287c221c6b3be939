import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Kysely, Migrator, sql } from 'kysely';
import { migrations } from '../../src/store/migrations/index.ts';
import type { Database } from '../../src/store/schema.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';

/** Migration 0012: SQLite's sequence values and archive rows kept in key order, with what they held. */

const at = '2024-05-06T07:08:09.000Z';
const values: Array<Database['sequence_values']> = [
  { sequence_id: 'res_a', t: 1_700_000_000_000, num: 20.5, text: null, data: null, blob_key: null },
  { sequence_id: 'res_a', t: 1_700_000_060_000, num: -3, text: null, data: null, blob_key: null },
  { sequence_id: 'res_b', t: 1_700_000_000_000, num: null, text: null, data: Buffer.from([0, 1, 2, 255]), blob_key: null },
  { sequence_id: 'res_b', t: 1_700_000_001_000, num: null, text: null, data: null, blob_key: 'seq/res_b/1700000001000' },
];
const archiveRows: Array<Database['rrd_rows']> = [
  { sequence_id: 'res_a', archive: 0, slot: 7, t: 1_700_000_040, value: 20.5 },
  { sequence_id: 'res_a', archive: 3, slot: 1, t: 1_700_000_100, value: null },
];

for (const backend of await backends()) {
  describe(`migration 0012_clustered_series_tables [${backend.name}]`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let store: Store;

    before(async () => {
      database = await backend.create();
      store = openStore(database.url);
    });
    after(async () => {
      await store?.close();
      await database?.drop();
    });

    it('keeps every value and archive row', async () => {
      const migrator = new Migrator({ db: store.db, provider: { getMigrations: async () => migrations } });
      assert.equal((await migrator.migrateTo('0011_file_pull_parts')).error, undefined);
      await store.db.insertInto('organizations').values({ id: 'org_1', slug: 'acme', name: 'Acme', created_at: at, updated_at: at }).execute();
      const resource = (id: string) => ({ id, org_id: 'org_1', parent_id: null, name: id, path: `/${id}`, type: 21, device_id: null, system_attributes: '{}', user_attributes: '{}', permissions: null, last_revision_id: null, deleted: 0, created_at: at, modified_at: at });
      await store.db.insertInto('resources').values([resource('res_a'), resource('res_b')]).execute();
      const sequence = (id: string) => ({ resource_id: id, org_id: 'org_1', data_type: 'numeric' as const, units: null, decimal_places: null, max_history: null, max_age: null, min_storage_interval: 0, last_stored_t: null, last_t: null, last_num: null, last_text: null, last_blob_key: null, rrd: null, rrd_state: null, revision: 0 });
      await store.db.insertInto('sequences').values([sequence('res_a'), sequence('res_b')]).execute();
      await store.db.insertInto('sequence_values').values(values).execute();
      await store.db.insertInto('rrd_rows').values(archiveRows).execute();

      assert.equal((await migrator.migrateToLatest()).error, undefined);
      assert.deepEqual(await store.db.selectFrom('sequence_values').selectAll().orderBy('sequence_id').orderBy('t').execute(), values);
      assert.deepEqual(await store.db.selectFrom('rrd_rows').selectAll().orderBy('archive').execute(), archiveRows);
    });

    it('on SQLite, keeps the tables in key order, the key still unique and the foreign keys still on', { skip: backend.name !== 'sqlite' }, async () => {
      const tables = store.db as unknown as Kysely<{ sqlite_master: { name: string; sql: string } }>;
      for (const name of ['sequence_values', 'rrd_rows']) {
        const { sql: definition } = await tables.selectFrom('sqlite_master').select('sql').where('name', '=', name).executeTakeFirstOrThrow();
        assert.match(definition, /without rowid/i, name);
      }
      await assert.rejects(store.db.insertInto('sequence_values').values(values[0]!).execute(), /UNIQUE|PRIMARY/);
      await assert.rejects(store.db.insertInto('rrd_rows').values({ ...archiveRows[0]!, sequence_id: 'res_missing' }).execute(), /FOREIGN KEY/);
      await sql`delete from sequences where resource_id = 'res_a'`.execute(store.db);
      assert.deepEqual(await store.db.selectFrom('rrd_rows').selectAll().execute(), []);
      assert.equal((await store.db.selectFrom('sequence_values').select('t').where('sequence_id', '=', 'res_a').execute()).length, 0);
    });
  });
}
