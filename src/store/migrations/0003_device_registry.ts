import type { Kysely } from 'kysely';

/** What the registry knows of a device beyond its name: identity, tags, presence and state documents. */
export async function up(db: Kysely<unknown>): Promise<void> {
  // One column per statement: SQLite adds no more at a time.
  const columns: Array<[string, 'text' | 'integer', string | number | null]> = [
    ['model', 'text', null],
    ['firmware', 'text', null],
    ['metadata', 'text', '{}'],
    ['last_seen_at', 'text', null],
    ['connected_node', 'text', null],
    ['reported', 'text', '{}'],
    ['reported_version', 'integer', 0],
    ['desired', 'text', '{}'],
    ['desired_version', 'integer', 0],
  ];
  for (const [name, type, fallback] of columns) {
    await db.schema
      .alterTable('devices')
      .addColumn(name, type, (c) => (fallback === null ? c : c.notNull().defaultTo(fallback)))
      .execute();
  }
  await db.schema
    .createTable('device_tags')
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('tag', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_tags_pk', ['device_id', 'tag'])
    .execute();
  await db.schema.createIndex('device_tags_tag').on('device_tags').columns(['tag', 'device_id']).execute();
}
