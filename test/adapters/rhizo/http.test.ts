import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { ApiError, clientTimestamp, RhizoClient } from './client.ts';

/**
 * rhizo's REST API as its unchanged client uses it (client.ts sends what rhizo-client sends), on
 * both databases: controller keys, files, folders, sequences, bulk updates, keys, PINs,
 * organizations and users, messages, and another organization's controller kept out.
 */

const b64 = (text: string) => Buffer.from(text).toString('base64');

async function statusOf(work: Promise<unknown>): Promise<number> {
  try {
    await work;
    return 200;
  } catch (error) {
    if (error instanceof ApiError) return error.status;
    throw error;
  }
}

for (const backend of await backends()) {
  describe(`rhizo REST [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    /** A system admin's fleetd token (rhizo's browser session). */
    let admin: RhizoClient;
    /** An owner's user key of organization default. */
    let userKey: RhizoClient;
    /** The controller ctrl1 of default, with its device key. */
    let ctrl: RhizoClient;
    let ctrlDeviceId: string;
    /** A controller of another organization. */
    let stranger: RhizoClient;

    const api = (method: string, path: string, body?: unknown) => request(server.url, method, path, { token: server.admin.token, body });

    async function device(orgId: string, name: string): Promise<{ id: string; key: string }> {
      const made = await api('POST', `/api/orgs/${orgId}/devices`, { name });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      const key = await api('POST', `/api/orgs/${orgId}/api-keys`, { name: `${name} key`, deviceId: made.body.id });
      assert.equal(key.status, 201, JSON.stringify(key.body));
      return { id: made.body.id, key: key.body.key };
    }

    before(async () => {
      server = await startTestServer(backend, { rrduinoPort: '0' });
      admin = new RhizoClient(server.url, `Bearer ${server.admin.token}`);
      const key = await api('POST', `/api/orgs/${server.admin.orgId}/api-keys`, { name: 'rhizo user key' });
      userKey = new RhizoClient(server.url, key.body.key);
      const made = await device(server.admin.orgId, 'ctrl1');
      ctrlDeviceId = made.id;
      ctrl = new RhizoClient(server.url, made.key);
      const other = await api('POST', '/api/orgs', { slug: 'other', name: 'Other' });
      assert.equal(other.status, 201);
      stranger = new RhizoClient(server.url, (await device(other.body.id, 'octrl')).key);
    });
    after(async () => {
      await server?.close();
    });

    it('a controller key finds its own folder through self; other keys have no self', async () => {
      assert.equal(await ctrl.pathOnServer(), '/default/ctrl1');
      const meta = await ctrl.info('/self');
      assert.equal(meta.type, 12);
      assert.equal(meta.name, 'ctrl1');
      assert.equal(typeof meta.creation_timestamp, 'string');
      assert.match(meta.creation_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/);
      assert.equal(await statusOf(userKey.info('/self')), 403);
      // A key that is not one is refused before anything else.
      assert.equal(await statusOf(new RhizoClient(server.url, 'RHIZOXXXXXXXX').info('/self')), 401);
    });

    it('files: write, read, exists, list, move, delete', async () => {
      const path = '/default/ctrl1/data/notes.txt';
      assert.equal(await ctrl.exists(path), false);
      await ctrl.write(path, 'line 1\r\nline 2\r\n');
      assert.equal(await ctrl.exists(path), true);
      assert.equal((await ctrl.read(path)).toString(), 'line 1\nline 2\n', '.txt line ends are normalized');
      await ctrl.write(path, 'second version');
      assert.equal((await ctrl.read(path)).toString(), 'second version');
      const meta = await ctrl.info(path);
      assert.equal(meta.type, 20);
      assert.equal(meta.size, 'second version'.length);
      assert.equal(meta.path, path);
      const binary = Buffer.from([0, 1, 2, 255, 254]);
      await ctrl.write('/default/ctrl1/data/blob.bin', binary);
      assert.deepEqual(await ctrl.read('/default/ctrl1/data/blob.bin'), binary);

      const names = (await ctrl.list('/default/ctrl1/data')).map((r) => r.name);
      assert.deepEqual(names, ['blob.bin', 'notes.txt']);
      const files = await ctrl.list('/default/ctrl1', { recursive: true, type: 'file', extended: true });
      assert.deepEqual(files.map((r) => r.path).sort(), ['/default/ctrl1/data/blob.bin', '/default/ctrl1/data/notes.txt']);
      assert.ok(files.every((r) => r.parent_id && r.system_attributes));
      assert.deepEqual((await ctrl.list('/default/ctrl1/data', { filter: 'note*' })).map((r) => r.name), ['notes.txt']);

      await ctrl.createFolder('/default/ctrl1/archive');
      await ctrl.move(path, '/default/ctrl1/archive');
      assert.equal(await ctrl.exists(path), false);
      assert.equal((await ctrl.read('/default/ctrl1/archive/notes.txt')).toString(), 'second version');
      // Moving onto a taken name, or into a folder that does not exist, is a bad request.
      await ctrl.write('/default/ctrl1/data/notes.txt', 'again');
      assert.equal(await statusOf(ctrl.move('/default/ctrl1/data/notes.txt', '/default/ctrl1/archive')), 400);
      assert.equal(await statusOf(ctrl.move('/default/ctrl1/data/notes.txt', '/default/ctrl1/nowhere')), 400);
      const renamed = await ctrl.raw('PUT', '/api/v1/resources/default/ctrl1/data/notes.txt', { name: 'renamed.txt' });
      assert.equal(renamed.status, 200);
      assert.equal(await ctrl.exists('/default/ctrl1/data/renamed.txt'), true);

      await ctrl.delete('/default/ctrl1/archive/notes.txt');
      assert.equal(await ctrl.exists('/default/ctrl1/archive/notes.txt'), false);
      assert.equal(await statusOf(ctrl.read('/default/ctrl1/archive/notes.txt')), 404);
      // The name is free again.
      await ctrl.write('/default/ctrl1/archive/notes.txt', 'reborn');
      assert.equal((await ctrl.read('/default/ctrl1/archive/notes.txt')).toString(), 'reborn');
      await ctrl.delete('/default/ctrl1/archive/notes.txt', { data_only: 1 });
      assert.equal(await ctrl.exists('/default/ctrl1/archive/notes.txt'), true);
      assert.equal(await statusOf(ctrl.read('/default/ctrl1/archive/notes.txt')), 404, 'an emptied file reads as 404');

      const download = await ctrl.raw('GET', '/api/v1/resources/default/ctrl1/data/blob.bin', { download: 1 }, true);
      assert.match(String(download.headers['content-disposition']), /^attachment; filename="blob.bin"/);
    });

    it('create_folder makes missing parents; a duplicate is answered 200 with status error', async () => {
      await ctrl.createFolder('/default/ctrl1/deep/er/folder');
      const meta = await ctrl.info('/default/ctrl1/deep/er/folder');
      assert.equal(meta.type, 10);
      assert.equal((await ctrl.info('/default/ctrl1/deep/er')).type, 10);
      const again = await ctrl.json('POST', '/api/v1/resources', { path: '/default/ctrl1/deep/er', name: 'folder', type: 10 });
      assert.deepEqual(again, { status: 'error', message: 'Resource already exists.' });
      const created = await ctrl.json('POST', '/api/v1/resources', { path: '/default/ctrl1/deep', name: 'other', type: 10 });
      assert.equal(created.status, 'ok');
      assert.equal(created.id, (await ctrl.info('/default/ctrl1/deep/other')).id);
    });

    it('a controller created through rhizo is a fleetd device with its log and status sequences', async () => {
      const made = await admin.json('POST', '/api/v1/resources', { path: '/default', name: 'made-by-rhizo', type: 12 });
      assert.equal(made.status, 'ok');
      const devices = await api('GET', `/api/orgs/${server.admin.orgId}/devices?q=made-by-rhizo`);
      assert.equal(devices.body.items.length, 1);
      const children = await admin.list('/default/made-by-rhizo', { recursive: true });
      assert.deepEqual(children.map((r) => r.path).sort(), ['/default/made-by-rhizo/log', '/default/made-by-rhizo/status', ...['free_disk_space', 'messages_received', 'messages_sent', 'processor_usage', 'serial_errors'].map((n) => `/default/made-by-rhizo/status/${n}`)]);
      assert.equal((await admin.info('/default/made-by-rhizo/log')).system_attributes.data_type, 2);
      // A controller is a device: making one takes a device admin.
      assert.equal(await statusOf(ctrl.request('POST', '/api/v1/resources', { path: '/default', name: 'rogue', type: 12 })), 403);
    });

    it('a file uploaded as multipart takes its name from the file part', async () => {
      const form = new FormData();
      form.set('path', '/default/ctrl1/uploads');
      form.set('type', '20');
      form.set('file', new Blob([Buffer.from('a,b\r\n1,2\r\n')]), 'table.csv');
      const reply = await fetch(`${server.url}/api/v1/resources`, { method: 'POST', headers: { authorization: ctrl.authorization }, body: form });
      assert.equal(reply.status, 200, await reply.clone().text());
      assert.equal(((await reply.json()) as { status: string }).status, 'ok');
      assert.equal((await ctrl.read('/default/ctrl1/uploads/table.csv')).toString(), 'a,b\n1,2\n');
    });

    it('sequences: create, update through PUT data, current value, history with count and times, CSV', async () => {
      // The older client: settings as parameters; min_storage_interval 20 as it sends.
      await ctrl.createSequence('/default/ctrl1/humidity', 'numeric', { units: 'percent', decimalPlaces: 1 });
      const humidity = await ctrl.info('/default/ctrl1/humidity');
      assert.equal(humidity.type, 21);
      assert.equal(humidity.system_attributes.data_type, 1);
      assert.equal(humidity.system_attributes.min_storage_interval, 20);
      assert.equal(humidity.system_attributes.units, 'percent');
      // rhizo.md's client: system_attributes JSON; without an interval rhizo's 50 s default applies.
      const made = await ctrl.json('POST', '/api/v1/resources', { path: '/default/ctrl1', name: 'temperature', type: 21, system_attributes: JSON.stringify({ data_type: 1, units: 'degrees C' }) });
      assert.equal(made.status, 'ok');
      assert.equal((await ctrl.info('/default/ctrl1/temperature')).system_attributes.min_storage_interval, 50);
      await ctrl.json('POST', '/api/v1/resources', { path: '/default/ctrl1', name: 'level', type: 21, system_attributes: JSON.stringify({ data_type: 'numeric', min_storage_interval: 0 }) });
      await ctrl.json('POST', '/api/v1/resources', { path: '/default/ctrl1', name: 'status_text', type: 21, system_attributes: JSON.stringify({ data_type: 2 }) });
      assert.equal((await ctrl.info('/default/ctrl1/status_text')).system_attributes.min_storage_interval, 0);

      assert.equal((await ctrl.read('/default/ctrl1/level')).toString(), '', 'no value yet reads empty');
      await ctrl.updateSequence('/default/ctrl1/level', 21.5);
      assert.equal((await ctrl.read('/default/ctrl1/level')).toString(), '21.5');
      await ctrl.updateSequence('/default/ctrl1/status_text', 'all good');
      const current = await ctrl.raw('GET', '/api/v1/resources/default/ctrl1/status_text');
      assert.match(String(current.headers['content-type']), /^text\/plain/);
      assert.equal(current.body.toString(), 'all good');
      assert.equal(await statusOf(ctrl.request('PUT', '/api/v1/resources/default/ctrl1/level', { data: b64('not a number') })), 400);

      // Values at the device's own times (within 30 s of now: no correction).
      const now = Date.now();
      const times = [now - 20_000, now - 15_000, now - 10_000, now - 5_000];
      for (const [i, t] of times.entries()) await ctrl.updateMultiple({ '/default/ctrl1/level': i + 1 }, t);
      const last3 = await ctrl.json('GET', '/api/v1/resources/default/ctrl1/level', { count: 3 });
      assert.equal(last3.name, 'level');
      assert.equal(last3.path, '/default/ctrl1/level');
      assert.equal(last3.values.length, 3);
      assert.ok(last3.timestamps.every((t: number, i: number) => i === 0 || t > last3.timestamps[i - 1]), 'oldest first');
      const ranged = await ctrl.json('GET', '/api/v1/resources/default/ctrl1/level', { count: 100, start_timestamp: clientTimestamp(times[0]!), end_timestamp: clientTimestamp(times[2]!) });
      assert.deepEqual(ranged.values, ['1', '2', '3']);
      assert.deepEqual(ranged.timestamps, times.slice(0, 3).map((t) => t / 1000));
      const csv = await ctrl.raw('GET', '/api/v1/resources/default/ctrl1/level', { count: 2, start_timestamp: clientTimestamp(times[0]!), end_timestamp: clientTimestamp(times[2]!), download: 1 });
      assert.equal(csv.status, 200);
      assert.match(String(csv.headers['content-disposition']), /level\.csv/);
      const lines = csv.body.toString().trimEnd().split('\n');
      assert.equal(lines[0], 'utc_timestamp,value');
      assert.equal(lines.length, 3);
      const iso = new Date(times[2]!).toISOString();
      assert.equal(lines[2], `${iso.slice(0, 10)} ${iso.slice(11, 23)}000,3`);

      // Settings change through PUT.
      await ctrl.request('PUT', '/api/v1/resources/default/ctrl1/level', { system_attributes: JSON.stringify({ data_type: 1 }), units: 'mm', decimal_places: 2 });
      const level = await ctrl.info('/default/ctrl1/level');
      assert.equal(level.system_attributes.units, 'mm');
      assert.equal(level.system_attributes.decimal_places, 2);
      // data_only empties the history, the sequence stays.
      await ctrl.delete('/default/ctrl1/level', { data_only: 1 });
      assert.deepEqual((await ctrl.json('GET', '/api/v1/resources/default/ctrl1/level', { count: 10 })).values, []);
    });

    it("bulk update: one timestamp, a drifting controller clock corrected, the unknown and the forbidden skipped", async () => {
      await ctrl.createSequence('/default/ctrl1/bulk_a', 'numeric');
      await ctrl.request('PUT', '/api/v1/resources/default/ctrl1/bulk_a', { min_storage_interval: 0, system_attributes: '{}' });
      await ctrl.json('POST', '/api/v1/resources', { path: '/default/ctrl1', name: 'bulk_b', type: 21, system_attributes: JSON.stringify({ data_type: 2, min_storage_interval: 0 }) });
      const at = Date.now() - 3_000;
      const reply = await ctrl.updateMultiple({ '/default/ctrl1/bulk_a': 1.5, '/default/ctrl1/bulk_b': 'x', '/default/ctrl1/missing': 3, '/other/octrl/log': 'intrusion' }, at);
      assert.equal(reply.toString().trim(), 'null');
      const a = await ctrl.json('GET', '/api/v1/resources/default/ctrl1/bulk_a', { count: 10 });
      assert.deepEqual(a.values, ['1.5']);
      assert.equal(a.timestamps[0], at / 1000);
      assert.deepEqual((await ctrl.json('GET', '/api/v1/resources/default/ctrl1/bulk_b', { count: 10 })).values, ['x']);

      // An hour slow: the value lands at the server's now, and the correction is kept for the next.
      const slow = Date.now() - 3_600_000;
      await ctrl.updateMultiple({ '/default/ctrl1/bulk_a': 2 }, slow);
      const corrected = await ctrl.json('GET', '/api/v1/resources/default/ctrl1/bulk_a', { count: 10 });
      assert.deepEqual(corrected.values, ['1.5', '2']);
      assert.ok(Math.abs(corrected.timestamps[1] * 1000 - Date.now()) < 10_000, `corrected to now: ${corrected.timestamps[1]}`);
      const folder = await ctrl.info('/self');
      assert.ok(Math.abs(Number(folder.system_attributes.timestamp_correction) - 3600) < 10, JSON.stringify(folder.system_attributes));
      const kept = Date.now() - 3_600_000 + 5_000;
      await ctrl.updateMultiple({ '/default/ctrl1/bulk_a': 3 }, kept);
      const third = await ctrl.json('GET', '/api/v1/resources/default/ctrl1/bulk_a', { count: 10 });
      assert.equal(third.values.length, 3);
      // A user key's timestamps are taken as given.
      await userKey.updateMultiple({ '/default/ctrl1/bulk_b': 'old' }, Date.now() - 7_200_000);
      const b = await ctrl.json('GET', '/api/v1/resources/default/ctrl1/bulk_b', { count: 10 });
      assert.equal(b.values[0], 'old');
      // The stranger's writes into default were skipped without a word.
      assert.equal((await stranger.updateMultiple({ '/default/ctrl1/bulk_b': 'intrusion' })).toString().trim(), 'null');
      assert.ok(!(await ctrl.json('GET', '/api/v1/resources/default/ctrl1/bulk_b', { count: 10 })).values.includes('intrusion'));
    });

    it('keys: a controller key made, listed and revoked; the revoked key is refused', async () => {
      const folder = await ctrl.info('/self');
      // As in rhizo, people make keys: a key (of a user or a controller) does not make more.
      assert.equal(await statusOf(userKey.request('POST', '/api/v1/keys', { access_as_controller_id: folder.id })), 403);
      const made = await admin.json('POST', '/api/v1/keys', { access_as_controller_id: folder.id });
      assert.equal(made.status, 'ok');
      assert.match(made.secret_key, /^fk_/);
      const second = new RhizoClient(server.url, made.secret_key);
      assert.equal(await second.pathOnServer(), '/default/ctrl1');
      const listed = await userKey.json('GET', '/api/v1/keys', { access_as_controller_id: folder.id });
      assert.ok(listed[made.id], JSON.stringify(listed));
      assert.equal(listed[made.id].access_as_controller_id, folder.id);
      assert.equal(listed[made.id].revocation_timestamp, null);
      await userKey.request('DELETE', `/api/v1/keys/${made.id}`);
      assert.equal(await statusOf(second.pathOnServer()), 401);
      const after = await userKey.json('GET', '/api/v1/keys', { access_as_controller_id: folder.id });
      assert.equal(typeof after[made.id].revocation_timestamp, 'string');
      assert.equal(await statusOf(userKey.request('DELETE', '/api/v1/keys/key_unknown')), 400);
      assert.equal(await statusOf(admin.request('POST', '/api/v1/keys', { access_as_controller_id: 'res_unknown' })), 400);
      // A controller does not make keys, and the system admin lists them all.
      assert.equal(await statusOf(ctrl.request('POST', '/api/v1/keys', { access_as_controller_id: folder.id })), 403);
      assert.ok((await admin.json('GET', '/api/v1/keys'))[made.id]);
      assert.equal(await statusOf(userKey.request('GET', '/api/v1/keys')), 403);
    });

    it('PIN provisioning: a controller without a key gets one through a PIN a person enters', async () => {
      await device(server.admin.orgId, 'ctrl2');
      const keyless = new RhizoClient(server.url, 'x');
      const { pin, pin_code } = await keyless.requestPin();
      assert.ok(pin >= 1000 && pin <= 9999);
      assert.match(pin_code, /^[A-Z0-9]{60}$/);
      assert.deepEqual(await keyless.pollPin(pin, pin_code), { status: 'ok' });
      assert.equal(await statusOf(keyless.pollPin(pin, 'A'.repeat(60))), 404);
      // A person enters the PIN for a controller folder they may write.
      assert.equal(await statusOf(stranger.request('PUT', `/api/v1/pins/${pin}`, { controller: '/default/ctrl2' })), 403);
      assert.equal(await statusOf(admin.request('PUT', `/api/v1/pins/${pin}`, { controller: '/default/nothing' })), 404);
      assert.deepEqual(await admin.json('PUT', `/api/v1/pins/${pin}`, { controller: '/default/ctrl2' }), { status: 'ok' });
      assert.equal(await statusOf(admin.request('PUT', `/api/v1/pins/${pin}`, { controller: '/default/ctrl2' })), 400, 'entered once');
      const answer = await keyless.pollPin(pin, pin_code);
      assert.equal(answer.status, 'ok');
      assert.equal(answer.controller_path, '/default/ctrl2');
      assert.ok(answer.secret_key);
      assert.deepEqual(await keyless.pollPin(pin, pin_code), { status: 'ok' }, 'the key is handed out once');
      keyless.secret = answer.secret_key!;
      assert.equal(await keyless.pathOnServer(), '/default/ctrl2');
      const stored = await server.services.store.db.selectFrom('provisioning_pins').selectAll().where('pin', '=', pin).executeTakeFirstOrThrow();
      assert.equal(stored.secret, null);
      assert.notEqual(stored.code_hash, pin_code);
    });

    it('an expired PIN says so', async () => {
      const keyless = new RhizoClient(server.url, 'x');
      const { pin, pin_code } = await keyless.requestPin();
      await server.services.store.db.updateTable('provisioning_pins').set({ created_at: new Date(Date.now() - 31 * 60_000).toISOString() }).where('pin', '=', pin).execute();
      assert.deepEqual(await keyless.pollPin(pin, pin_code), { status: 'error', message: 'PIN has expired.' });
      assert.deepEqual(await admin.json('PUT', `/api/v1/pins/${pin}`, { controller: '/default/ctrl1' }), { status: 'error', message: 'PIN has expired.' });
    });

    it('organizations and users', async () => {
      const orgs = await admin.json('GET', '/api/v1/organizations');
      assert.equal(orgs[server.admin.orgId].name, 'default');
      const made = await admin.json('POST', '/api/v1/organizations', { folder_name: 'acme', full_name: 'Acme Labs' });
      assert.equal(made.status, 'ok');
      assert.equal((await admin.json('GET', '/api/v1/organizations'))[made.organization_id].full_name, 'Acme Labs');
      assert.equal(await statusOf(admin.request('POST', '/api/v1/organizations', { folder_name: 'Not A Slug', full_name: 'x' })), 400);
      assert.equal(await statusOf(userKey.request('POST', '/api/v1/organizations', { folder_name: 'mine', full_name: 'Mine' })), 403);
      assert.equal(await statusOf(ctrl.request('GET', '/api/v1/organizations')), 403);

      const member = await memberWithRole(server, server.admin.orgId, 'rhizo-member@example.com', 'viewer');
      assert.deepEqual(await admin.json('POST', `/api/v1/organizations/${made.organization_id}/users`, { user_id: member.userId, is_admin: 1 }), { status: 'ok' });
      const members = await admin.json('GET', `/api/v1/organizations/${made.organization_id}/users`);
      assert.deepEqual(members[member.userId], { organization_id: made.organization_id, user_id: member.userId, is_admin: true });
      await admin.request('PUT', `/api/v1/organizations/${made.organization_id}/users/${member.userId}`, { is_admin: 0 });
      assert.equal((await admin.json('GET', `/api/v1/organizations/acme/users/${member.userId}`)).is_admin, false);
      const unknownEmail = await admin.json('POST', `/api/v1/organizations/acme/users`, { email_address: 'nobody@example.com' });
      assert.equal(unknownEmail.status, 'error');
      await admin.request('DELETE', `/api/v1/organizations/acme/users/${member.userId}`);
      assert.equal(await statusOf(admin.request('GET', `/api/v1/organizations/acme/users/${member.userId}`)), 404);
      // Another organization's users are not found for a member of default.
      const memberClient = new RhizoClient(server.url, `Bearer ${member.token}`);
      assert.equal(await statusOf(memberClient.request('GET', `/api/v1/organizations/${made.organization_id}/users`)), 404);

      const users = await admin.json('GET', '/api/v1/users');
      assert.equal(users[server.admin.userId].email_address, server.admin.email);
      assert.equal(users[server.admin.userId].role, 2);
      assert.deepEqual(await admin.json('GET', `/api/v1/users/${encodeURIComponent(server.admin.email)}`, { check_exists: 1 }), { exists: 1 });
      assert.deepEqual(await admin.json('GET', '/api/v1/users/nobody@example.com', { check_exists: 1 }), { exists: 0 });
      assert.equal(await statusOf(userKey.request('GET', '/api/v1/users')), 403);
    });

    it('messages: sent to a folder with write access; 403 without it, 404 for an unknown folder', async () => {
      await ctrl.sendMessage('/default/ctrl1', 'hello', { answer: 42 });
      const stored = await server.services.store.db.selectFrom('folder_messages').selectAll().where('type', '=', 'hello').execute();
      assert.equal(stored.length, 1);
      assert.deepEqual(JSON.parse(stored[0]!.parameters), { answer: 42 });
      assert.equal(stored[0]!.sender_id, ctrlDeviceId);
      const viewer = await memberWithRole(server, server.admin.orgId, 'rhizo-viewer@example.com', 'viewer');
      const viewerKey = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/api-keys`, { token: viewer.token, body: { name: 'viewer key' } });
      const reader = new RhizoClient(server.url, viewerKey.body.key);
      assert.equal(await statusOf(reader.sendMessage('/default/ctrl1', 'hello', {})), 403);
      assert.equal(await statusOf(ctrl.sendMessage('/default/nowhere', 'hello', {})), 404);
      assert.equal(await statusOf(ctrl.sendMessage('/default/ctrl1', 'x'.repeat(41), {})), 400);
    });

    it("another organization's controller finds nothing of default and changes nothing", async () => {
      const before = await server.services.store.db.selectFrom('resources').select(['id', 'path', 'modified_at', 'deleted']).where('org_id', '=', server.admin.orgId).orderBy('id').execute();
      const target = '/api/v1/resources/default/ctrl1';
      assert.equal((await stranger.raw('GET', target, { meta: 1 })).status, 404);
      assert.equal((await stranger.raw('GET', `${target}/humidity`, { count: 5 })).status, 404);
      assert.equal((await stranger.raw('PUT', `${target}/humidity`, { data: b64('1') })).status, 404);
      assert.equal((await stranger.raw('DELETE', `${target}/humidity`)).status, 404);
      assert.equal((await stranger.raw('POST', '/api/v1/resources', { path: '/default/ctrl1', name: 'planted', type: 10 })).status, 404);
      assert.equal((await stranger.raw('POST', `${target}/planted.txt`, { data: b64('x') })).status, 404);
      assert.equal((await stranger.raw('POST', '/api/v1/messages', { folder_path: '/default/ctrl1', type: 'x', parameters: '{}' })).status, 404);
      assert.equal((await stranger.raw('GET', '/api/v1/resources/default')).status, 404);
      assert.equal(await stranger.pathOnServer(), '/other/octrl');
      const after = await server.services.store.db.selectFrom('resources').select(['id', 'path', 'modified_at', 'deleted']).where('org_id', '=', server.admin.orgId).orderBy('id').execute();
      assert.deepEqual(after, before);
    });
  });
}
