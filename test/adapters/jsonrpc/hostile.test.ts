import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Type } from 'typebox';
import { OutgoingCalls } from '../../../src/adapters/jsonrpc/calls.ts';
import { Dispatcher } from '../../../src/adapters/jsonrpc/dispatcher.ts';
import type { CallContext } from '../../../src/adapters/jsonrpc/methods.ts';
import type { MalformedResponse, ResponseMessage } from '../../../src/adapters/jsonrpc/parse.ts';
import type { Principal } from '../../../src/core/access.ts';
import { FleetError } from '../../../src/core/errors.ts';
import type { Role } from '../../../src/core/roles.ts';
import { createLogger } from '../../../src/log.ts';
import { decoded, subtractMethod } from './helpers.ts';
import { recordingLogger } from '../../helpers/logger.ts';

/** What a client (or a device) may send on purpose or by accident: answered by the rules, never a crash. */

const parseError = { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null };
const invalidRequest = (id: string | number | null = null) => ({ jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id });
const methodNotFound = (id: string | number | null) => ({ jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id });
const internalError = (id: string | number | null) => ({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id });

const thrownValues: unknown[] = ['a string', undefined, null, 42, { code: -32001, message: 'pretending to be an error' }, { rpcCode: -32001 }, Symbol('thrown')];

function hostileDispatcher(options: { maxBatchSize?: number } = {}) {
  const log = recordingLogger();
  const dispatcher = new Dispatcher({ logger: log.logger, ...options })
    .register(subtractMethod)
    .register({ name: 'greet', params: Type.Object({ name: Type.String({ maxLength: 50 }) }, { additionalProperties: false }), access: 'public', handler: ({ name }) => `hello ${name}` })
    .register({ name: 'keys', params: Type.Object({}, { additionalProperties: true }), access: 'public', handler: (params) => Object.keys(params) })
    .register({ name: 'echo', params: Type.Array(Type.Unknown()), access: 'public', handler: (params) => params })
    .register({ name: 'throw', params: Type.Tuple([Type.Integer({ minimum: 0, maximum: thrownValues.length - 1 })]), access: 'public', handler: ([index]) => Promise.reject(thrownValues[index]) })
    .register({
      name: 'leak',
      params: Type.Object({}, { additionalProperties: false }),
      access: 'public',
      handler: () => {
        throw new Error('connection to postgres://fleetd:hunter2@db failed');
      },
    });
  return { dispatcher, log };
}

const send = async (dispatcher: Dispatcher, frame: unknown, context: CallContext = {}) => decoded(await dispatcher.handleText(typeof frame === 'string' ? frame : JSON.stringify(frame), context));

const request = (method: unknown, params?: unknown, id: unknown = 1) => ({ jsonrpc: '2.0', method, ...(params !== undefined && { params }), id });

