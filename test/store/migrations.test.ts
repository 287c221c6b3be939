import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { migrations } from '../../src/store/migrations/index.ts';
import type { Database } from '../../src/store/schema.ts';
import { isUniqueViolation, openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';

const migrationNames = Object.keys(migrations);
const at = '2024-05-06T07:08:09.000Z';

/**
 * One row for every table of schema.ts, in an order that satisfies the foreign keys. Typed as a
 * mapping over `Database`, so a table or column added to schema.ts without a row here fails the
 * type check.
 */
const rows: { [T in keyof Database]: Database[T] } = {
  settings: { key: 'test_setting', value: '{"on":true}' },
  organizations: { id: 'org_1', slug: 'acme', name: 'Acme', created_at: at, updated_at: at },
  users: {
    id: 'usr_1',
    email: 'ada@example.com',
    name: 'Ada',
    password_hash: '$argon2id$test',
    system_admin: 1,
    external_subject: null,
    created_at: at,
    updated_at: at,
  },
  memberships: { org_id: 'org_1', user_id: 'usr_1', role: 'owner', created_at: at, updated_at: at },
  sessions: {
    id: 'ses_1',
    user_id: 'usr_1',
    refresh_hash: 'refresh-hash',
    previous_refresh_hash: null,
    csrf_hash: 'csrf-hash',
    created_at: at,
    expires_at: at,
    last_used_at: at,
    revoked_at: null,
    ip: '192.0.2.1',
    user_agent: 'test',
  },
  devices: {
    id: 'dev_1',
    org_id: 'org_1',
    name: 'Pump',
    model: 'SNSW-001X16EU',
    firmware: '1.4.4',
    metadata: '{"room":"cellar"}',
    last_seen_at: at,
    connected_node: 'node-1',
    reported: '{"switch:0":{"output":true}}',
    reported_version: 3,
    desired: '{}',
    desired_version: 0,
    external_id: 'shellyplus1pm-a8032abb995c',
    public_key: null,
    checkin_at: at,
    capabilities: '{"shell":true}',
    created_at: at,
    updated_at: at,
  },
  device_tags: { device_id: 'dev_1', tag: 'cellar' },
  pending_devices: {
    id: 'pen_1',
    org_id: 'org_1',
    endpoint: 'shelly',
    external_id: 'shellypro4pm-0cb815fcaff0',
    state: 'pending',
    info: '{"model":"SPSW-104PE16EU"}',
    public_key: null,
    remote_address: '192.0.2.7',
    attempts: 2,
    first_seen_at: at,
    last_seen_at: at,
    decided_by: null,
    decided_at: null,
  },
  enrollment_tokens: {
    id: 'enr_1',
    org_id: 'org_1',
    name: 'line 3',
    prefix: 'fe_abc',
    token_hash: 'token-hash',
    tags: '["line-3"]',
    expires_at: null,
    max_uses: 10,
    uses: 0,
    created_by: 'usr_1',
    created_at: at,
    revoked_at: null,
  },
  device_groups: { id: 'grp_1', org_id: 'org_1', name: 'Cellar', description: '', filter: null, priority: 0, update_policy: 'exact_match', target_version: 'v2', metadata: '{"rdfm.group.name":"Cellar"}', created_at: at, updated_at: at },
  device_group_members: { group_id: 'grp_1', device_id: 'dev_1' },
  hub_events: { id: 'evt_1', org_id: 'org_1', device_id: 'dev_1', name: 'device.online', data: '{}', at },
  hub_nodes: { id: 'node-1', started_at: at, seen_at: at },
  api_keys: {
    id: 'key_1',
    org_id: 'org_1',
    prefix: 'fk_test',
    secret_hash: 'secret-hash',
    name: 'ci',
    user_id: 'usr_1',
    device_id: null,
    role: 'viewer',
    created_by: 'usr_1',
    created_at: at,
    expires_at: null,
    last_used_at: null,
    revoked_at: null,
    revoked_by: null,
  },
  audit_events: {
    id: 'aud_1',
    org_id: 'org_1',
    actor_type: 'user',
    actor_id: 'usr_1',
    action: 'org.create',
    target_type: 'org',
    target_id: 'org_1',
    details: '{"slug":"acme"}',
    ip: null,
    request_id: 'req-1',
    at,
  },
  resources: {
    id: 'res_1',
    org_id: 'org_1',
    parent_id: null,
    name: 'acme',
    path: '',
    type: 11,
    device_id: null,
    system_attributes: '{"full_name":"Acme"}',
    user_attributes: '{}',
    permissions: '[[110,"org_1",20]]',
    last_revision_id: 'rev_1',
    deleted: 0,
    created_at: at,
    modified_at: at,
  },
  resource_revisions: {
    id: 'rev_1',
    resource_id: 'res_1',
    size: 3,
    sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    data: Buffer.from('abc'),
    blob_key: null,
    created_by: 'usr_1',
    created_at: at,
  },
  sequences: {
    resource_id: 'res_1',
    org_id: 'org_1',
    data_type: 'numeric',
    units: 'degrees C',
    decimal_places: 2,
    max_history: 100000,
    max_age: null,
    min_storage_interval: 0.5,
    last_stored_t: 1714979289000,
    last_t: 1714979289000,
    last_num: 21.5,
    last_text: null,
    last_blob_key: null,
    rrd: '{"step":60}',
    rrd_state: '{}',
    revision: 3,
  },
  sequence_values: { sequence_id: 'res_1', t: 1714979289123, num: 21.25, text: null, data: null, blob_key: null },
  rrd_rows: { sequence_id: 'res_1', archive: 0, slot: 17, t: 1714979280, value: 21.125 },
  folder_messages: { id: 'msg_1', org_id: 'org_1', folder_id: 'res_1', type: 'blink', parameters: '{}', sender_kind: 'user', sender_id: 'usr_1', at },
  rrduino_profiles: {
    client_id: 'fridge',
    org_id: 'org_1',
    device_id: 'dev_1',
    master_key: 'fcf730b6d95236ecd3c9fc2d92d7b6b2bb061514961aec041d6c7a7192f592e4',
    rrd_arguments: '["--step","60"]',
    update_template: 'N:{temperature}',
    created_at: at,
    updated_at: at,
  },
  provisioning_pins: { pin: 1234, code_hash: 'hash', created_at: at, device_id: 'dev_1', secret: null, entered_by: 'usr_1' },
  send_counters: { key: 'email:dev_1', window_start: at, count: 2 },
  auth_throttle: { key: 'login:192.0.2.1', failures: 3, window_start: at, blocked_until: null },
  package_signing_keys: { id: 'psk_1', org_id: 'org_1', name: 'release', public_key: '-----BEGIN PUBLIC KEY-----', fingerprint: 'SHA256:abc', created_by: 'usr_1', created_at: at, revoked_at: null },
  packages: {
    id: 'pkg_1',
    org_id: 'org_1',
    version: 'v2',
    device_type: 'rpi4',
    metadata: '{"requires:rdfm.software.version":"v1"}',
    size: 5_000_000_000,
    sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    blob_key: 'packages/org_1/pkg_1',
    signature: 'c2ln',
    signing_key_id: 'psk_1',
    status: 'ready',
    created_by: 'usr_1',
    created_at: at,
    ready_at: at,
  },
  group_packages: { group_id: 'grp_1', package_id: 'pkg_1' },
  deployments: {
    id: 'dep_1',
    org_id: 'org_1',
    group_id: 'grp_1',
    name: 'v2 to the cellar',
    target_version: 'v2',
    status: 'running',
    phases: '[{"size":1},{"percent":100}]',
    maintenance_window: '{"start":"22:00","end":"04:00"}',
    failure_threshold: 12.5,
    current_phase: 1,
    accepted_failures: 0,
    paused_reason: null,
    start_at: at,
    created_by: 'usr_1',
    created_at: at,
    updated_at: at,
    finished_at: null,
  },
  deployment_devices: { deployment_id: 'dep_1', device_id: 'dev_1', phase: 0, status: 'downloading', package_id: 'pkg_1', progress: 40, reason: null, updated_at: at, finished_at: null },
  device_updates: { device_id: 'dev_1', org_id: 'org_1', package_id: 'pkg_1', target_version: 'v2', deployment_id: 'dep_1', status: 'downloading', progress: 40, reason: null, created_at: at, updated_at: at },
  update_events: { id: 'uev_1', org_id: 'org_1', deployment_id: 'dep_1', device_id: 'dev_1', kind: 'device.downloading', details: '{"progress":40}', at },
  device_actions: { device_id: 'dev_1', action_id: 'reboot', name: 'Reboot', description: 'Restarts the device', details: '{"timeout":10}', updated_at: at },
  action_runs: {
    id: 'act_1',
    org_id: 'org_1',
    device_id: 'dev_1',
    action_id: 'reboot',
    status: 'succeeded',
    exit_code: 0,
    output: Buffer.from('done\n'),
    error: null,
    requested_by_type: 'user',
    requested_by_id: 'usr_1',
    created_at: at,
    sent_at: at,
    finished_at: at,
  },
  shell_sessions: {
    id: 'shl_1',
    org_id: 'org_1',
    device_id: 'dev_1',
    opened_by_type: 'user',
    opened_by_id: 'usr_1',
    status: 'closed',
    node: 'node-1',
    created_at: at,
    attached_at: at,
    closed_at: at,
    close_reason: 'operator closed',
    bytes_to_device: 12,
    bytes_from_device: 3_000_000_000,
  },
  file_pulls: {
    id: 'fpl_1',
    org_id: 'org_1',
    device_id: 'dev_1',
    path: '/var/log/syslog',
    status: 'done',
    blob_key: 'pulls/org_1/fpl_1',
    size: 1024,
    sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    error: null,
    requested_by_type: 'user',
    requested_by_id: 'usr_1',
    created_at: at,
    finished_at: at,
    parts: 3,
  },
  device_logs: { id: 'log_1', org_id: 'org_1', device_id: 'dev_1', device_timestamp: 'Wed, 02 Oct 2002 15:00:00 -0000', at: '2002-10-02T15:00:00.000Z', name: 'CPU', entry: '0.123', created_at: at },
  rdfm_ids: { kind: 'device', number: 1, fleetd_id: 'dev_1' },
};
const tables = Object.keys(rows) as Array<keyof Database>;

for (const backend of await backends()) {
  describe(`migrations [${backend.name}]`, { skip: backend.skip }, () => {
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

    it('lists every migration as pending on a fresh database', async () => {
      assert.ok(migrationNames.includes('0001_identity'));
      assert.deepEqual(await store.pendingMigrations(), migrationNames);
    });

    it('applies every migration, in order, from an empty database', async () => {
      assert.deepEqual(await store.migrate(), migrationNames);
      assert.deepEqual(await store.pendingMigrations(), []);
    });

    it('applies nothing the second time', async () => {
      assert.deepEqual(await store.migrate(), []);
      assert.deepEqual(await store.pendingMigrations(), []);
    });

    it('creates exactly the tables and columns of schema.ts', async () => {
      const found = await store.db.introspection.getTables();
      assert.deepEqual(found.map((t) => t.name).sort(), [...tables].sort());
      for (const table of found) {
        const name = table.name as keyof Database;
        assert.deepEqual(table.columns.map((c) => c.name).sort(), Object.keys(rows[name]).sort(), `columns of ${name}`);
      }
    });

    it('stores and reads back a row of every table', async () => {
      for (const table of tables) {
        // Kysely cannot relate a table name held in a variable to its row type.
        await store.db.insertInto(table).values(rows[table] as never).execute();
        const read = await store.db.selectFrom(table).selectAll().execute();
        assert.deepEqual(read, [rows[table]], table);
      }
    });

    it('reports a duplicate users.email as a unique violation', async () => {
      const duplicate = { ...rows.users, id: 'usr_2' };
      const error = await store.db
        .insertInto('users')
        .values(duplicate)
        .execute()
        .then(() => undefined, (e: unknown) => e);
      assert.ok(error, 'a second user with the same email was stored');
      assert.equal(isUniqueViolation(error), true, `not recognized as a unique violation: ${String(error)}`);
    });

    it('does not take other constraint failures for unique violations', async () => {
      const orphan = { ...rows.memberships, org_id: 'org_missing' };
      const error = await store.db
        .insertInto('memberships')
        .values(orphan)
        .execute()
        .then(() => undefined, (e: unknown) => e);
      assert.ok(error, 'a membership of a missing organization was stored');
      assert.equal(isUniqueViolation(error), false, String(error));
      assert.equal(isUniqueViolation(new Error('no code')), false);
      assert.equal(isUniqueViolation(undefined), false);
    });
  });
}

const postgres = (await backends()).find((b) => b.name === 'postgres')!;

describe('migrations by several nodes starting together [postgres]', { skip: postgres.skip }, () => {
  let database: TestDatabase;
  const stores: Store[] = [];
  before(async () => {
    database = await postgres.create();
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await database?.drop();
  });

  it('migrates once, and every node succeeds', async () => {
    for (let i = 0; i < 4; i++) stores.push(openStore(database.url));
    const applied = await Promise.all(stores.map((s) => s.migrate()));
    assert.deepEqual(applied.flat().sort(), [...migrationNames].sort(), `applied by each node: ${JSON.stringify(applied)}`);
    for (const store of stores) assert.deepEqual(await store.pendingMigrations(), []);
  });
});
