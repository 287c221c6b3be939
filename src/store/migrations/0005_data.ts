import { sql, type Kysely } from 'kysely';

/**
 * What fleetd keeps of data: each organization's tree of resources (folders, device folders, files,
 * sequences) with file revisions, the time series of sequences and their round-robin archives, the
 * messages addressed to folders, rrduino client profiles, rhizo provisioning PINs and send counters.
 *
 * Times of values are integer milliseconds since the epoch (bigint), the other timestamps ISO text
 * as everywhere else. `bytea` and `double precision` have the wanted affinity on SQLite too.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('resources')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    // Null for the organization's root folder only.
    .addColumn('parent_id', 'text', (c) => c.references('resources.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    // Below the organization, '' for its root and '/a/b' below it: a renamed organization keeps its paths.
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('type', 'integer', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.references('devices.id').onDelete('set null'))
    .addColumn('system_attributes', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('user_attributes', 'text', (c) => c.notNull().defaultTo('{}'))
    // JSON list of [access type, principal id, level]; null inherits the parent's.
    .addColumn('permissions', 'text')
    .addColumn('last_revision_id', 'text')
    .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('modified_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('resources_live_path').on('resources').columns(['org_id', 'path']).unique().where(sql.ref('deleted'), '=', 0).execute();
  await db.schema.createIndex('resources_parent').on('resources').columns(['parent_id', 'name']).execute();
  await db.schema.createIndex('resources_device').on('resources').column('device_id').execute();

  await db.schema
    .createTable('resource_revisions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('resource_id', 'text', (c) => c.notNull().references('resources.id').onDelete('cascade'))
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    // Exactly one of data (small revisions) and blob_key (large ones, in blob storage) is set.
    .addColumn('data', sql`bytea`)
    .addColumn('blob_key', 'text')
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('resource_revisions_resource').on('resource_revisions').columns(['resource_id', 'id']).execute();

  await db.schema
    .createTable('sequences')
    .addColumn('resource_id', 'text', (c) => c.primaryKey().references('resources.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('data_type', 'text', (c) => c.notNull())
    .addColumn('units', 'text')
    .addColumn('decimal_places', 'integer')
    .addColumn('max_history', 'integer')
    .addColumn('max_age', 'integer')
    .addColumn('min_storage_interval', sql`double precision`, (c) => c.notNull().defaultTo(0))
    .addColumn('last_stored_t', 'bigint')
    .addColumn('last_t', 'bigint')
    .addColumn('last_num', sql`double precision`)
    .addColumn('last_text', 'text')
    .addColumn('last_blob_key', 'text')
    // JSON RrdDefinition (one data source, its archives) and RrdState; null for text and image sequences.
    .addColumn('rrd', 'text')
    .addColumn('rrd_state', 'text')
    .execute();

  await db.schema
    .createTable('sequence_values')
    .addColumn('sequence_id', 'text', (c) => c.notNull().references('sequences.resource_id').onDelete('cascade'))
    .addColumn('t', 'bigint', (c) => c.notNull())
    .addColumn('num', sql`double precision`)
    .addColumn('text', 'text')
    .addColumn('data', sql`bytea`)
    .addColumn('blob_key', 'text')
    .addPrimaryKeyConstraint('sequence_values_pk', ['sequence_id', 't'])
    .execute();

  await db.schema
    .createTable('rrd_rows')
    .addColumn('sequence_id', 'text', (c) => c.notNull().references('sequences.resource_id').onDelete('cascade'))
    .addColumn('archive', 'integer', (c) => c.notNull())
    // slot = (t / resolution) mod rows: each archive has a fixed number of rows, overwritten in turn.
    .addColumn('slot', 'integer', (c) => c.notNull())
    // End of the consolidated interval, in seconds since the epoch (rrdtool's row time).
    .addColumn('t', 'bigint', (c) => c.notNull())
    .addColumn('value', sql`double precision`)
    .addPrimaryKeyConstraint('rrd_rows_pk', ['sequence_id', 'archive', 'slot'])
    .execute();

  await db.schema
    .createTable('folder_messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('folder_id', 'text', (c) => c.notNull().references('resources.id').onDelete('cascade'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('parameters', 'text', (c) => c.notNull())
    .addColumn('sender_kind', 'text', (c) => c.notNull())
    .addColumn('sender_id', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('folder_messages_at').on('folder_messages').column('at').execute();

  await db.schema
    .createTable('rrduino_profiles')
    .addColumn('client_id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    // Hex SHA-256 of the pre-shared key: the protocol's master key, all the server needs.
    .addColumn('master_key', 'text', (c) => c.notNull())
    // JSON: the rrdtool create arguments, and the update template of the rrduino profile, if given.
    .addColumn('rrd_arguments', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('update_template', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('rrduino_profiles_org').on('rrduino_profiles').columns(['org_id', 'client_id']).execute();

  await db.schema
    .createTable('provisioning_pins')
    .addColumn('pin', 'integer', (c) => c.primaryKey())
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.references('devices.id').onDelete('cascade'))
    // The key made when the PIN was entered, handed to the polling device once and then cleared.
    .addColumn('secret', 'text')
    .addColumn('entered_by', 'text')
    .execute();

  await db.schema
    .createTable('send_counters')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('window_start', 'text', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .execute();
}
