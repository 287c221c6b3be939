import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../../helpers/backends.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { fakeDevice, hubOf, memberKey, newDevice, RpcClient, wsUrl } from './harness.ts';

/**
 * What a client may send on /api/ws on purpose or by accident: a JSON-RPC error where the protocol
 * has one, and the connection goes on; a close code where it ends (binary, too big, too fast).
 */

const parseError = { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null };
const invalidRequest = { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id: null };
const maxFrame = 256 * 1024;
const rateLimit = 600;

for (const backend of await backends()) {
  describe(`hostile clients on /api/ws [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let key: string;
    const clients: RpcClient[] = [];
    const open = async () => {
      const client = await RpcClient.open(wsUrl(server), key);
      clients.push(client);
      return client;
    };
    /** The connection still answers. */
    const alive = async (client: RpcClient) => assert.ok(Array.isArray((await client.result('Device.List', {})).items));

    before(async () => {
      server = await startTestServer(backend, { wsMaxFrame: String(maxFrame), wsRateLimit: String(rateLimit) });
      org = server.admin.orgId;
      key = (await memberKey(server, org, 'hostile@example.com', 'operator')).key;
    });
    after(async () => {
      for (const client of clients) client.close();
      await server?.close();
    });

    it('answers text that is not JSON with a Parse error and goes on', async () => {
      const client = await open();
      for (const text of ['', '{', 'nul', '{"jsonrpc":"2.0",}', "{'method':'Device.List'}", '[1,]', '\u0000', '{"a":1}{"b":2}']) {
        assert.deepEqual(await client.raw(text), parseError, JSON.stringify(text));
      }
      await alive(client);
    });

    it('answers what is not a request with Invalid Request, and notifications with nothing', async () => {
      const client = await open();
      for (const text of ['1', 'null', '"Device.List"', '{}', '{"jsonrpc":"1.0","method":"Device.List","id":1}', '{"jsonrpc":"2.0","method":"Device.List","params":"x","id":1}', '[]']) {
        const reply = (await client.raw(text)) as { error: { code: number } };
        assert.equal(reply.error.code, -32600, text);
      }
      assert.deepEqual(await client.raw('{"jsonrpc":"2.0","method":"Device.List","id":{"a":1}}'), invalidRequest);
      assert.deepEqual(await client.raw('[1,2]'), [invalidRequest, invalidRequest]);
      // A notification, failing or not, gets no reply: the next frame received answers the request after it.
      client.ws.send('{"jsonrpc":"2.0","method":"No.Such"}');
      client.ws.send('{"jsonrpc":"2.0","method":"Device.Call","params":{"device":"nowhere","method":"X"}}');
      assert.deepEqual(await client.raw('{"jsonrpc":"2.0","method":"No.Such","id":"after"}'), { jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: 'after' });
      await alive(client);
    });

    it('refuses unknown methods and params of the wrong shape, naming the field', async () => {
      const client = await open();
      for (const method of ['No.Such', 'device.list', 'rpc.discover', 'Device.List ', '__proto__', 'constructor', 'x'.repeat(10_000)]) {
        assert.equal((await client.error(method, {})).code, -32601, method.slice(0, 20));
      }
      const problems: Array<[string, unknown, string]> = [
        ['Device.Get', { device: 5 }, 'device'],
        ['Device.Get', {}, 'device'],
        ['Device.Get', { device: 'a', extra: true }, 'extra'],
        ['Device.List', { limit: 'ten' }, 'limit'],
        ['Device.List', { limit: 100_000 }, 'limit'],
        ['Device.List', { tags: ['no spaces allowed'] }, 'tags.0'],
        ['Device.Call', { device: 'a', method: '' }, 'method'],
        ['Device.Call', { device: 'a', method: 'X', params: 'scalar' }, 'params'],
        ['Device.Call', { device: 'a', method: 'X', timeoutMs: -1 }, 'timeoutMs'],
        ['Device.SetDesired', { device: 'a', desired: [] }, 'desired'],
        ['Subscribe', { filter: { events: ['no spaces'] } }, 'filter.events.0'],
        ['Subscribe', { filter: { tags: [] } }, 'filter.tags'],
        ['Subscribe', { filter: { unknown: 1 } }, 'filter.unknown'],
        ['Unsubscribe', { subscription: 42 }, 'subscription'],
      ];
      for (const [method, params, field] of problems) {
        const error = await client.error(method, params);
        assert.equal(error.code, -32602, `${method} ${JSON.stringify(params)}`);
        assert.ok((error.data as Array<{ field: string }>).some((p) => p.field === field), `${method}: ${JSON.stringify(error.data)} names ${field}`);
      }
      assert.equal((await client.error('Device.List', ['by position'])).code, -32602);
      await alive(client);
    });

    it('refuses a batch over 100 whole, and answers one of 100', async () => {
      const client = await open();
      const batch = (n: number) => JSON.stringify(Array.from({ length: n }, (_, id) => ({ jsonrpc: '2.0', method: 'Device.List', params: {}, id })));
      const refused = (await client.raw(batch(101))) as { error: { code: number; data: { maxBatchSize: number } }; id: null };
      assert.equal(refused.error.code, -32600);
      assert.equal(refused.error.data.maxBatchSize, 100);
      const answered = (await client.raw(batch(100))) as Array<{ id: number; result: unknown }>;
      assert.deepEqual(answered.map((r) => r.id).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
      await alive(client);
    });

    it('survives deep nesting', async () => {
      const client = await open();
      const depth = 100_000;
      assert.deepEqual(await client.raw('['.repeat(depth) + ']'.repeat(depth)), [invalidRequest]);
      const deepParams = `{"jsonrpc":"2.0","method":"Device.List","params":{"q":${'['.repeat(depth)}${']'.repeat(depth)}},"id":1}`;
      assert.equal(((await client.raw(deepParams)) as { error: { code: number } }).error.code, -32602);
      const thing = await newDevice(server, org, 'deep');
      const deepDesired = `{"jsonrpc":"2.0","method":"Device.SetDesired","params":{"device":"${thing.id}","desired":${'{"a":'.repeat(30_000)}1${'}'.repeat(30_000)}},"id":2}`;
      const reply = (await client.raw(deepDesired)) as { error?: { code: number }; id: number };
      assert.equal(reply.id, 2);
      assert.ok(reply.error, 'a state that deep is refused');
      await alive(client);
    });

    it('answers many calls at once to a device that never answers, each on its own', async () => {
      const client = await open();
      const mute = await newDevice(server, org, 'mute');
      const device = await fakeDevice(hubOf(server), mute, () => 'silent');
      const replies = await Promise.all(Array.from({ length: 40 }, () => client.call('Device.Call', { device: mute.id, method: 'X', timeoutMs: 300 })));
      const codes = replies.map((r) => r.error?.code);
      // The device takes 10 calls at a time; the others are refused at once rather than queued.
      assert.ok(codes.every((code) => code === -32054 || code === -32053), JSON.stringify(codes));
      assert.ok(codes.includes(-32054));
      await alive(client);
      await device.disconnect();
    });

    it('closes a connection that sends binary frames with 1003', async () => {
      const client = await open();
      client.ws.send(Buffer.from('{"jsonrpc":"2.0","method":"Device.List","id":1}'));
      assert.deepEqual(await client.closed, { code: 1003, reason: 'binary frames are not accepted' });
    });

    it('closes a connection that sends a frame over wsMaxFrame with 1009', async () => {
      const client = await open();
      client.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'Device.List', params: { q: 'x'.repeat(maxFrame) }, id: 1 }));
      assert.equal((await client.closed).code, 1009);
    });

    it('closes a connection that floods with 1008, and another is not affected', async () => {
      const flooder = await open();
      const bystander = await open();
      for (let i = 0; i < rateLimit + 50; i++) flooder.ws.send('{"jsonrpc":"2.0","method":"No.Such"}');
      assert.deepEqual(await flooder.closed, { code: 1008, reason: 'message rate limited' });
      await alive(bystander);
    });
  });
}
