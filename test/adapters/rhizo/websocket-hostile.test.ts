import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../../src/services/actor.ts';
import { maxSubscriptions } from '../../../src/adapters/rhizo/websocket/subscriptions.ts';
import { backends } from '../../helpers/backends.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { basicAuth, controller, RhizoClient, rhizoUrl, userKey } from './websocket-client.ts';

/**
 * What a broken or hostile rhizo client may send: each is refused with an `error` frame and the
 * connection goes on, except where rhizo closes it (not JSON) or the frame is beyond the limit.
 */

const maxFrame = 4096;

for (const backend of await backends()) {
  describe(`rhizo WebSocket against hostile input on ${backend.name}`, { skip: backend.skip }, () => {
    let server: TestServer;
    let device: RhizoClient;
    let user: RhizoClient;
    let deviceKey: string;
    let userKeyText: string;
    const clients: RhizoClient[] = [];
    const open = async (key: string) => {
      const client = await RhizoClient.open(rhizoUrl(server.url), basicAuth(key));
      clients.push(client);
      return client;
    };

    before(async () => {
      server = await startTestServer(backend, { rrduinoPort: '0', wsMaxFrame: String(maxFrame) });
      const ctrl = await controller(server, server.admin.orgId, 'h1');
      deviceKey = ctrl.key;
      userKeyText = (await userKey(server, server.admin.orgId)).key;
      await server.services.resources.create(systemActor, '/default/h1', { name: 'n', type: 'sequence', sequence: { dataType: 'numeric' } });
      await server.services.resources.create(systemActor, '/default/h1', { name: 'cam', type: 'sequence', sequence: { dataType: 'image' } });
      device = await open(deviceKey);
      user = await open(userKeyText);
    });

    after(async () => {
      for (const client of clients) client.close();
      await server?.close();
    });

    it('closes the connection on a frame that is not JSON, with a code and a reason', async () => {
      const client = await open(userKeyText);
      client.raw('{"type": "ping", ');
      assert.deepEqual(await client.closed, { code: 1007, reason: 'frame is not valid JSON' });
    });

    it('closes the connection on a frame above the size limit', async () => {
      const client = await open(userKeyText);
      client.send('hello', { big: 'x'.repeat(maxFrame) });
      assert.equal((await client.closed).code, 1009);
    });

    it('answers JSON that is no message with an error frame, and goes on', async () => {
      for (const text of ['[1,2]', '"text"', 'null', '{}', '{"type": 5}', '{"type": ""}']) {
        user.raw(text);
        await user.error(/^expected a (JSON object with type and parameters|message type)$/);
      }
      await user.sync();
    });

    it('refuses message types over 40 characters and parameters that are not an object', async () => {
      user.send('x'.repeat(41), {}, '/default/h1');
      await user.error('A message type is 1 to 40 characters');
      user.send('y'.repeat(40), {}, '/default/h1');
      for (const parameters of ['text', [1], 5]) {
        user.send('hello', parameters, '/default/h1');
        await user.error('Message parameters must be a JSON object');
      }
      await user.sync();
      assert.equal(user.of('error').length, 0, 'the 40-character type is taken');
    });

    it('answers unknown folders and bad folder references', async () => {
      user.send('hello', {}, '/default/nope');
      await user.error('resource not found: /default/nope');
      user.send('hello', {}, 'res_nope');
      await user.error('resource not found: res_nope');
      user.send('hello', {}, { id: 1 });
      await user.error('expected a folder path, id or self');
      user.send('hello', {}, '/default/../etc');
      await user.error(/may not be \. or \.\./);
      // A user has no folder of its own.
      user.send('hello', {});
      await user.error('expected a folder for the message');
      await user.sync();
    });

    it('routes types named like object members as any other', async () => {
      const watcher = await open(deviceKey);
      watcher.send('subscribe', { subscriptions: [{ folder: 'self' }] });
      await watcher.sync();
      for (const type of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) user.send(type, { a: 1 }, '/default/h1');
      await watcher.next('hasOwnProperty');
      assert.deepEqual(
        watcher.frames.map((f) => f.type),
        ['__proto__', 'constructor', 'toString', 'hasOwnProperty'],
      );
      watcher.close();
    });

    it('refuses malformed subscriptions, and more than the limit', async () => {
      user.send('subscribe', { subscriptions: 'self' });
      await user.error('expected a subscriptions list for subscribe message');
      user.send('subscribe', {});
      await user.error('expected a subscriptions list for subscribe message');
      user.send('subscribe', { subscriptions: [5, { folder: '/default', message_type: 5 }] });
      await user.error('expected {folder, message_type?, include_children?} for each subscription');
      await user.error('expected {folder, message_type?, include_children?} for each subscription');
      user.send('subscribe', { subscriptions: [{ folder: {} }] });
      await user.error('expected a folder path, id or self');
      const many = Array.from({ length: maxSubscriptions + 1 }, (_, i) => ({ folder: '/default', message_type: `t${i}` }));
      // In frames below the size limit.
      for (let i = 0; i < many.length; i += 67) user.send('subscribe', { subscriptions: many.slice(i, i + 67) });
      await user.error(`A connection holds at most ${maxSubscriptions} subscriptions`);
      await user.sync();
    });

    it('keeps update_sequence and send_email to controllers', async () => {
      user.send('update_sequence', { sequence: '/default/h1/n', value: 1 });
      await user.error('update_sequence is for controllers only');
      user.send('send_email', { email_addresses: 'a@example.com', subject: 's', body: 'b' });
      await user.error('send_email is for controllers only');
      await user.sync();
    });

    it('answers bad update_sequence parameters with error frames', async () => {
      device.send('update_sequence', { sequence: 'n' });
      await device.error('expected sequence and value parameters for update_sequence message');
      device.send('update_sequence', { sequence: 5, value: 1 });
      await device.error('expected sequence and value parameters for update_sequence message');
      device.send('update_sequence', 'n=1');
      await device.error('expected sequence and value parameters for update_sequence message');
      device.send('update_sequence', { sequence: 'n', value: 1, timestamp: 'yesterday' });
      await device.error(/^Invalid date\/time "yesterday"/);
      device.send('update_sequence', { sequence: 'n', value: 1, timestamp: '2024-02-31T00:00:00Z' });
      await device.error(/^Invalid date\/time "2024-02-31/);
      device.send('update_sequence', { sequence: 'missing', value: 1 });
      await device.error('resource not found: /default/h1/missing');
      device.send('update_sequence', { sequence: 'n', value: { a: 1 } });
      await device.error('A sequence value is a number or a text');
      device.send('update_sequence', { sequence: 'cam', value: 'not base64!' });
      await device.error('An image value is base64 text');
      await device.sync();
      assert.equal((await server.services.series.raw(systemActor.principal, '/default/h1/n')).values.length, 0);

      const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      device.send('update_sequence', { sequence: 'cam', value: png.toString('base64'), encoded: true });
      device.send('setNode', { node: 'n', value: '2.5' });
      await device.sync();
      const [image] = (await server.services.series.raw(systemActor.principal, '/default/h1/cam')).values;
      assert.deepEqual(image?.value, png);
      const [number] = (await server.services.series.raw(systemActor.principal, '/default/h1/n')).values;
      assert.equal(number?.value, 2.5);
    });
  });
}
