import { sql, type Kysely } from 'kysely';

/**
 * What fleetd keeps for updates and remote operations: packages and the keys that sign them, the
 * update policy and package set of each group, deployments with their devices and history, the
 * update each device was last handed, device capabilities, advertised actions and their runs,
 * shell sessions, files pulled from devices, and the log lines devices send.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('package_signing_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('package_signing_keys_org').on('package_signing_keys').columns(['org_id', 'id']).execute();

  await db.schema
    .createTable('packages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('device_type', 'text', (c) => c.notNull())
    // JSON object of free string keys, `requires:<key>` conditions among them.
    .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('sha256', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('blob_key', 'text', (c) => c.notNull())
    .addColumn('signature', 'text')
    .addColumn('signing_key_id', 'text', (c) => c.references('package_signing_keys.id').onDelete('set null'))
    // 'uploading' until the content is completely stored, then 'ready': only ready packages are seen.
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('ready_at', 'text')
    .execute();
  await db.schema.createIndex('packages_org').on('packages').columns(['org_id', 'status', 'id']).execute();
  await db.schema.createIndex('packages_version').on('packages').columns(['org_id', 'device_type', 'version']).execute();

  // A group's update policy: 'no_update', or 'exact_match' with the version its devices should run.
  await db.schema.alterTable('device_groups').addColumn('update_policy', 'text', (c) => c.notNull().defaultTo('no_update')).execute();
  await db.schema.alterTable('device_groups').addColumn('target_version', 'text').execute();
  // The packages a group's devices may be given; none listed means every package of the organization.
  await db.schema
    .createTable('group_packages')
    .addColumn('group_id', 'text', (c) => c.notNull().references('device_groups.id').onDelete('cascade'))
    .addColumn('package_id', 'text', (c) => c.notNull().references('packages.id'))
    .addPrimaryKeyConstraint('group_packages_pk', ['group_id', 'package_id'])
    .execute();
  await db.schema.createIndex('group_packages_package').on('group_packages').column('package_id').execute();

  // What a device can do besides its own protocol: JSON object of name → boolean (shell, action, filesystem...).
  await db.schema.alterTable('devices').addColumn('capabilities', 'text', (c) => c.notNull().defaultTo('{}')).execute();

  await db.schema
    .createTable('deployments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    // No foreign key: a deployment's history outlives its group.
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('target_version', 'text', (c) => c.notNull())
    // 'scheduled' | 'running' | 'paused' | 'cancelled' | 'completed'
    .addColumn('status', 'text', (c) => c.notNull())
    // JSON list of phases: {size | percent, startAt?}
    .addColumn('phases', 'text', (c) => c.notNull())
    // JSON {days?, start, end} in UTC, or null for any time
    .addColumn('maintenance_window', 'text')
    .addColumn('failure_threshold', sql`double precision`, (c) => c.notNull())
    .addColumn('current_phase', 'integer', (c) => c.notNull().defaultTo(0))
    // Failures of the current phase an operator accepted by resuming: they alone do not pause it again.
    .addColumn('accepted_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('paused_reason', 'text')
    .addColumn('start_at', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .execute();
  await db.schema.createIndex('deployments_org').on('deployments').columns(['org_id', 'id']).execute();
  await db.schema.createIndex('deployments_status').on('deployments').columns(['status', 'id']).execute();

  await db.schema
    .createTable('deployment_devices')
    .addColumn('deployment_id', 'text', (c) => c.notNull().references('deployments.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('phase', 'integer', (c) => c.notNull())
    // 'scheduled' | 'pending' | 'downloading' | 'installing' | 'success' | 'failure' | 'cancelled'
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('package_id', 'text')
    .addColumn('progress', 'integer')
    .addColumn('reason', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .addPrimaryKeyConstraint('deployment_devices_pk', ['deployment_id', 'device_id'])
    .execute();
  await db.schema.createIndex('deployment_devices_device').on('deployment_devices').columns(['device_id', 'status']).execute();
  await db.schema.createIndex('deployment_devices_phase').on('deployment_devices').columns(['deployment_id', 'phase', 'status']).execute();

  // The update a device was last handed (by a policy or a deployment) and how far it got.
  await db.schema
    .createTable('device_updates')
    .addColumn('device_id', 'text', (c) => c.primaryKey().references('devices.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('package_id', 'text', (c) => c.notNull())
    .addColumn('target_version', 'text', (c) => c.notNull())
    .addColumn('deployment_id', 'text')
    // 'pending' | 'downloading' | 'installing' | 'success' | 'failure'
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('progress', 'integer')
    .addColumn('reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  // Everything that happened to updates: deployment steps (device_id null) and device reports.
  await db.schema
    .createTable('update_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('deployment_id', 'text')
    .addColumn('device_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    // JSON object
    .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('update_events_deployment').on('update_events').columns(['deployment_id', 'id']).execute();
  await db.schema.createIndex('update_events_device').on('update_events').columns(['device_id', 'id']).execute();

  await db.schema
    .createTable('device_actions')
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('action_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    // JSON object: what the device said of the action besides its name (RDFM: command, timeout)
    .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_actions_pk', ['device_id', 'action_id'])
    .execute();

  await db.schema
    .createTable('action_runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('action_id', 'text', (c) => c.notNull())
    // 'pending' | 'sent' | 'succeeded' | 'failed' | 'timeout' | 'cancelled'
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('exit_code', 'integer')
    .addColumn('output', sql`bytea`)
    .addColumn('error', 'text')
    .addColumn('requested_by_type', 'text', (c) => c.notNull())
    .addColumn('requested_by_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('sent_at', 'text')
    .addColumn('finished_at', 'text')
    .execute();
  await db.schema.createIndex('action_runs_device').on('action_runs').columns(['device_id', 'status', 'id']).execute();
  await db.schema.createIndex('action_runs_org').on('action_runs').columns(['org_id', 'id']).execute();

  await db.schema
    .createTable('shell_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('opened_by_type', 'text', (c) => c.notNull())
    .addColumn('opened_by_id', 'text', (c) => c.notNull())
    // 'waiting' (for the device to dial back) | 'attached' | 'closed'
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('node', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('attached_at', 'text')
    .addColumn('closed_at', 'text')
    .addColumn('close_reason', 'text')
    .addColumn('bytes_to_device', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes_from_device', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('shell_sessions_org').on('shell_sessions').columns(['org_id', 'id']).execute();
  await db.schema.createIndex('shell_sessions_device').on('shell_sessions').columns(['device_id', 'id']).execute();

  await db.schema
    .createTable('file_pulls')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('path', 'text', (c) => c.notNull())
    // 'pending' | 'uploading' | 'done' | 'failed'
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('blob_key', 'text')
    .addColumn('size', 'bigint')
    .addColumn('sha256', 'text')
    .addColumn('error', 'text')
    .addColumn('requested_by_type', 'text', (c) => c.notNull())
    .addColumn('requested_by_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .execute();
  await db.schema.createIndex('file_pulls_device').on('file_pulls').columns(['device_id', 'id']).execute();

  await db.schema
    .createTable('device_logs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    // As the device wrote it (RDFM: RFC 822), and parsed to ISO for queries.
    .addColumn('device_timestamp', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('entry', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('device_logs_device').on('device_logs').columns(['device_id', 'at']).execute();
}
