import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../../src/services/actor.ts';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { refusal } from '../../hub/websocket-harness.ts';
import { basicAuth, controller, RhizoClient, rhizoUrl, userKey } from './websocket-client.ts';

/**
 * rhizo's message WebSocket as rhizo-client uses it (rhizo.md §5, §7): controllers and users on
 * Basic key auth, subscriptions, sequence updates, routed messages, write_resource, watchdog, and
 * organizations kept apart.
 */

for (const backend of await backends()) {
  describe(`rhizo WebSocket on ${backend.name}`, { skip: backend.skip }, () => {
    let server: TestServer;
    let orgId: string;
    let ctrl1: Awaited<ReturnType<typeof controller>>;
    let ctrl2: Awaited<ReturnType<typeof controller>>;
    let user: Awaited<ReturnType<typeof userKey>>;
    const clients: RhizoClient[] = [];
    const open = async (authorization: string, path?: string, protocols?: string[]) => {
      const client = await RhizoClient.open(rhizoUrl(server.url, path), authorization, protocols);
      clients.push(client);
      return client;
    };
    const attributes = async (path: string) => (await server.services.resources.resolve(systemActor.principal, path)).systemAttributes;

    before(async () => {
      server = await startTestServer(backend, { rrduinoPort: '0' });
      orgId = server.admin.orgId;
      ctrl1 = await controller(server, orgId, 'ctrl1');
      ctrl2 = await controller(server, orgId, 'ctrl2');
      user = await userKey(server, orgId);
      await server.services.resources.create(systemActor, '/default/ctrl1', { name: 'temp', type: 'sequence', sequence: { dataType: 'numeric' } });
      await server.services.resources.create(systemActor, '/default/ctrl1', { name: 'status', type: 'basic_folder' });
      await server.services.resources.create(systemActor, '/default/ctrl1/status', { name: 'note', type: 'sequence', sequence: { dataType: 'text' } });
    });

    after(async () => {
      for (const client of clients) client.close();
      await server?.close();
    });

    it('takes a controller key as the Basic password, with the http-only subprotocol, and records its version and connect time', async () => {
      const before = Date.now();
      const client = await open(basicAuth(ctrl1.key, '0.2.7.1234'), '/api/v1/websocket', ['http-only']);
      assert.equal(client.ws.protocol, 'http-only');
      await client.sync();
      const status = await attributes('/default/ctrl1');
      assert.equal(status.client_version, '0.2.7.1234');
      assert.ok(Date.parse(String(status.last_connect_timestamp)) >= before - 1000);
      // The legacy path serves the same protocol.
      const legacy = await open(basicAuth(ctrl2.key), '/api/v1/connectWebSocket');
      await legacy.sync();
      client.close();
      legacy.close();
    });

    it('stores update_sequence values and sends sequence_update to subscribers of the folder and its children', async () => {
      const watcher = await open(basicAuth(user.key));
      watcher.send('subscribe', { subscriptions: [{ folder: '/default', include_children: true }] });
      const device = await open(basicAuth(ctrl1.key));
      device.send('subscribe', { subscriptions: [{ folder: 'self', include_children: true }] });
      await Promise.all([watcher.sync(), device.sync()]);

      device.send('update_sequence', { sequence: 'temp', value: 21.5, timestamp: '2024-01-02T03:04:05.123456 Z' });
      const update = await watcher.next('sequence_update', (f) => f.parameters.name === '/default/ctrl1/temp');
      assert.deepEqual(update.parameters, { id: update.parameters.id, name: '/default/ctrl1/temp', timestamp: '2024-01-02T03:04:05.123Z', value: 21.5 });
      assert.match(update.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      // Server-originated: the controller that wrote it hears it too.
      await device.next('sequence_update', (f) => f.parameters.name === '/default/ctrl1/temp');
      const raw = await server.services.series.raw(systemActor.principal, '/default/ctrl1/temp');
      assert.deepEqual(raw.values.map((v) => [v.t, v.value]), [[Date.UTC(2024, 0, 2, 3, 4, 5, 123), 21.5]]);

      // A sequence in a subfolder created after the subscription: include_children covers it.
      await server.services.resources.create(systemActor, '/default/ctrl1/status', { name: 'later', type: 'basic_folder' });
      await server.services.resources.create(systemActor, '/default/ctrl1/status/later', { name: 'level', type: 'sequence', sequence: { dataType: 'text' } });
      device.send('updateSequence', { sequence: 'status/later/level', value: 'high' });
      const nested = await watcher.next('sequence_update', (f) => f.parameters.name === '/default/ctrl1/status/later/level');
      assert.equal(nested.parameters.value, 'high');
      watcher.close();
      device.close();
    });

    it('routes other messages to subscribers, filtered by type, never back to the sender', async () => {
      const sender = await open(basicAuth(ctrl1.key));
      sender.send('subscribe', { subscriptions: [{ folder: 'self' }] });
      const everything = await open(basicAuth(user.key));
      everything.send('subscribe', { subscriptions: [{ folderId: (await server.services.resources.resolve(systemActor.principal, '/default/ctrl1')).id }] });
      const onlyHello = await open(basicAuth(ctrl2.key));
      onlyHello.send('subscribe', { subscriptions: [{ folder: '/default/ctrl1', message_type: 'hello' }] });
      await Promise.all([sender, everything, onlyHello].map((c) => c.sync()));

      sender.send('other', { n: 1 });
      sender.send('hello', { greeting: 'hi' });
      const hello = await onlyHello.next('hello');
      assert.deepEqual(hello.parameters, { greeting: 'hi' });
      await everything.next('other');
      await everything.next('hello');
      await Promise.all([sender, onlyHello].map((c) => c.sync()));
      assert.equal(onlyHello.of('other').length, 0);
      assert.equal(sender.of('hello').length + sender.of('other').length, 0, 'not echoed to the sender');

      // A user names the folder; its own message does not come back to it either.
      everything.send('set_config', { names: 'a' }, '/default/ctrl1');
      await sender.next('set_config');
      await everything.sync();
      assert.equal(everything.of('set_config').length, 0);
      const stored = await server.services.store.db.selectFrom('folder_messages').selectAll().where('type', '=', 'set_config').execute();
      assert.equal(stored.length, 1);
      assert.equal(stored[0]!.sender_kind, 'user');
      for (const c of [sender, everything, onlyHello]) c.close();
    });

    it('writes values with write_resource and answers its errors as error frames', async () => {
      const writer = await open(basicAuth(user.key));
      writer.send('write_resource', { path: '/default/ctrl1/status/note', data: 'written' });
      await writer.sync();
      const last = await server.services.series.last(systemActor.principal, '/default/ctrl1/status/note');
      assert.equal(last.last?.value, 'written');
      writer.send('write_resource', { path: '/default/ctrl1/nothing', data: '1' });
      await writer.error('resource not found: /default/ctrl1/nothing');
      writer.send('write_resource', { data: '1' });
      await writer.error('expected data and path parameters for write_resource message');
      writer.send('write_resource', { path: '/default/ctrl1', data: '1' });
      await writer.error('/default/ctrl1 is not a sequence');

      const viewer = await memberWithRole(server, orgId, 'viewer@example.com', 'viewer');
      const reader = await open(`Bearer ${viewer.token}`);
      reader.send('write_resource', { path: '/default/ctrl1/status/note', data: 'nope' });
      await reader.error('permission error: /default/ctrl1/status/note');
      writer.close();
      reader.close();
    });

    it('records watchdog messages of controllers', async () => {
      const device = await open(basicAuth(ctrl2.key));
      device.send('watchdog', {});
      await device.sync();
      const status = await attributes('/default/ctrl2');
      assert.ok(Date.now() - Date.parse(String(status.last_watchdog_timestamp)) < 10_000);
      assert.equal(status.watchdog_notification_sent, false);
      device.close();
    });

    it('answers send_email when email is not configured, and send_text_message as unsupported', async () => {
      const device = await open(basicAuth(ctrl2.key));
      device.send('send_email', { email_addresses: 'ops@example.com', subject: 's', body: 'b' });
      await device.error('Email is not configured');
      device.send('sendTextMessage', { phoneNumbers: '+15551234567', message: 'm' });
      await device.error('send_text_message is not supported: this server sends no text messages');
      device.close();
    });

    it('keeps organizations apart', async () => {
      const other = await server.services.organizations.create(systemActor, { slug: 'other', name: 'Other', ownerId: server.admin.userId });
      const outsider = await controller(server, other.id, 'outsider');
      const client = await open(basicAuth(outsider.key));
      client.send('subscribe', { subscriptions: [{ folder: '/default', include_children: true }, { folder: 'self', include_children: true }] });
      await client.error('resource not found: /default');
      client.send('hello', {}, '/default/ctrl1');
      await client.error('resource not found: /default/ctrl1');

      const device = await open(basicAuth(ctrl1.key));
      device.send('update_sequence', { sequence: 'temp', value: 1 });
      device.send('hello', {});
      await device.sync();
      // A message of its own organization, sent after those: once it is here, they would have been.
      const neighbour = await controller(server, other.id, 'neighbour');
      const inOther = await open(basicAuth(neighbour.key));
      inOther.send('marker', {}, '/other/outsider');
      await client.next('marker');
      assert.deepEqual(client.frames.map((f) => f.type), ['marker']);
      for (const c of [client, device, inOther]) c.close();
    });

    it('refuses a revoked key and a connection without credentials before the upgrade, and ends a connection whose key is revoked', async () => {
      const key = await userKey(server, orgId);
      const client = await open(basicAuth(key.key));
      await client.sync();
      const revoked = await request(server.url, 'DELETE', `/api/orgs/${orgId}/api-keys/${key.keyId}`, { token: server.admin.token });
      assert.equal(revoked.status, 200);
      const refused = await refusal(rhizoUrl(server.url), [], { headers: { authorization: basicAuth(key.key) } });
      assert.equal(refused.status, 401);
      assert.equal((await refusal(rhizoUrl(server.url))).status, 401);
      assert.equal((await refusal(rhizoUrl(server.url), [], { headers: { authorization: basicAuth('not-a-key') } })).status, 401);
      // The connection opened before the revocation ends at its next check (cacheTtl, 5 s here).
      assert.deepEqual(await client.closed, { code: 4001, reason: 'credentials revoked' });
    });
  });
}
