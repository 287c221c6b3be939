import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FleetError } from '../../src/core/errors.ts';
import type { Bus, BusMessage } from '../../src/hub/bus.ts';
import { busBackends, fence, inbox, uniquePrefix } from './buses.ts';
import { recordingLogger } from '../helpers/logger.ts';

/** Asserts that `work` fails with a FleetError of `code` (and, when given, `reason` in its details). */
async function refuses(work: () => unknown, code: FleetError['code'], reason?: string): Promise<FleetError> {
  try {
    await work();
  } catch (error) {
    assert.ok(error instanceof FleetError, `expected a FleetError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (reason) assert.equal((error.details as { reason?: string } | undefined)?.reason, reason, error.message);
    return error;
  }
  assert.fail(`expected a FleetError ${code}`);
}

/** Pattern, subject, whether the pattern matches (relative to each test's prefix). */
const matchingTable: Array<[string, string, boolean]> = [
  ['a.b', 'a.b', true],
  ['a.b', 'a.c', false],
  ['a.b', 'a', false],
  ['a.b', 'a.b.c', false],
  ['a.*', 'a.b', true],
  ['a.*', 'a', false],
  ['a.*', 'a.b.c', false],
  ['a.*', 'b.a', false],
  ['a.>', 'a.b', true],
  ['a.>', 'a.b.c', true],
  ['a.>', 'a', false],
  ['a.>', 'b.a', false],
  ['*.b', 'a.b', true],
  ['*.b', 'x.b', true],
  ['*.b', 'a.c', false],
  ['*.b', 'a.b.c', false],
  ['*.b', 'b', false],
  ['>', 'a', true],
  ['>', 'a.b', true],
  ['>', 'a.b.c', true],
  ['a.*.c', 'a.b.c', true],
  ['a.*.c', 'a.b.d', false],
  ['*.*', 'a.b', true],
  ['*.*', 'a', false],
  ['*.>', 'a.b', true],
  ['*.>', 'a.b.c', true],
  ['*.>', 'a', false],
];

for (const backend of await busBackends()) {
  describe(`bus: ${backend.name}`, { skip: backend.skip }, () => {
    const recorded = recordingLogger();
    let alpha: Bus;
    let beta: Bus;
    let prefix: string;
    before(async () => {
      [alpha, beta] = await backend.nodes(recorded.logger);
    });
    after(async () => {
      await alpha.close();
      await beta.close();
    });
    const fresh = () => (prefix = uniquePrefix());

    it('matches subjects with NATS semantics: * one token, > one or more trailing tokens', async () => {
      fresh();
      for (const [index, [pattern, subject, expected]] of matchingTable.entries()) {
        const row = `${prefix}.r${index}`;
        const received = inbox();
        const subscription = await beta.subscribe(`${row}.${pattern}`, received.handler);
        alpha.publish(`${row}.${subject}`, { index });
        await fence(alpha, beta, prefix);
        subscription.unsubscribe();
        assert.equal(received.messages.length, expected ? 1 : 0, `${pattern} ${expected ? 'matches' : 'does not match'} ${subject}`);
        if (expected) assert.deepEqual(received.messages[0], { subject: `${row}.${subject}`, payload: { index } });
      }
    });

    it('delivers to each subscriber in publish order', async () => {
      fresh();
      const first = inbox();
      const second = inbox();
      await beta.subscribe(`${prefix}.seq`, first.handler);
      await beta.subscribe(`${prefix}.*`, second.handler);
      for (let i = 0; i < 500; i++) alpha.publish(`${prefix}.seq`, i);
      const expected = Array.from({ length: 500 }, (_, i) => i);
      assert.deepEqual((await first.until(500)).map((m) => m.payload), expected);
      assert.deepEqual((await second.until(500)).map((m) => m.payload), expected);
    });

    it('never calls a handler inside publish()', async () => {
      fresh();
      const received = inbox();
      await alpha.subscribe(`${prefix}.async`, received.handler);
      alpha.publish(`${prefix}.async`, 'hello');
      assert.equal(received.messages.length, 0);
      await received.until(1);
    });

    it('stops delivering after unsubscribe, and other subscriptions go on', async () => {
      fresh();
      const leaving = inbox();
      const staying = inbox();
      const subscription = await beta.subscribe(`${prefix}.news`, leaving.handler);
      await beta.subscribe(`${prefix}.news`, staying.handler);
      alpha.publish(`${prefix}.news`, 1);
      await leaving.until(1);
      subscription.unsubscribe();
      subscription.unsubscribe();
      alpha.publish(`${prefix}.news`, 2);
      await staying.until(2);
      await fence(alpha, beta, prefix);
      assert.deepEqual(leaving.messages.map((m) => m.payload), [1]);
      assert.deepEqual(staying.messages.map((m) => m.payload), [1, 2]);
    });

    it('gives each message to exactly one member of a queue group, and to every plain subscriber', async () => {
      fresh();
      const members = [inbox(), inbox(), inbox()];
      const watcher = inbox();
      await alpha.subscribe(`${prefix}.jobs`, members[0]!.handler, { queue: 'workers' });
      await beta.subscribe(`${prefix}.jobs`, members[1]!.handler, { queue: 'workers' });
      await beta.subscribe(`${prefix}.*`, members[2]!.handler, { queue: 'workers' });
      await beta.subscribe(`${prefix}.jobs`, watcher.handler);
      const count = 300;
      for (let i = 0; i < count; i++) alpha.publish(`${prefix}.jobs`, i);
      await watcher.until(count);
      await fence(alpha, alpha, prefix);
      await fence(alpha, beta, prefix);
      const handled = members.flatMap((m) => m.messages.map((message) => message.payload as number));
      assert.deepEqual(handled.sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i), 'every message once, none twice');
      for (const member of members) assert.ok(member.messages.length > 0, 'each member gets a share');
    });

    it('answers a request with what a handler returns, a value or a promise', async () => {
      fresh();
      await beta.subscribe(`${prefix}.echo`, ({ subject, payload }) => ({ subject, payload }));
      await beta.subscribe(`${prefix}.later`, async ({ payload }) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return (payload as number) * 2;
      });
      await beta.subscribe(`${prefix}.nothing`, () => null);
      assert.deepEqual(await alpha.request(`${prefix}.echo`, { n: [1, 'two'] }, { timeoutMs: 2000 }), { subject: `${prefix}.echo`, payload: { n: [1, 'two'] } });
      assert.equal(await alpha.request(`${prefix}.later`, 21, { timeoutMs: 2000 }), 42);
      assert.equal(await alpha.request(`${prefix}.nothing`, 'x', { timeoutMs: 2000 }), null);
    });

    it('takes the answer of the subscriber that answers, when others return nothing', async () => {
      fresh();
      const asked = inbox();
      await alpha.subscribe(`${prefix}.device.7.call`, asked.handler);
      await beta.subscribe(`${prefix}.device.*.call`, ({ payload }) => ({ handledBy: 'beta', payload }));
      assert.deepEqual(await alpha.request(`${prefix}.device.7.call`, 'ping', { timeoutMs: 2000 }), { handledBy: 'beta', payload: 'ping' });
      await asked.until(1);
    });

    it('refuses a request at once when nobody listens', async () => {
      fresh();
      const started = Date.now();
      const error = await refuses(() => alpha.request(`${prefix}.nobody`, {}, { timeoutMs: 5000 }), 'unavailable', 'no_responders');
      assert.ok(Date.now() - started < 2000, 'without waiting for the timeout');
      assert.ok(error.message.includes(`${prefix}.nobody`), error.message);
    });

    it('fails a request that gets no reply in time', async () => {
      fresh();
      const silent = inbox();
      await beta.subscribe(`${prefix}.slow`, silent.handler);
      const started = Date.now();
      const error = await refuses(() => alpha.request(`${prefix}.slow`, 1, { timeoutMs: 200 }), 'unavailable', 'timeout');
      assert.ok(Date.now() - started >= 190, 'waits for the timeout');
      assert.equal(error.message, `No reply on ${prefix}.slow within 200 ms`);
      assert.equal(silent.messages.length, 1);
    });

    it('fails a request with the error its handler threw, keeping a FleetError code and hiding other messages', async () => {
      fresh();
      recorded.entries.length = 0;
      await beta.subscribe(`${prefix}.missing`, () => {
        throw new FleetError('not_found', 'Device 7 not found');
      });
      await beta.subscribe(`${prefix}.broken`, async () => {
        throw new Error('secret internals');
      });
      const missing = await refuses(() => alpha.request(`${prefix}.missing`, null, { timeoutMs: 2000 }), 'not_found');
      assert.equal(missing.message, 'Device 7 not found');
      const broken = await refuses(() => alpha.request(`${prefix}.broken`, null, { timeoutMs: 2000 }), 'internal');
      assert.equal(broken.message, `A handler of ${prefix}.broken failed`);
      const logged = recorded.entries.find((e) => e.subject === `${prefix}.broken`);
      assert.ok(logged && logged.msg === 'bus handler failed' && JSON.stringify(logged.err).includes('secret internals'), JSON.stringify(recorded.entries));
    });

    it('gives each subscriber its own copy of the payload', async () => {
      fresh();
      const sent = { device: { id: 7, tags: ['a'] } };
      const copies: BusMessage[] = [];
      const mutate = (message: BusMessage) => {
        copies.push(message);
        ((message.payload as typeof sent).device.tags as string[]).push('changed');
      };
      const done = inbox();
      await beta.subscribe(`${prefix}.copy`, mutate);
      await beta.subscribe(`${prefix}.copy`, mutate);
      await beta.subscribe(`${prefix}.copy`, done.handler);
      alpha.publish(`${prefix}.copy`, sent);
      sent.device.id = 8;
      await done.until(1);
      await fence(alpha, beta, prefix);
      assert.deepEqual(sent, { device: { id: 8, tags: ['a'] } }, 'the publisher keeps what it holds');
      assert.equal(copies.length, 2);
      for (const copy of copies) assert.deepEqual(copy.payload, { device: { id: 7, tags: ['a', 'changed'] } }, 'what was published, changed by its own subscriber only');
      assert.deepEqual(done.messages[0]!.payload, { device: { id: 7, tags: ['a'] } });
    });

    it('keeps delivering after a handler throws or rejects, and logs the failure', async () => {
      fresh();
      recorded.entries.length = 0;
      const received = inbox();
      await beta.subscribe(`${prefix}.fragile`, (message) => {
        received.handler(message);
        if (message.payload === 1) throw new Error('sync failure');
        if (message.payload === 2) return Promise.reject(new Error('async failure'));
        return undefined;
      });
      for (const n of [1, 2, 3, 4]) alpha.publish(`${prefix}.fragile`, n);
      assert.deepEqual((await received.until(4)).map((m) => m.payload), [1, 2, 3, 4]);
      await fence(alpha, beta, prefix);
      const failures = recorded.entries.filter((e) => e.subject === `${prefix}.fragile` && e.msg === 'bus handler failed');
      assert.deepEqual(failures.map((e) => (e.err as { message: string }).message).sort(), ['async failure', 'sync failure']);
    });

    it('on close, delivers what was published, then refuses everything', async () => {
      fresh();
      const [publisher, subscriber] = await backend.nodes();
      const received = inbox();
      await subscriber.subscribe(`${prefix}.last`, received.handler);
      for (let i = 0; i < 100; i++) publisher.publish(`${prefix}.last`, i);
      await publisher.close();
      assert.equal((await received.until(100)).length, 100);
      await subscriber.close();
      await publisher.close();
      for (const bus of [publisher, subscriber]) {
        await refuses(() => bus.publish(`${prefix}.last`, 1), 'unavailable', 'closed');
        await refuses(() => bus.subscribe(`${prefix}.last`, () => undefined), 'unavailable', 'closed');
        await refuses(() => bus.request(`${prefix}.last`, 1, { timeoutMs: 100 }), 'unavailable', 'closed');
      }
    });

    it('on close, lets a running handler answer', async () => {
      fresh();
      const [requester, responder] = await backend.nodes();
      const started = inbox();
      await responder.subscribe(`${prefix}.work`, async (message) => {
        started.handler(message);
        await new Promise((resolve) => setTimeout(resolve, 100));
        return 'finished';
      });
      const answered = requester.request(`${prefix}.work`, null, { timeoutMs: 5000 });
      await started.until(1);
      await responder.close();
      assert.equal(await answered, 'finished');
      await requester.close();
    });

    it('on close, ends the requests still waiting for a reply', async () => {
      fresh();
      const [requester, other] = await backend.nodes();
      const heard = inbox();
      await requester.subscribe(`${prefix}.never`, heard.handler);
      const waiting = requester.request(`${prefix}.never`, null, { timeoutMs: 10_000 }).catch((error: unknown) => error);
      await heard.until(1);
      const closing = Date.now();
      await requester.close();
      const error = await waiting;
      assert.ok(error instanceof FleetError && error.code === 'unavailable', String(error));
      assert.deepEqual(error.details, { reason: 'closed' });
      assert.ok(Date.now() - closing < 5000, 'without waiting for the timeout');
      await other.close();
    });

    if (backend.name === 'nats') {
      it('joins separate nodes: each sees what the other publishes, and answers its requests', async () => {
        fresh();
        const atAlpha = inbox();
        const atBeta = inbox();
        await alpha.subscribe(`${prefix}.to-alpha`, atAlpha.handler);
        await beta.subscribe(`${prefix}.to-beta`, atBeta.handler);
        await beta.subscribe(`${prefix}.ask-beta`, ({ payload }) => `beta got ${String(payload)}`);
        alpha.publish(`${prefix}.to-beta`, 'from alpha');
        beta.publish(`${prefix}.to-alpha`, 'from beta');
        assert.equal((await atBeta.until(1))[0]!.payload, 'from alpha');
        assert.equal((await atAlpha.until(1))[0]!.payload, 'from beta');
        assert.equal(await alpha.request(`${prefix}.ask-beta`, 'hi', { timeoutMs: 2000 }), 'beta got hi');
        assert.equal(alpha.maxPayload, 1024 * 1024, 'the max_payload of the server');
      });
    }
  });
}
