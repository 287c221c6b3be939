import type { Kysely } from 'kysely';

/**
 * What the device hub keeps: how devices are recognized (external id, check-in key), the waiting
 * room, enrollment tokens, device groups, the recent hub events a reconnecting client may replay, and
 * the running nodes with their heartbeats.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // The id a device calls itself by (a Shelly `src`, a Paikea channel name), unique across the server
  // because a connection names it before anyone knows its organization.
  await db.schema.alterTable('devices').addColumn('external_id', 'text').execute();
  await db.schema.createIndex('devices_external_id').on('devices').column('external_id').unique().execute();
  // A device that checks in with a signature: its public key (PEM) and the newest timestamp it signed.
  await db.schema.alterTable('devices').addColumn('public_key', 'text').execute();
  await db.schema.alterTable('devices').addColumn('checkin_at', 'text').execute();

  await db.schema
    .createTable('pending_devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    // Null while nobody has said which organization the device is for: then only system admins see it.
    .addColumn('org_id', 'text', (c) => c.references('organizations.id').onDelete('cascade'))
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text', (c) => c.notNull().unique())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('info', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('public_key', 'text')
    .addColumn('remote_address', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('first_seen_at', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'text', (c) => c.notNull())
    .addColumn('decided_by', 'text')
    .addColumn('decided_at', 'text')
    .execute();
  await db.schema.createIndex('pending_devices_org').on('pending_devices').columns(['org_id', 'state', 'id']).execute();

  await db.schema
    .createTable('enrollment_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull().unique())
    .addColumn('token_hash', 'text', (c) => c.notNull())
    .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('expires_at', 'text')
    .addColumn('max_uses', 'integer')
    .addColumn('uses', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('enrollment_tokens_org').on('enrollment_tokens').columns(['org_id', 'id']).execute();

  await db.schema
    .createTable('device_groups')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    // A saved filter (JSON) for a dynamic group; null for a static list of members.
    .addColumn('filter', 'text')
    .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('device_groups_org_name', ['org_id', 'name'])
    .execute();

  await db.schema
    .createTable('device_group_members')
    .addColumn('group_id', 'text', (c) => c.notNull().references('device_groups.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('device_group_members_pk', ['group_id', 'device_id'])
    .execute();
  await db.schema.createIndex('device_group_members_device').on('device_group_members').columns(['device_id', 'group_id']).execute();

  await db.schema
    .createTable('hub_events')
    // Ordered by id: ids of one node increase strictly, ids of several nodes follow their clocks.
    .addColumn('id', 'text', (c) => c.primaryKey())
    // Null for events only system admins see (a device waiting for admission without an organization).
    .addColumn('org_id', 'text')
    .addColumn('device_id', 'text')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_events_org').on('hub_events').columns(['org_id', 'id']).execute();
  await db.schema.createIndex('hub_events_at').on('hub_events').column('at').execute();

  // The running nodes, each with its latest heartbeat (database time): a node whose heartbeat stops is
  // taken for dead, and the devices whose connected_node names it go offline.
  await db.schema
    .createTable('hub_nodes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('seen_at', 'text', (c) => c.notNull())
    .execute();
  // Finds the devices of a node taken for dead without reading every device.
  await db.schema.createIndex('devices_connected_node').on('devices').column('connected_node').execute();
}