/** The text of arrays nested `depth` deep. */
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('hostile input', () => {
  it('answers text that is not JSON with one Parse error', async () => {
    const { dispatcher } = hostileDispatcher();
    for (const text of ['', ' ', '{', '}', '[', '{"jsonrpc":"2.0",}', "{'method':'x'}", 'nul', 'NaN', 'Infinity', 'undefined', '\u0000', '{"a":1}{"b":2}', '[1,]', '"unterminated']) {
      assert.deepStrictEqual(await send(dispatcher, text), parseError, JSON.stringify(text));
    }
  });

  it('answers JSON that is neither an object nor an array with one Invalid Request', async () => {
    const { dispatcher } = hostileDispatcher();
    for (const text of ['1', '-0', '3.5', '"a string"', '""', 'null', 'true', 'false']) {
      assert.deepStrictEqual(await send(dispatcher, text), invalidRequest(), text);
    }
  });

  it('refuses a wrong type for every member, echoing an id only when it is a valid one', async () => {
    const { dispatcher } = hostileDispatcher();
    const valid = request('subtract', [2, 1], 7);
    const without = (member: string) => Object.fromEntries(Object.entries(valid).filter(([key]) => key !== member));
    const refused: [string, unknown][] = [
      ['no jsonrpc', without('jsonrpc')],
      ...['1.0', '2', ' 2.0', 2, 2.0, null, true, ['2.0'], { v: '2.0' }].map((v): [string, unknown] => [`jsonrpc ${JSON.stringify(v)}`, { ...valid, jsonrpc: v }]),
      ['no method', without('method')],
      ...[1, null, true, [], {}, ['subtract']].map((v): [string, unknown] => [`method ${JSON.stringify(v)}`, { ...valid, method: v }]),
      ...['bar', 1, true, null, ''].map((v): [string, unknown] => [`params ${JSON.stringify(v)}`, { ...valid, params: v }]),
    ];
    for (const [what, frame] of refused) assert.deepStrictEqual(await send(dispatcher, frame), invalidRequest(7), what);
    for (const id of [true, false, {}, [], [1], { id: 1 }]) {
      assert.deepStrictEqual(await send(dispatcher, { ...valid, id }), invalidRequest(), `id ${JSON.stringify(id)}`);
    }
    // 1e400 reads as Infinity, which JSON cannot write back: it is no id.
    assert.deepStrictEqual(await send(dispatcher, '{"jsonrpc":"2.0","method":"subtract","params":[2,1],"id":1e400}'), invalidRequest());
    // An invalid request without an id is still answered: it cannot be known to be a notification.
    assert.deepStrictEqual(await send(dispatcher, { jsonrpc: '2.0', method: 1 }), invalidRequest());
  });

  it('takes ids of every valid kind, echoed with their type', async () => {
    const { dispatcher } = hostileDispatcher();
    for (const id of [0, -1, '', '1', 1.5, -0.25, null, 'x'.repeat(1000), 2 ** 53 - 1]) {
      assert.deepStrictEqual(await send(dispatcher, request('subtract', [2, 1], id)), { jsonrpc: '2.0', result: 1, id }, JSON.stringify(id));
    }
  });

  it('answers a method name of 10,000 characters as not found, and logs only its start', async () => {
    const { dispatcher, log } = hostileDispatcher();
    const name = 'a'.repeat(10_000);
    assert.deepStrictEqual(await send(dispatcher, request(name)), methodNotFound(1));
    assert.ok(!log.text().includes(name));
  });

  it('keeps rpc.* names to the protocol: none is found, none can be registered', async () => {
    const { dispatcher } = hostileDispatcher();
    for (const name of ['rpc.discover', 'rpc.', 'rpc.subtract']) assert.deepStrictEqual(await send(dispatcher, request(name, [])), methodNotFound(1), name);
    assert.throws(() => dispatcher.register({ name: 'rpc.ping', params: Type.Array(Type.Unknown()), access: 'public', handler: () => 'pong' }), /reserved/);
  });

  it('finds no method behind __proto__, constructor or other names of Object.prototype', async () => {
    const { dispatcher } = hostileDispatcher();
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'prototype']) {
      assert.deepStrictEqual(await send(dispatcher, request(name, {})), methodNotFound(1), name);
    }
  });

  it('lets no params key reach Object.prototype', async () => {
    const { dispatcher } = hostileDispatcher();
    const polluting = '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}';
    const reply = await send(dispatcher, `{"jsonrpc":"2.0","method":"keys","params":${polluting},"id":1}`);
    assert.deepStrictEqual(reply, { jsonrpc: '2.0', result: ['__proto__', 'constructor'], id: 1 });
    const refused = (await send(dispatcher, `{"jsonrpc":"2.0","method":"greet","params":${polluting},"id":2}`)) as { error: { code: number; data: { field: string }[] } };
    assert.equal(refused.error.code, -32602);
    assert.deepStrictEqual(refused.error.data.map((problem) => problem.field).sort(), ['__proto__', 'constructor', 'name']);
    // Members of the message itself named like Object.prototype's are just unknown members.
    assert.deepStrictEqual(await send(dispatcher, '{"__proto__":{"jsonrpc":"2.0","method":"subtract","params":[2,1]},"id":3}'), invalidRequest(3));
    assert.deepStrictEqual(await send(dispatcher, '{"jsonrpc":"2.0","method":"subtract","params":[2,1],"__proto__":{"id":5}}'), undefined, 'a notification');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
  });

  it('survives deeply nested params, and a result too deep to write is an Internal error', async () => {
    const { dispatcher } = hostileDispatcher();
    const deep = nested(100_000);
    assert.deepStrictEqual(await send(dispatcher, `{"jsonrpc":"2.0","method":"keys","params":{"tree":${deep}},"id":1}`), { jsonrpc: '2.0', result: ['tree'], id: 1 });
    const refused = (await send(dispatcher, `{"jsonrpc":"2.0","method":"greet","params":{"name":${deep}},"id":2}`)) as { error: unknown };
    assert.deepStrictEqual(refused.error, { code: -32602, message: 'Invalid params', data: [{ field: 'name', message: 'must be a string' }] });
    assert.deepStrictEqual(await send(dispatcher, `{"jsonrpc":"2.0","method":"echo","params":[${deep}],"id":3}`), internalError(3));
    assert.deepStrictEqual(await send(dispatcher, `[${deep}]`), [invalidRequest()], 'an array in a batch is no batch of batches');
  });

  it('refuses a batch over the limit whole, saying the limit', async () => {
    const { dispatcher } = hostileDispatcher({ maxBatchSize: 10 });
    const batch = Array.from({ length: 11 }, (_, i) => request('subtract', [i, 1], i));
    const reply = (await send(dispatcher, batch)) as { error: { code: number; message: string; data: { reason: string; maxBatchSize: number } }; id: null };
    assert.ok(!Array.isArray(reply), 'one error, not an array');
    assert.equal(reply.error.code, -32600);
    assert.equal(reply.id, null);
    assert.equal(reply.error.data.maxBatchSize, 10);
    assert.match(reply.error.data.reason, /at most 10/);
    assert.equal((await send(dispatcher, batch.slice(0, 10)) as unknown[]).length, 10, 'the limit itself is allowed');
  });

  it('answers a batch of 1,000 mixed valid and invalid entries, one response each except notifications', async () => {
    const { dispatcher } = hostileDispatcher({ maxBatchSize: 1000 });
    const batch: unknown[] = [];
    const expected = new Map<string | number, unknown>();
    for (let i = 0; i < 1000; i++) {
      switch (i % 5) {
        case 0:
          batch.push(request('subtract', [i, 1], i));
          expected.set(i, { jsonrpc: '2.0', result: i - 1, id: i });
          break;
        case 1:
          batch.push({ jsonrpc: '2.0', method: 'subtract', params: [i, 1] });
          break;
        case 2:
          batch.push({ jsonrpc: '2.0', method: i, id: i });
          expected.set(i, invalidRequest(i));
          break;
        case 3:
          batch.push(request(`missing.${i}`, [], `s${i}`));
          expected.set(`s${i}`, methodNotFound(`s${i}`));
          break;
        default:
          batch.push(request('greet', { name: i }, `g${i}`));
          expected.set(`g${i}`, { jsonrpc: '2.0', error: { code: -32602, message: 'Invalid params', data: [{ field: 'name', message: 'must be a string' }] }, id: `g${i}` });
      }
    }
    const reply = (await send(dispatcher, batch)) as { id: string | number }[];
    assert.equal(reply.length, 800);
    for (const response of reply) assert.deepStrictEqual(response, expected.get(response.id));
    assert.equal(new Set(reply.map((response) => response.id)).size, 800);
  });

  it('answers each request of a batch that repeats an id', async () => {
    const { dispatcher } = hostileDispatcher();
    const reply = (await send(dispatcher, [request('subtract', [5, 3], 1), request('subtract', [10, 1], 1), request('subtract', [1, 1], 1)])) as { result: number }[];
    assert.deepStrictEqual(
      reply.map((response) => response.result),
      [2, 9, 0],
    );
    assert.ok(reply.every((response) => (response as unknown as { id: number }).id === 1));
  });

  it('answers handlers that throw anything but a FleetError with an Internal error that says nothing more', async () => {
    const { dispatcher, log } = hostileDispatcher();
    for (const [index, value] of thrownValues.entries()) {
      assert.deepStrictEqual(await send(dispatcher, request('throw', [index], index)), internalError(index), String(value));
    }
    assert.deepStrictEqual(await send(dispatcher, request('leak', {}, 'l')), internalError('l'));
    assert.ok(log.text().includes('hunter2'), 'the log has what the caller was not told');
    assert.equal(log.entries.filter((line) => line.msg === 'JSON-RPC method failed').length, thrownValues.length + 1);
  });

  it('answers nothing to notifications, whatever goes wrong with them', async () => {
    const { dispatcher } = hostileDispatcher();
    for (const notification of [
      { jsonrpc: '2.0', method: 'missing' },
      { jsonrpc: '2.0', method: 'greet', params: { name: 1 } },
      { jsonrpc: '2.0', method: 'throw', params: [0] },
      { jsonrpc: '2.0', method: 'leak' },
    ]) {
      assert.equal(await send(dispatcher, notification), undefined, notification.method);
      assert.equal(await send(dispatcher, [notification, notification]), undefined, `${notification.method} in a batch`);
    }
  });
});

