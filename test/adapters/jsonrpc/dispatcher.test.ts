import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Type } from 'typebox';
import { Dispatcher } from '../../../src/adapters/jsonrpc/dispatcher.ts';
import type { CallContext } from '../../../src/adapters/jsonrpc/methods.ts';
import { conflict, FleetError } from '../../../src/core/errors.ts';
import { createLogger } from '../../../src/log.ts';
import {decoded } from './helpers.ts';
import { recordingLogger } from '../../helpers/logger.ts';

/** What the dispatcher does beyond the specification's examples: params, results, errors, batches, transports. */

const silent = createLogger('silent');
const Subtract = Type.Object({ minuend: Type.Number(), subtrahend: Type.Number() }, { additionalProperties: false });
const request = (method: string, params?: unknown, id: string | number | null = 1) => JSON.stringify({ jsonrpc: '2.0', method, ...(params !== undefined && { params }), id });

const run = async <C extends CallContext>(dispatcher: Dispatcher<C>, text: string, context: C) => decoded(await dispatcher.handleText(text, context));
const errorOf = async (dispatcher: Dispatcher, text: string) => ((await run(dispatcher, text, {})) as { error?: unknown }).error;

describe('dispatcher', () => {
  describe('params', () => {
    const dispatcher = new Dispatcher({ logger: silent })
      .register({ name: 'subtract', params: Subtract, positional: true, access: 'public', handler: ({ minuend, subtrahend }) => minuend - subtrahend })
      .register({ name: 'named', params: Subtract, access: 'public', handler: ({ minuend, subtrahend }) => minuend - subtrahend })
      .register({ name: 'max', params: Type.Array(Type.Number(), { minItems: 1 }), access: 'public', handler: (values) => Math.max(...values) })
      .register({ name: 'pair', params: Type.Tuple([Type.String(), Type.Integer()]), access: 'public', handler: ([name, count]) => `${name}×${count}` });

    it('maps positions onto the declared names, in their order', async () => {
      assert.deepStrictEqual(await run(dispatcher, request('subtract', [10, 4]), {}), { jsonrpc: '2.0', result: 6, id: 1 });
      assert.deepStrictEqual(await errorOf(dispatcher, request('subtract', [1, 2, 3])), {
        code: -32602,
        message: 'Invalid params',
        data: [{ field: '', message: 'takes at most 2 parameters by position' }],
      });
      assert.deepStrictEqual(await errorOf(dispatcher, request('subtract', [10])), { code: -32602, message: 'Invalid params', data: [{ field: 'subtrahend', message: 'is required' }] });
      assert.deepStrictEqual(await errorOf(dispatcher, request('subtract', ['10', null])), {
        code: -32602,
        message: 'Invalid params',
        data: [
          { field: 'minuend', message: 'must be a number' },
          { field: 'subtrahend', message: 'must be a number' },
        ],
      });
    });

    it('lists every problem with by-name params: missing, unknown, of the wrong type', async () => {
      assert.deepStrictEqual(await errorOf(dispatcher, request('subtract', { Minuend: 1, subtrahend: '2' })), {
        code: -32602,
        message: 'Invalid params',
        data: [
          { field: 'minuend', message: 'is required' },
          { field: 'Minuend', message: 'is not a known field' },
          { field: 'subtrahend', message: 'must be a number' },
        ],
      });
      assert.deepStrictEqual(await errorOf(dispatcher, request('subtract')), {
        code: -32602,
        message: 'Invalid params',
        data: [
          { field: 'minuend', message: 'is required' },
          { field: 'subtrahend', message: 'is required' },
        ],
      });
    });

    it('takes params by position only where the method says so', async () => {
      assert.deepStrictEqual(await errorOf(dispatcher, request('named', [10, 4])), { code: -32602, message: 'Invalid params', data: [{ field: '', message: 'must be an object' }] });
      assert.deepStrictEqual(await errorOf(dispatcher, request('max', { values: [1] })), { code: -32602, message: 'Invalid params', data: [{ field: '', message: 'must be an array' }] });
      assert.deepStrictEqual(await run(dispatcher, request('max', [3, 9, 2]), {}), { jsonrpc: '2.0', result: 9, id: 1 });
      assert.deepStrictEqual(await run(dispatcher, request('pair', ['bolt', 3]), {}), { jsonrpc: '2.0', result: 'bolt×3', id: 1 });
      assert.equal(((await errorOf(dispatcher, request('max'))) as { code: number }).code, -32602, 'absent params are an empty array');
    });

    it('refuses definitions it could not honour', () => {
      assert.throws(() => dispatcher.register({ name: 'subtract', params: Subtract, access: 'public', handler: () => 0 }), /twice/);
      // Only object params have names to map positions onto; the type says so, and so does the registry.
      const positionalArray = { name: 'bad', params: Type.Array(Type.Number()), positional: true, access: 'public', handler: () => 0 } as never;
      assert.throws(() => dispatcher.register(positionalArray), /only object params/);
    });
  });

  describe('results and errors', () => {
    const log = recordingLogger();
    const dispatcher = new Dispatcher({ logger: log.logger })
      .register({ name: 'nothing', params: Type.Array(Type.Unknown()), access: 'public', handler: () => undefined })
      .register({ name: 'later', params: Type.Array(Type.Unknown()), access: 'public', handler: async () => (await sleep(1), { done: true }) })
      .register({ name: 'taken', params: Type.Array(Type.Unknown()), access: 'public', handler: () => Promise.reject(conflict('The name is taken', { field: 'name' })) })
      .register({
        name: 'plain',
        params: Type.Array(Type.Unknown()),
        access: 'public',
        handler: () => {
          throw new FleetError('rate_limited', 'Slow down', { retryAfter: 3 });
        },
      })
      .register({
        name: 'broken',
        params: Type.Array(Type.Unknown()),
        access: 'public',
        handler: () => {
          throw new FleetError('internal', 'The database is unreachable');
        },
      })
      .register({ name: 'big', params: Type.Array(Type.Unknown()), access: 'public', handler: () => ({ count: 10n }) });

    it('answers a handler that returns nothing with a null result', async () => {
      assert.deepStrictEqual(await run(dispatcher, request('nothing', []), {}), { jsonrpc: '2.0', result: null, id: 1 });
      assert.deepStrictEqual(await run(dispatcher, request('later', [], 'x'), {}), { jsonrpc: '2.0', result: { done: true }, id: 'x' });
    });

    it("answers a FleetError with its code's JSON-RPC code, its message and its details as data", async () => {
      assert.deepStrictEqual(await errorOf(dispatcher, request('taken', [])), { code: -32009, message: 'The name is taken', data: { field: 'name' } });
      assert.deepStrictEqual(await errorOf(dispatcher, request('plain', [])), { code: -32029, message: 'Slow down' });
      assert.deepStrictEqual(await errorOf(dispatcher, request('broken', [])), { code: -32603, message: 'The database is unreachable' });
      assert.ok(log.entries.some((line) => line.msg === 'JSON-RPC method failed' && line.method === 'broken'), 'internal errors are logged');
    });

    it('answers a result JSON cannot hold with an Internal error for that response alone', async () => {
      const reply = await run(dispatcher, `[${request('big', [], 1)},${request('nothing', [], 2)}]`, {});
      assert.deepStrictEqual(reply, [
        { jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: 1 },
        { jsonrpc: '2.0', result: null, id: 2 },
      ]);
      assert.ok(log.entries.some((line) => line.msg === 'JSON-RPC response cannot be written as JSON'));
    });
  });

  describe('batches', () => {
    it('runs at most batchConcurrency messages of a batch at once, and answers in request order', async () => {
      let running = 0;
      let most = 0;
      const dispatcher = new Dispatcher({ logger: silent, batchConcurrency: 3 }).register({
        name: 'slow',
        params: Type.Tuple([Type.Integer()]),
        access: 'public',
        handler: async ([n]) => {
          running++;
          most = Math.max(most, running);
          await sleep(n % 4);
          running--;
          return n;
        },
      });
      const batch = `[${Array.from({ length: 20 }, (_, n) => request('slow', [n], n)).join(',')}]`;
      const reply = (await run(dispatcher, batch, {})) as { result: number }[];
      assert.equal(most, 3);
      assert.deepStrictEqual(
        reply.map((response) => response.result),
        Array.from({ length: 20 }, (_, n) => n),
      );
    });
  });

  describe('transports', () => {
    interface SocketContext extends CallContext {
      socketId: string;
    }

    it('hands the transport its context, and each message its members, for replies of its own', async () => {
      const dispatcher = new Dispatcher<SocketContext>({ logger: silent, requireVersion: false }).register({
        name: 'Fleet.Whoami',
        params: Type.Object({}, { additionalProperties: false }),
        access: 'public',
        handler: (_params, context) => context.socketId,
      });
      const frame = dispatcher.parse('{"id":41,"src":"shellyplus1-a8032abb995c","method":"Fleet.Whoami"}');
      assert.equal(frame.kind, 'single');
      assert.ok(frame.kind === 'single' && frame.message.kind === 'request');
      const response = await dispatcher.answer(frame.message, { socketId: 'ws-7' });
      assert.ok(response);
      const framed = { ...response, src: 'fleetd', dst: frame.message.members.src };
      assert.deepStrictEqual(JSON.parse(dispatcher.encode(framed)), { jsonrpc: '2.0', result: 'ws-7', id: 41, src: 'fleetd', dst: 'shellyplus1-a8032abb995c' });
    });

    it('takes frames without "jsonrpc" only when told, and never a wrong version', async () => {
      const lenient = new Dispatcher({ logger: silent, requireVersion: false }).register({ name: 'ping', params: Type.Array(Type.Unknown()), access: 'public', handler: () => 'pong' });
      const strict = new Dispatcher({ logger: silent }).register({ name: 'ping', params: Type.Array(Type.Unknown()), access: 'public', handler: () => 'pong' });
      assert.deepStrictEqual(await run(lenient, '{"method":"ping","id":1}', {}), { jsonrpc: '2.0', result: 'pong', id: 1 });
      assert.deepStrictEqual(await run(strict, '{"method":"ping","id":1}', {}), { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id: 1 });
      assert.deepStrictEqual(await run(lenient, '{"jsonrpc":"1.0","method":"ping","id":1}', {}), { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id: 1 });
    });

    it('gives responses to whoever waits for them; one that fails to take it breaks nothing', async () => {
      const log = recordingLogger();
      const received: unknown[] = [];
      const dispatcher = new Dispatcher({
        logger: log.logger,
        onResponse: (message) => {
          received.push(message.id);
          if (message.id === 2) throw new Error('the table is gone');
        },
      });
      assert.equal(await dispatcher.handleText('[{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","result":2,"id":2}]', {}), undefined);
      assert.deepStrictEqual(received, [1, 2]);
      assert.ok(log.entries.some((line) => line.msg === 'JSON-RPC response could not be delivered'));
    });
  });
});
