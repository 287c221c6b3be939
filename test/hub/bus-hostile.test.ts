import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from 'nats';
import { FleetError } from '../../src/core/errors.ts';
import type { Bus } from '../../src/hub/bus.ts';
import { maxSubjectBytes } from '../../src/hub/subject.ts';
import { busBackends, fence, inbox, natsTestUrl, uniquePrefix, type Inbox } from './buses.ts';
import { recordingLogger } from '../helpers/logger.ts';

/** Asserts that `work` fails with a FleetError of `code` whose message contains `words`. */
async function refuses(work: () => unknown, code: FleetError['code'], words: string): Promise<FleetError> {
  try {
    await work();
  } catch (error) {
    assert.ok(error instanceof FleetError, `expected a FleetError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(words), `${JSON.stringify(error.message)} should say ${JSON.stringify(words)}`);
    return error;
  }
  assert.fail(`expected a FleetError ${code} saying ${JSON.stringify(words)}`);
}

/** A subject of exactly `bytes` bytes under `prefix`. */
const subjectOfBytes = (prefix: string, bytes: number) => `${prefix}.${'x'.repeat(bytes - prefix.length - 1)}`;

function cycle(): unknown {
  const device: Record<string, unknown> = { id: 7 };
  device.self = device;
  return { device };
}

function nested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

class Reading {
  value = 1;
}

/** Values that are not JSON, and what the refusal must say about where and what. */
const notJson: Array<[what: string, make: () => unknown, refusal: string]> = [
  ['a function', () => () => 1, 'payload is a function'],
  ['a BigInt', () => 10n, 'payload is a bigint'],
  ['a cycle', cycle, 'payload.device.self is a reference to one of its own containers (a cycle)'],
  ['a nested function', () => ({ a: { b: () => 1 } }), 'payload.a.b is a function'],
  ['a BigInt in an array', () => [1, 2n], 'payload[1] is a bigint'],
  ['NaN', () => ({ reading: Number.NaN }), 'payload.reading is NaN, not a finite number'],
  ['Infinity', () => Number.POSITIVE_INFINITY, 'payload is Infinity, not a finite number'],
  ['undefined', () => undefined, 'payload is undefined'],
  ['undefined in an array', () => [undefined], 'payload[0] is undefined'],
  ['a symbol', () => Symbol('s'), 'payload is a symbol'],
  ['a Date', () => ({ at: new Date(0) }), 'payload.at is a Date, not a plain object'],
  ['a Map', () => new Map([[1, 2]]), 'payload is a Map, not a plain object'],
  ['a class instance', () => new Reading(), 'payload is a Reading, not a plain object'],
  ['deep nesting', () => nested(1000), 'nested deeper than 64 levels'],
];

for (const backend of await busBackends()) {
  describe(`bus, hostile input: ${backend.name}`, { skip: backend.skip }, () => {
    const recorded = recordingLogger();
    let alpha: Bus;
    let beta: Bus;
    let prefix: string;
    /** Everything published under this test's prefix, as beta sees it. */
    let everything: Inbox;
    before(async () => {
      [alpha, beta] = await backend.nodes(recorded.logger);
    });
    after(async () => {
      await alpha.close();
      await beta.close();
    });
    const fresh = async () => {
      prefix = uniquePrefix();
      everything = inbox();
      await beta.subscribe(`${prefix}.>`, everything.handler);
    };
    /** The payloads that reached beta under the prefix, fences left out. */
    const published = async () => {
      await fence(alpha, beta, prefix);
      return everything.messages.filter((m) => !m.subject.startsWith(`${prefix}.fence.`)).map((m) => m.payload);
    };

    it('refuses invalid subjects, saying why, and publishes nothing', async () => {
      await fresh();
      const invalid: Array<[unknown, string]> = [
        ['', 'must be a non-empty text'],
        [42, 'must be a non-empty text'],
        [undefined, 'must be a non-empty text'],
        [`${prefix}.a b`, 'contains whitespace or a control character'],
        [`${prefix}.a\tb`, 'contains whitespace or a control character'],
        [`${prefix}.a\r\nPUB x 1`, 'contains whitespace or a control character'],
        [`${prefix}.a\u00a0b`, 'contains whitespace or a control character'],
        [`${prefix}.a\u0000b`, 'contains whitespace or a control character'],
        [`${prefix}..b`, 'has an empty token'],
        [`.${prefix}`, 'has an empty token'],
        [`${prefix}.`, 'has an empty token'],
        [`${prefix}.*`, 'contains a wildcard'],
        [`${prefix}.>`, 'contains a wildcard'],
        [`${prefix}.a*`, 'contains a wildcard'],
        [subjectOfBytes(prefix, maxSubjectBytes + 1), `longer than ${maxSubjectBytes} bytes`],
        [`${prefix}.${'é'.repeat(maxSubjectBytes / 2)}`, `longer than ${maxSubjectBytes} bytes`],
      ];
      for (const [subject, why] of invalid) {
        await refuses(() => alpha.publish(subject as string, 'x'), 'bad_request', why);
        await refuses(() => alpha.request(subject as string, 'x', { timeoutMs: 100 }), 'bad_request', why);
      }
      const longest = subjectOfBytes(prefix, maxSubjectBytes);
      alpha.publish(longest, 'longest');
      assert.deepEqual(await published(), ['longest']);
    });

    it('refuses invalid subscription patterns and queue group names', async () => {
      await fresh();
      const invalid: Array<[string, string]> = [
        ['', 'must be a non-empty text'],
        [`${prefix}.a b`, 'contains whitespace or a control character'],
        [`${prefix}..b`, 'has an empty token'],
        [`${prefix}.>.b`, 'misuses a wildcard'],
        [`>.${prefix}`, 'misuses a wildcard'],
        [`${prefix}.a>`, 'misuses a wildcard'],
        [`${prefix}.*x`, 'misuses a wildcard'],
        [`${prefix}.>>`, 'misuses a wildcard'],
        [subjectOfBytes(prefix, maxSubjectBytes + 1), `longer than ${maxSubjectBytes} bytes`],
      ];
      for (const [pattern, why] of invalid) await refuses(() => beta.subscribe(pattern, () => undefined), 'bad_request', why);
      for (const [queue, why] of [
        ['', 'must be a non-empty text'],
        ['workers 1', 'contains whitespace or a control character'],
        ['w'.repeat(maxSubjectBytes + 1), `longer than ${maxSubjectBytes} bytes`],
      ]) {
        await refuses(() => beta.subscribe(`${prefix}.jobs`, () => undefined, { queue }), 'bad_request', why!);
      }
    });

    it('refuses a request without a sensible timeout', async () => {
      await fresh();
      await beta.subscribe(`${prefix}.ask`, () => 'answer');
      for (const timeoutMs of [0, -5, 1.5, Number.NaN, undefined, 2 ** 31]) {
        await refuses(() => alpha.request(`${prefix}.ask`, null, { timeoutMs } as { timeoutMs: number }), 'bad_request', 'timeoutMs');
      }
      assert.equal(await alpha.request(`${prefix}.ask`, null, { timeoutMs: 2000 }), 'answer');
    });

    it('refuses payloads that are not JSON values, saying where, and publishes nothing', async () => {
      await fresh();
      await beta.subscribe(`${prefix}.ask`, () => 'answer');
      for (const [, make, words] of notJson) {
        await refuses(() => alpha.publish(`${prefix}.data`, make()), 'bad_request', words);
        await refuses(() => alpha.request(`${prefix}.ask`, make(), { timeoutMs: 1000 }), 'bad_request', words);
      }
      assert.deepEqual(await published(), []);
    });

    it('sends what JSON keeps: shared (not cyclic) references, undefined members left out, null-prototype objects', async () => {
      await fresh();
      const shared = { x: 1 };
      const bare = Object.assign(Object.create(null) as object, { y: 2 });
      alpha.publish(`${prefix}.data`, { a: shared, b: shared, gone: undefined, bare });
      assert.deepEqual(await published(), [{ a: { x: 1 }, b: { x: 1 }, bare: { y: 2 } }]);
    });

    it('fails a request whose handler answers with something that is not JSON', async () => {
      await fresh();
      await beta.subscribe(`${prefix}.ask`, () => ({ callback: () => 1 }));
      await refuses(() => alpha.request(`${prefix}.ask`, null, { timeoutMs: 2000 }), 'bad_request', 'reply.result.callback is a function');
    });

    it('refuses a payload above the limit before sending it, counting bytes, and sends one at the limit', async () => {
      await fresh();
      const limit = alpha.maxPayload;
      assert.ok(limit >= 1024, `a sensible limit: ${limit}`);
      const atLimit = 'x'.repeat(limit - 2);
      const tooLarge = await refuses(() => alpha.publish(`${prefix}.big`, 'x'.repeat(limit - 1)), 'payload_too_large', `${limit + 1} bytes, above the limit of ${limit}`);
      assert.deepEqual(tooLarge.details, { bytes: limit + 1, maxPayload: limit });
      await refuses(() => alpha.publish(`${prefix}.big`, '€'.repeat(Math.ceil(limit / 3))), 'payload_too_large', `above the limit of ${limit}`);
      await refuses(() => alpha.request(`${prefix}.big`, { blob: atLimit }, { timeoutMs: 1000 }), 'payload_too_large', `above the limit of ${limit}`);
      alpha.publish(`${prefix}.big`, atLimit);
      const received = await published();
      assert.equal(received.length, 1);
      assert.equal(received[0], atLimit);
    });

    it('fails a request whose handler answers with more than the limit', async () => {
      await fresh();
      await beta.subscribe(`${prefix}.ask`, () => 'x'.repeat(beta.maxPayload));
      await refuses(() => alpha.request(`${prefix}.ask`, null, { timeoutMs: 2000 }), 'payload_too_large', 'The bus reply is');
    });

    it('delivers a flood of 10,000 messages in order without losing one', async () => {
      await fresh();
      const count = 10_000;
      const received = inbox();
      await beta.subscribe(`${prefix}.flood`, received.handler);
      for (let seq = 0; seq < count; seq++) alpha.publish(`${prefix}.flood`, { seq, reading: seq / 7 });
      const messages = await received.until(count, 60_000);
      await fence(alpha, beta, prefix);
      assert.equal(messages.length, count, 'no message twice');
      messages.forEach((message, seq) => assert.deepEqual(message.payload, { seq, reading: seq / 7 }));
    });

    if (backend.name === 'nats') {
      it('drops and logs a message that is not JSON, published by something other than fleetd', async () => {
        await fresh();
        recorded.entries.length = 0;
        // Outside the prefix, so that only this subscription sees the foreign messages.
        const raw = `${uniquePrefix()}.raw`;
        const received = inbox();
        await beta.subscribe(raw, received.handler);
        const foreign = await connect({ servers: natsTestUrl });
        try {
          foreign.publish(raw, new TextEncoder().encode('{not json'));
          foreign.publish(raw, new Uint8Array());
          foreign.publish(raw, new TextEncoder().encode('{"fine":true}'));
          await foreign.flush();
        } finally {
          await foreign.close();
        }
        assert.deepEqual((await received.until(1)).map((m) => m.payload), [{ fine: true }]);
        await fence(alpha, beta, prefix);
        assert.equal(received.messages.length, 1);
        const dropped = recorded.entries.filter((e) => e.subject === raw && e.msg === 'bus message is not JSON: dropped');
        assert.equal(dropped.length, 2, JSON.stringify(recorded.entries));
      });
    }
  });
}