describe('hostile responses', () => {
  function callingDispatcher(options: { timeoutMs?: number } = {}) {
    const sent: unknown[] = [];
    const settled: boolean[] = [];
    const calls = new OutgoingCalls({ send: (frame) => void sent.push(frame), timeoutMs: options.timeoutMs ?? 5_000 });
    const dispatcher = new Dispatcher({
      logger: createLogger('silent'),
      onResponse: (message: ResponseMessage | MalformedResponse) => void settled.push(calls.settle(message)),
    });
    return { dispatcher, calls, sent, settled };
  }

  it('drops responses to ids nobody is waiting for, answering nothing', async () => {
    const { dispatcher, calls, settled } = callingDispatcher();
    const waiting = calls.call('Shelly.GetStatus');
    for (const id of [99, '1', null, 0, -1]) {
      assert.equal(await send(dispatcher, { jsonrpc: '2.0', result: 'stray', id }), undefined, JSON.stringify(id));
    }
    assert.deepStrictEqual(settled, [false, false, false, false, false]);
    assert.equal(calls.size, 1, 'the call is still waiting');
    await send(dispatcher, { jsonrpc: '2.0', result: 'mine', id: 1 });
    assert.equal(await waiting, 'mine');
  });

  it('drops a response that comes after its call timed out', async () => {
    const { dispatcher, calls, settled } = callingDispatcher({ timeoutMs: 5 });
    await assert.rejects(calls.call('Switch.Set', { id: 0, on: true }), (error: FleetError) => error.code === 'device_timeout');
    assert.equal(await send(dispatcher, { jsonrpc: '2.0', result: { was_on: false }, id: 1 }), undefined);
    assert.deepStrictEqual(settled, [false]);
    assert.equal(calls.size, 0);
  });

  it('fails a call at once when its error response is malformed (no code, no message, not an object)', async () => {
    const { dispatcher, calls } = callingDispatcher();
    const malformed = [{ message: 'broken' }, { code: 1.5, message: 'x' }, { code: '-105', message: 'x' }, { code: -105 }, 'text', null, []];
    for (const [index, error] of malformed.entries()) {
      const call = calls.call('Switch.Set');
      assert.equal(await send(dispatcher, { jsonrpc: '2.0', error, id: index + 1 }), undefined);
      await assert.rejects(call, (e: FleetError) => e instanceof FleetError && e.code === 'device_error' && /malformed/.test(e.message), JSON.stringify(error));
    }
    const both = calls.call('Switch.Set');
    await send(dispatcher, { jsonrpc: '2.0', result: 1, error: { code: 1, message: 'x' }, id: malformed.length + 1 });
    await assert.rejects(both, /both result and error/);
    assert.equal(calls.size, 0);
  });

  it('answers a response where nobody expects one as an Invalid Request', async () => {
    const { dispatcher } = hostileDispatcher();
    assert.deepStrictEqual(await send(dispatcher, { jsonrpc: '2.0', result: 1, id: 4 }), invalidRequest(4));
    assert.deepStrictEqual(await send(dispatcher, { jsonrpc: '2.0', error: { message: 'no code' }, id: 5 }), invalidRequest(5));
    assert.deepStrictEqual(await send(dispatcher, { jsonrpc: '2.0', result: 1 }), invalidRequest());
  });
});

