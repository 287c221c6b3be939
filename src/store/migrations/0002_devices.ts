import type { Kysely } from 'kysely';

/**
 * The device registry's first columns: enough for device-bound API keys. The device hub adds the
 * rest (model, firmware, tags, state, presence).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('devices_org').on('devices').columns(['org_id', 'id']).execute();
  await db.schema.createIndex('api_keys_device').on('api_keys').column('device_id').execute();
}
