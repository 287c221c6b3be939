import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutgoingCalls, type OutgoingCallsOptions } from '../../../src/adapters/jsonrpc/calls.ts';
import type { RequestObject } from '../../../src/adapters/jsonrpc/messages.ts';
import { classify, type MalformedResponse, type ResponseMessage } from '../../../src/adapters/jsonrpc/parse.ts';
import { FleetError } from '../../../src/core/errors.ts';

/** The calls fleetd makes to a device: ids, matching, errors, timeouts, and nothing left behind. */

function table(options: Partial<OutgoingCallsOptions> = {}) {
  const sent: RequestObject[] = [];
  const calls = new OutgoingCalls({ send: (request) => void sent.push(request), timeoutMs: 5_000, ...options });
  return { calls, sent };
}

/** A response as the device's frame would be classified; Shelly devices leave out `jsonrpc`. */
const response = (frame: Record<string, unknown>) => classify(frame, { requireVersion: false }) as ResponseMessage | MalformedResponse;

const fleetError = (code: string, check: (error: FleetError) => boolean = () => true) => (error: unknown) => error instanceof FleetError && error.code === code && check(error);

describe('outgoing calls', () => {
  it('numbers the calls of each socket from 1, and sends them as JSON-RPC requests', async () => {
    const first = table();
    const second = table();
    const waiting = [first.calls.call('Shelly.GetDeviceInfo'), first.calls.call('Switch.Set', { id: 0, on: true }), second.calls.call('Shelly.GetStatus')];
    assert.deepStrictEqual(first.sent, [
      { jsonrpc: '2.0', method: 'Shelly.GetDeviceInfo', id: 1 },
      { jsonrpc: '2.0', method: 'Switch.Set', params: { id: 0, on: true }, id: 2 },
    ]);
    assert.deepStrictEqual(second.sent, [{ jsonrpc: '2.0', method: 'Shelly.GetStatus', id: 1 }]);
    first.calls.close();
    second.calls.close();
    await Promise.allSettled(waiting);
  });

  it('resolves each call with the result of the response bearing its id, in any order', async () => {
    const { calls } = table();
    const results = ['Shelly.GetDeviceInfo', 'Shelly.GetStatus', 'Shelly.GetConfig', 'Shelly.ListMethods'].map((method) => calls.call(method));
    // Falsy results are results too.
    assert.equal(calls.settle(response({ id: 3, src: 'shellyplus1-a8032abb995c', dst: 'fleetd', result: null })), true);
    assert.equal(calls.settle(response({ id: 1, result: { id: 'shellyplus1-a8032abb995c' } })), true);
    assert.equal(calls.settle(response({ id: 4, result: 0 })), true);
    assert.equal(calls.settle(response({ jsonrpc: '2.0', id: 2, result: false })), true);
    assert.deepStrictEqual(await Promise.all(results), [{ id: 'shellyplus1-a8032abb995c' }, false, null, 0]);
    assert.equal(calls.size, 0);
  });

  it('matches ids by type and value: "1" does not answer call 1', async () => {
    const { calls } = table();
    const call = calls.call('Sys.GetStatus');
    assert.equal(calls.settle(response({ id: '1', result: 'no' })), false);
    assert.equal(calls.settle(response({ id: 1.5, result: 'no' })), false);
    assert.equal(calls.settle(response({ id: 1, result: 'yes' })), true);
    assert.equal(await call, 'yes');
  });

  it("rejects a call the device answers with an error, carrying the device's error", async () => {
    const { calls } = table();
    const withData = calls.call('Switch.Set', { id: 7 });
    const withoutData = calls.call('Script.Eval', { id: 1, code: 'x' });
    calls.settle(response({ id: 1, error: { code: -105, message: 'Bad id=7', data: { id: 7 } } }));
    calls.settle(response({ id: 2, error: { code: -103, message: 'Missing required argument' } }));
    await assert.rejects(
      withData,
      fleetError('device_error', (error) => {
        assert.deepStrictEqual(error.details, { code: -105, message: 'Bad id=7', data: { id: 7 } });
        assert.match(error.message, /Switch\.Set.*Bad id=7/);
        return true;
      }),
    );
    await assert.rejects(
      withoutData,
      fleetError('device_error', (error) => (assert.deepStrictEqual(error.details, { code: -103, message: 'Missing required argument' }), true)),
    );
    assert.equal(calls.size, 0);
  });

  it('times a call out, forgets it, and drops its late response', async () => {
    const { calls } = table({ timeoutMs: 10 });
    const started = Date.now();
    await assert.rejects(
      calls.call('Shelly.GetComponents', { offset: 0 }),
      fleetError('device_timeout', (error) => (assert.deepStrictEqual(error.details, { method: 'Shelly.GetComponents', timeoutMs: 10 }), true)),
    );
    assert.ok(Date.now() - started >= 9);
    assert.equal(calls.size, 0);
    assert.equal(calls.settle(response({ id: 1, result: {} })), false);
  });

  it('lets one call wait longer than the default', async () => {
    const { calls } = table({ timeoutMs: 5 });
    const slow = calls.call('Shelly.Update', {}, { timeoutMs: 200 });
    const quick = calls.call('Shelly.GetStatus');
    await assert.rejects(quick, fleetError('device_timeout'));
    assert.equal(calls.settle(response({ id: 1, result: 'updating' })), true);
    assert.equal(await slow, 'updating');
  });

  it('fails every waiting call when the socket closes, and every later call', async () => {
    const { calls, sent } = table();
    const waiting = [calls.call('A.B'), calls.call('C.D')];
    calls.close();
    for (const call of waiting) await assert.rejects(call, fleetError('unavailable', (error) => /disconnected/.test(error.message)));
    await assert.rejects(calls.call('E.F'), fleetError('unavailable'));
    assert.equal(sent.length, 2, 'nothing is sent after the close');
    assert.equal(calls.size, 0);
    const gone = new FleetError('unavailable', 'Shutting down');
    const other = table().calls;
    const call = other.call('A.B');
    other.close(gone);
    await assert.rejects(call, (error) => error === gone);
  });

  it('refuses calls beyond the limit of waiting calls, without sending them', async () => {
    const { calls, sent } = table({ maxPending: 2 });
    const first = calls.call('A.B');
    const second = calls.call('A.C');
    await assert.rejects(calls.call('A.D'), fleetError('unavailable', (error) => /2 calls waiting/.test(error.message)));
    assert.equal(sent.length, 2);
    calls.settle(response({ id: 1, result: 1 }));
    await first;
    const third = calls.call('A.D');
    assert.equal(sent.at(-1)?.id, 3);
    calls.settle(response({ id: 3, result: 3 }));
    assert.equal(await third, 3);
    calls.close();
    await assert.rejects(second, fleetError('unavailable'));
  });

  it('fails and forgets a call the transport cannot send, whether it throws or rejects', async () => {
    const throwing = new OutgoingCalls({
      send: () => {
        throw new Error('WebSocket is not open: readyState 3 (CLOSED)');
      },
      timeoutMs: 5_000,
    });
    await assert.rejects(throwing.call('A.B'), fleetError('unavailable', (error) => error.cause instanceof Error && /not open/.test(error.cause.message)));
    assert.equal(throwing.size, 0);
    const rejecting = new OutgoingCalls({ send: async () => Promise.reject(new FleetError('payload_too_large', 'Frame too large')), timeoutMs: 5_000 });
    await assert.rejects(rejecting.call('A.B'), fleetError('payload_too_large'));
    assert.equal(rejecting.size, 0);
  });

  it('settles a call answered while it is being sent', async () => {
    const calls: OutgoingCalls = new OutgoingCalls({ send: (request) => void calls.settle(response({ id: request.id, result: 'at once' })), timeoutMs: 5_000 });
    assert.equal(await calls.call('A.B'), 'at once');
    assert.equal(calls.size, 0);
  });

  it('keeps no entry for any of many finished calls', async () => {
    const { calls, sent } = table({ timeoutMs: 20, maxPending: 1_000 });
    const outcomes = Array.from({ length: 900 }, (_, i) => calls.call('Sys.GetStatus', { i }).then(
      (result) => ['resolved', result],
      (error: FleetError) => [error.code],
    ));
    for (const request of sent) {
      const id = request.id as number;
      if (id % 3 === 0) calls.settle(response({ id, result: id }));
      else if (id % 3 === 1) calls.settle(response({ id, error: { code: -1, message: 'no' } }));
    }
    const settled = await Promise.all(outcomes);
    assert.equal(calls.size, 0);
    assert.deepStrictEqual(
      settled.slice(0, 3),
      [['device_error'], ['device_timeout'], ['resolved', 3]],
    );
    assert.equal(settled.filter(([outcome]) => outcome === 'device_timeout').length, 300);
    assert.equal(new Set(sent.map((request) => request.id)).size, 900, 'no id given out twice');
  });
});
