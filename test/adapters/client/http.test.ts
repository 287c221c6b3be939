import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../../src/services/actor.ts';
import { backends } from '../../helpers/backends.ts';
import { request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { fakeDevice, hubOf, memberKey, newDevice, type RpcReply } from './harness.ts';

/** POST /api/rpc: the methods of /api/ws over HTTP, JSON-RPC 2.0 by the spec. */

const invalidRequest = { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id: null };
/** The responses of a batch come in any order: by id. */
const repliesById = (replies: RpcReply[]) => new Map(replies.map((reply) => [reply.id, reply]));

for (const backend of await backends()) {
  describe(`POST /api/rpc [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let operator: string;
    const rpc = (body: unknown, options: { token?: string; headers?: Record<string, string> } = {}) =>
      request(server.url, 'POST', '/api/rpc', { token: options.token ?? operator, body, headers: options.headers });

    before(async () => {
      server = await startTestServer(backend, { bodyLimit: '65536' });
      org = server.admin.orgId;
      operator = (await memberKey(server, org, 'http-operator@example.com', 'operator')).key;
    });
    after(async () => {
      await server?.close();
    });

    it('answers one request with one response, and calls devices', async () => {
      const lamp = await newDevice(server, org, 'http-lamp', { externalId: 'http-lamp' });
      const device = await fakeDevice(hubOf(server), lamp, (method) => ({ result: { method } }));
      const listed = await rpc({ jsonrpc: '2.0', method: 'Device.List', params: { q: 'http-' }, id: 'a' });
      assert.equal(listed.status, 200);
      assert.match(listed.headers.get('content-type') ?? '', /application\/json/);
      assert.deepEqual(listed.body.result.items.map((d: { id: string }) => d.id), [lamp.id]);
      assert.equal(listed.body.id, 'a');
      const called = await rpc({ jsonrpc: '2.0', method: 'Device.Call', params: { device: 'http-lamp', method: 'Shelly.GetStatus' }, id: 0 });
      assert.deepEqual(called.body, { jsonrpc: '2.0', result: { method: 'Shelly.GetStatus' }, id: 0 });
      await device.disconnect();
    });

    it('answers a batch with an array, leaving out notifications, and all-notifications with 204', async () => {
      const batch = await rpc([
        { jsonrpc: '2.0', method: 'Device.List', params: {}, id: 1 },
        { jsonrpc: '2.0', method: 'Device.List', params: {} },
        { jsonrpc: '2.0', method: 'No.Such', id: 2 },
        { jsonrpc: '2.0', method: 'Device.Get', params: { device: 7 }, id: 3 },
        { foo: 'boo' },
      ]);
      assert.equal(batch.status, 200);
      assert.ok(Array.isArray(batch.body));
      const byId = repliesById(batch.body);
      assert.equal(batch.body.length, 4);
      assert.ok(byId.get(1)?.result);
      assert.equal(byId.get(2)?.error?.code, -32601);
      assert.equal(byId.get(3)?.error?.code, -32602);
      assert.deepEqual(byId.get(null), invalidRequest);

      for (const body of [{ jsonrpc: '2.0', method: 'Device.List' }, [{ jsonrpc: '2.0', method: 'Device.List' }, { jsonrpc: '2.0', method: 'No.Such' }]]) {
        const quiet = await rpc(body);
        assert.equal(quiet.status, 204);
        assert.equal(quiet.body, '');
      }
    });

    it('answers the protocol errors with HTTP 200 and the JSON-RPC error object', async () => {
      const parse = await rpc('{"jsonrpc": "2.0", "method": "Device.List", "params": "bar", "baz]');
      assert.equal(parse.status, 200);
      assert.deepEqual(parse.body, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
      const empty = await rpc('');
      assert.deepEqual(empty.body.error.code, -32700);
      assert.deepEqual((await rpc([])).body, invalidRequest);
      assert.deepEqual((await rpc([1])).body, [invalidRequest]);
      assert.deepEqual((await rpc({ jsonrpc: '2.0', method: 1, params: 'bar' })).body, invalidRequest);
      const tooMany = await rpc(Array.from({ length: 101 }, (_, id) => ({ jsonrpc: '2.0', method: 'Device.List', id })));
      assert.equal(tooMany.body.error.code, -32600);
    });

    it('refuses other content types, oversized bodies and callers who are not clients', async () => {
      const text = await rpc('{"jsonrpc":"2.0","method":"Device.List","id":1}', { headers: { 'content-type': 'text/plain' } });
      assert.equal(text.status, 415);
      assert.equal(text.body.error.code, 'unsupported_media_type');
      const form = await rpc('a=1', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(form.status, 415);
      const none = await fetch(`${server.url}/api/rpc`, { method: 'POST', headers: { authorization: `Bearer ${operator}` } });
      assert.equal(none.status, 415);
      const big = await rpc({ jsonrpc: '2.0', method: 'Device.List', params: { q: 'x'.repeat(70_000) }, id: 1 });
      assert.equal(big.status, 413);

      const anonymous = await fetch(`${server.url}/api/rpc`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(anonymous.status, 401);
      const device = await newDevice(server, org, 'http-device');
      const { key } = await server.services.apiKeys.create(systemActor, org, { name: 'device key', deviceId: device.id });
      const asDevice = await rpc({ jsonrpc: '2.0', method: 'Device.List', id: 1 }, { token: key });
      assert.equal(asDevice.status, 403);
    });

    it('authorizes each method: a viewer reads but may not call', async () => {
      const viewer = (await memberKey(server, org, 'http-viewer@example.com', 'viewer')).key;
      const device = await newDevice(server, org, 'http-guarded');
      const replies = await rpc(
        [
          { jsonrpc: '2.0', method: 'Device.Get', params: { device: device.id }, id: 'get' },
          { jsonrpc: '2.0', method: 'Device.Call', params: { device: device.id, method: 'Switch.Set' }, id: 'call' },
        ],
        { token: viewer },
      );
      const byId = repliesById(replies.body);
      assert.equal(byId.get('get')?.result.device.id, device.id);
      assert.equal(byId.get('call')?.error?.code, -32003);
    });

    it('sends subscriptions to /api/ws', async () => {
      const single = await rpc({ jsonrpc: '2.0', method: 'Subscribe', params: {}, id: 9 });
      assert.equal(single.status, 200);
      assert.equal(single.body.error.code, -32600);
      assert.match(single.body.error.message, /\/api\/ws/);
      assert.equal(single.body.id, 9);
      const mixed = await rpc([
        { jsonrpc: '2.0', method: 'Unsubscribe', params: { subscription: 'sub_x' }, id: 1 },
        { jsonrpc: '2.0', method: 'Device.List', id: 2 },
        { jsonrpc: '2.0', method: 'Subscribe' },
      ]);
      const byId = repliesById(mixed.body);
      assert.equal(mixed.body.length, 2);
      assert.equal(byId.get(1)?.error?.code, -32600);
      assert.ok(byId.get(2)?.result);
      assert.equal((await rpc({ jsonrpc: '2.0', method: 'Subscribe' })).status, 204);
    });
  });
}