describe('access', () => {
  const user = (roles: Record<string, Role>): Principal => ({ kind: 'user', userId: 'usr_me', systemAdmin: false, orgRoles: new Map(Object.entries(roles)), via: 'token' });
  const admin: Principal = { kind: 'user', userId: 'usr_root', systemAdmin: true, orgRoles: new Map(), via: 'token' };

  const guarded = () =>
    new Dispatcher({ logger: createLogger('silent') })
      .register({
        name: 'Device.Forget',
        params: Type.Object({ orgId: Type.String(), deviceId: Type.String() }, { additionalProperties: false }),
        access: { actions: ['device.manage'] },
        resource: ({ orgId }) => ({ orgId }),
        handler: ({ deviceId }, { principal }) => `${deviceId} forgotten by ${principal.kind}`,
      })
      .register({ name: 'Users.List', params: Type.Object({}, { additionalProperties: false }), access: { actions: ['user.list'] }, handler: () => [] });

  const errorOf = async (dispatcher: Dispatcher, frame: unknown, context: CallContext) => ((await send(dispatcher, frame, context)) as { error?: { code: number; message: string } }).error;

  it('refuses a call without a principal as unauthenticated, before looking at its params', async () => {
    const dispatcher = guarded();
    for (const params of [{ orgId: 'org_a', deviceId: 'dev_1' }, { wrong: true }]) {
      assert.deepStrictEqual(await errorOf(dispatcher, request('Device.Forget', params), {}), { code: -32001, message: 'Authentication required' });
    }
  });

  it('refuses a principal the permission function refuses, as it decides', async () => {
    const dispatcher = guarded();
    const params = { orgId: 'org_a', deviceId: 'dev_1' };
    assert.equal((await errorOf(dispatcher, request('Device.Forget', params), { principal: user({ org_a: 'operator' }) }))?.code, -32003, 'forbidden: a member below admin');
    assert.equal((await errorOf(dispatcher, request('Device.Forget', params), { principal: user({ org_b: 'owner' }) }))?.code, -32004, 'not found: not a member');
    assert.equal((await errorOf(dispatcher, request('Users.List', {}), { principal: user({ org_a: 'owner' }) }))?.code, -32003, 'forbidden: system admins only');
  });

  it('lets through a principal the permission function allows', async () => {
    const dispatcher = guarded();
    const params = { orgId: 'org_a', deviceId: 'dev_1' };
    assert.deepStrictEqual(await send(dispatcher, request('Device.Forget', params), { principal: user({ org_a: 'admin' }) }), { jsonrpc: '2.0', result: 'dev_1 forgotten by user', id: 1 });
    assert.deepStrictEqual(await send(dispatcher, request('Users.List', {}), { principal: admin }), { jsonrpc: '2.0', result: [], id: 1 });
  });
});
